import Foundation
import Messaging

/// Remembers, across crashes, which record a service was handling, so a record that
/// crashes the service twice is dead-lettered instead of crash-looping every member of
/// the group (at-least-once redelivers an uncommitted record after each crash).
///
/// Each process claims a slot in `directory` (an exclusive `flock` on
/// `SERVICE-slotN.lock`, released by the kernel when the process dies, so a restarted
/// process claims the slot of the one that died) and writes the coordinates of the
/// record in hand to `SERVICE-slotN.inflight` before handling it, truncating it after.
/// A file left non-empty at start-up names the record that was in hand when the previous
/// process died. Kubernetes: mount an emptyDir at the state directory, so the file
/// survives container restarts within the pod.
public final class PoisonGuard: @unchecked Sendable {
    /// Crashes while handling one record after which it is dead-lettered.
    public static let maxCrashes = 2
    static let slots = 64

    let statePath: String
    public var statePathForTests: String { statePath }
    private let lockFD: Int32

    /// A record's coordinates.
    struct Coordinates: Hashable, Sendable {
        var topic: String
        var partition: Int32
        var offset: Int64
    }

    /// The record in hand when earlier processes in this slot died, and how many times.
    public private(set) var suspect: (topic: String, partition: Int32, offset: Int64, crashes: Int)?
    /// Records in hand now, the latest begun last (several when a decoder answers parked
    /// prompts while handling the embedding they waited for), with their crash counts.
    /// The file names the latest: a crash while answering a parked prompt is the prompt's,
    /// not the embedding's.
    private var inHand: [(key: Coordinates, crashes: Int)] = []

    /// Claims a free slot; nil (guard off, logged by the caller) when the directory is unusable.
    public init?(directory: String, service: String) {
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return nil }
        var claimed: (Int32, String)?
        for slot in 0..<Self.slots {
            let base = "\(directory)/\(service)-slot\(slot)"
            let fd = open(base + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return nil }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { claimed = (fd, base + ".inflight"); break }
            close(fd)
        }
        guard let (fd, path) = claimed else { return nil }
        lockFD = fd
        statePath = path
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let f = text.split(separator: "\t").map(String.init)
            if f.count == 4, let p = Int32(f[1]), let o = Int64(f[2]), let c = Int(f[3].trimmingCharacters(in: .whitespacesAndNewlines)) {
                suspect = (f[0], p, o, c + 1)
            }
        }
    }

    deinit { close(lockFD) }

    /// Before handling `record`: false when it already crashed this slot's processes
    /// `maxCrashes` times (dead-letter it; do not handle it), else records it as in hand
    /// (beside any other record in hand) until `end(record)`.
    public func begin(_ record: ConsumedMessage) -> Bool {
        let key = Coordinates(topic: record.topic, partition: record.partition, offset: record.offset)
        var crashes = 0
        if let s = suspect, s.topic == key.topic, s.partition == key.partition, s.offset == key.offset {
            crashes = s.crashes
            if crashes >= Self.maxCrashes {
                suspect = nil
                write()  // the dead process's line goes (or the latest record still in hand is named)
                return false
            }
        }
        inHand.removeAll { $0.key == key }
        inHand.append((key, crashes))
        write()
        return true
    }

    /// After handling `record`: no longer in hand.
    public func end(_ record: ConsumedMessage) {
        let key = Coordinates(topic: record.topic, partition: record.partition, offset: record.offset)
        guard let i = inHand.lastIndex(where: { $0.key == key }) else { return }
        inHand.remove(at: i)
        write()
    }

    private func write() {
        guard let (k, crashes) = inHand.last else { truncate(statePath, 0); return }
        try? "\(k.topic)\t\(k.partition)\t\(k.offset)\t\(crashes)\n".write(toFile: statePath, atomically: false, encoding: .utf8)
    }

    /// `$SEGFLOW_HOME/state` (default `~/.cache/segflow/state`).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["SEGFLOW_HOME"] { return home + "/state" }
        return (environment["XDG_CACHE_HOME"] ?? (environment["HOME"] ?? "/root") + "/.cache") + "/segflow/state"
    }
}
