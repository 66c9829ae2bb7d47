import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of long work (folders, everything, track, bench) on stderr: one line
/// rewritten in place (`\r`), with done/total, the current item and an ETA. It stays
/// silent when stderr is not a terminal (logs, CI, pipes) or with `--quiet`, so captured
/// output holds only results.
public final class ProgressReporter: @unchecked Sendable {
    public let total: Int
    public let label: String
    public let enabled: Bool
    let lock = NSLock()
    let start = Timing.nowMs()
    var done = 0
    var lastWidth = 0
    let write: (String) -> Void

    /// `enabled` defaults to "stderr is a terminal and not quiet".
    public init(total: Int, label: String, quiet: Bool, enabled: Bool? = nil,
                write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.total = total; self.label = label; self.write = write
        self.enabled = enabled ?? (!quiet && isatty(STDERR_FILENO) == 1)
    }

    /// The line for `done` of `total` finished after `elapsedMs`, naming `item`.
    public static func line(label: String, done: Int, total: Int, item: String, elapsedMs: Double) -> String {
        // An unknown total (0), or an estimate that turned out low, shows the count alone.
        let known = total > 0 && done <= total
        var s = known ? "\(label) \(done)/\(total)" : "\(label) \(done)"
        if known { s += String(format: " (%d%%)", done * 100 / total) }
        if !item.isEmpty { s += " \(item)" }
        if done > 0 && done < total {
            let remaining = elapsedMs / Double(done) * Double(total - done) / 1000
            s += String(format: ", about %.0f s left", remaining.rounded(.up))
        }
        return s
    }

    /// One more item finished.
    public func advance(_ item: String = "") {
        lock.lock(); defer { lock.unlock() }
        done += 1
        guard enabled else { return }
        let text = Self.line(label: label, done: done, total: total, item: item, elapsedMs: Timing.nowMs() - start)
        let pad = max(0, lastWidth - text.count)
        lastWidth = text.count
        write("\r" + text + String(repeating: " ", count: pad))
    }

    /// Shows `text` as the progress line (stages of work without a count, e.g. a benchmark's).
    public func status(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        guard enabled else { return }
        let line = "\(label): \(text)"
        write("\r" + line + String(repeating: " ", count: max(0, lastWidth - line.count)))
        lastWidth = line.count
    }

    /// Clears the progress line (call before printing results, and at the end).
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        guard enabled, lastWidth > 0 else { return }
        write("\r" + String(repeating: " ", count: lastWidth) + "\r")
        lastWidth = 0
    }
}

/// Per-image stage timings, reported under the same names on every path (in-process and
/// over Kafka) and printed as ultralytics prints its speed line:
/// `preprocess` (read + decode the file), `encode` (image encoder), `decode` (prompt
/// decoding, or the whole automatic mask generation after the encoder), `postprocess`
/// (masks to files). A stage a path cannot see is absent, never guessed.
public struct StageTimings: Sendable, Equatable {
    public static let stages = ["preprocess", "encode", "decode", "postprocess"]
    public var ms: [String: Double]

    public init(_ ms: [String: Double] = [:]) { self.ms = ms }

    public subscript(stage: String) -> Double? {
        get { ms[stage] }
        set { ms[stage] = newValue }
    }

    /// "3.1ms preprocess, 412.0ms encode, 20.4ms decode, 1.2ms postprocess"; a stage
    /// without a value prints as "- encode" (e.g. a service that does not report it).
    public var speedText: String {
        Self.stages.map { s in ms[s].map { String(format: "%.1fms %@", $0, s) } ?? "- \(s)" }.joined(separator: ", ")
    }

    /// One line per image: `image 2/5 cat.jpg 451x300: 12 masks, Speed: …`.
    public static func imageLine(index: Int, total: Int, name: String, width: Int, height: Int,
                                 summary: String, timings: StageTimings) -> String {
        "image \(index)/\(total) \(name) \(width)x\(height): \(summary), Speed: \(timings.speedText)"
    }
}
