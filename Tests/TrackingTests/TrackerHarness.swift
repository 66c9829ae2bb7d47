import Foundation
import Imaging
import Pipeline
import SAM
import Tracking
import XCTest

/// LiteMedSAM and each sequence's embeddings, made once per test process (the encoder is
/// the expensive part; both trackers decode from the same embeddings).
final class Harness: @unchecked Sendable {
    static let shared = Harness()
    private let lock = NSLock()
    private var sam: Sam?
    private var cache: [String: ([Evaluation.Frame], [ImageEmbedding])] = [:]

    static var checkpoint: URL {
        let env = ProcessInfo.processInfo.environment
        let home = env["SEGFLOW_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: env["XDG_CACHE_HOME"] ?? (env["HOME"] ?? "/root") + "/.cache").appendingPathComponent("segflow")
        return home.appendingPathComponent("weights/lite_medsam.pth")
    }

    func model() throws -> Sam {
        lock.lock(); defer { lock.unlock() }
        if let sam { return sam }
        guard FileManager.default.fileExists(atPath: Self.checkpoint.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("LiteMedSAM checkpoint missing at \(Self.checkpoint.path)") }
            throw XCTSkip("LiteMedSAM checkpoint not cached at \(Self.checkpoint.path); run Deploy/setup.sh")
        }
        let s = try Sam.load(.liteMedSAM, checkpoint: Self.checkpoint)
        sam = s
        return s
    }

    func embedded(_ s: Evaluation.Sequence) throws -> ([Evaluation.Frame], [ImageEmbedding]) {
        let sam = try model()
        lock.lock(); defer { lock.unlock() }
        if let c = cache[s.name] { return c }
        let frames = try Evaluation.frames(s)
        let embs = try frames.map { try sam.embed(rgb: $0.image.pixels, width: $0.image.width, height: $0.image.height) }
        cache[s.name] = (frames, embs)
        return (frames, embs)
    }
}

/// Per-object, per-frame outcome of a run.
struct RunResult {
    var iou: [[Float]]              // [object][frame]
    var status: [[TrackerStatus]]     // [object][frame] (the baseline has none: .tracked, or .lost once stopped)
    var results: [[FrameObjectResult]] = []  // [frame][object] (new tracker only)
    var stateBytes: [UInt8] = []
}

enum Runs {
    /// The old tracker exactly as VideoTracker.track runs it (its own nextPrompt), but
    /// decoding from the cached embeddings; one object at a time, from the tight box of
    /// the ground truth on frame 0. After it loses the object (empty mask) it stops: the
    /// remaining frames get empty masks.
    static func baseline(_ s: Evaluation.Sequence) throws -> RunResult {
        let sam = try Harness.shared.model()
        let (frames, embs) = try Harness.shared.embedded(s)
        var out = RunResult(iou: [], status: [])
        for k in s.objects.indices {
            var prompt: SamPrompt? = SamPrompt(box: Evaluation.tightBox(frames[0].truth[k]))
            var ious: [Float] = [], st: [TrackerStatus] = []
            for (f, emb) in zip(frames, embs) {
                guard let p = prompt else {
                    ious.append(Evaluation.iou(try BinaryMask(width: f.image.width, height: f.image.height), f.truth[k])); st.append(.lost); continue
                }
                let pred = try sam.predict(emb, p)
                let best = pred.bestMaskIndex, side = pred.lowResLogits.shape[1]
                let logits = Array(pred.lowResLogits.data[(best * side * side)..<((best + 1) * side * side)])
                let mask = try BinaryMask(width: f.image.width, height: f.image.height, values: pred.mask(best))
                ious.append(Evaluation.iou(mask, f.truth[k])); st.append(.tracked)
                prompt = VideoTracker.nextPrompt(after: mask, logits: logits, side: side)
            }
            out.iou.append(ious); out.status.append(st)
        }
        return out
    }

    /// The new tracker, all objects together (ids 1…n in the sequence's order), started
    /// from the ground truth's tight boxes on frame 0 (or `start`), with `corrections`
    /// per frame index.
    static func tracker(_ s: Evaluation.Sequence, config: TrackerConfig = .init(), frameRange: Range<Int>? = nil,
                        start: [UInt32: TrackerPrompt]? = nil, corrections: [Int: [UInt32: TrackerPrompt]] = [:],
                        state initial: StreamState = StreamState(), predictCalls: ((Int) -> Void)? = nil) throws -> RunResult {
        let sam = try Harness.shared.model()
        let (frames, embs) = try Harness.shared.embedded(s)
        let tracker = ObjectTracker(config: config)
        var state = initial
        let range = frameRange ?? frames.indices
        var out = RunResult(iou: Array(repeating: [], count: s.objects.count), status: Array(repeating: [], count: s.objects.count))
        for i in range {
            var add: [UInt32: TrackerPrompt] = [:]
            if i == range.lowerBound, state.objects.isEmpty {
                add = start ?? Dictionary(uniqueKeysWithValues: s.objects.indices.map { k in
                    let b = Evaluation.tightBox(frames[i].truth[k])
                    return (UInt32(k + 1), TrackerPrompt(box: .init(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1)))
                })
            }
            let emb = embs[i]
            let results = try tracker.step(state: &state, frameIndex: UInt64(i), embedding: emb, add: add, correct: corrections[i] ?? [:]) { prompts in
                predictCalls?(prompts.count)
                return try sam.predict(emb, prompts)
            }
            out.results.append(results)
            for (k, r) in results.enumerated() {
                XCTAssertEqual(r.objectID, UInt32(k + 1))
                out.iou[k].append(Evaluation.iou(r.mask, frames[i].truth[k])); out.status[k].append(r.status)
            }
        }
        out.stateBytes = state.serialized()
        return out
    }

    static func diagnostics(_ s: Evaluation.Sequence, _ r: RunResult) -> String {
        s.objects.indices.map { k in
            "[diag] \(s.name) \(s.objects[k]): " + r.results.map { f in
                f[k].appearance.map { String(format: "%.2f", $0) } ?? "-"
            }.joined(separator: " ")
        }.joined(separator: "\n")
    }

    static func table(_ s: Evaluation.Sequence, _ label: String, _ r: RunResult) -> String {
        s.objects.indices.map { k in
            let cells = zip(r.iou[k], r.status[k]).map { v, st in String(format: "%.2f", v) + (st == .lost ? "L" : st == .reacquired ? "R" : st == .corrected ? "C" : "") }
            return "[eval] \(s.name) \(s.objects[k]) \(label): " + cells.joined(separator: " ")
        }.joined(separator: "\n")
    }
}
