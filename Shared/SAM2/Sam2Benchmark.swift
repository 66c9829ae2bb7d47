import Checkpoint
import Foundation
import SAM
import Tensor

/// Full-size SAM 2 timing for `segflow bench --model sam2.1-hiera-*`: the image encoder (Hiera
/// + neck + the decoder's high-res projections, what every frame costs in the image-encoder)
/// and the per-frame tracking step in the prompt-decoder (memory attention + mask decoder +
/// memory encoder per object, features already computed) for 1 and 3 objects.
public enum Sam2Benchmark {
    public struct Report: Sendable, Codable, Equatable {
        public var model: String
        public var precision: String
        public var threads: Int
        public var encoderSeconds: [Double]
        public var encoderMedianSeconds: Double
        /// Per-frame step seconds (frames 2…), by object count.
        public var trackMedianSeconds: [String: Double]
        public var frames: Int
        /// Serialized tracking state per object after `frames` frames, and its bound (reached
        /// after `memoryWindow` frames; constant from then on).
        public var stateBytesPerObject: Int
        public var stateBoundBytesPerObject: Int
        public var memoryWindow: Int
        public var buildSeconds: Double
        public var gemmShareEncoder: Double
        /// GEMM work of one encoder run (2·m·n·k summed), GFLOP.
        public var encoderGEMMGFLOP: Double = 0

        public var markdown: String {
            let t1 = trackMedianSeconds["1"].map { String(format: "%.3f s", $0) } ?? "-"
            let t3 = trackMedianSeconds["3"].map { String(format: "%.3f s", $0) } ?? "-"
            return """
            | model | precision | threads | encoder median | encoder GEMM | GEMM share | track/frame 1 obj | track/frame 3 obj | state/object after \(frames) frames | bound |
            |---|---|---|---|---|---|---|---|---|---|
            | \(model) | \(precision) | \(threads) | \(String(format: "%.3f s", encoderMedianSeconds)) | \(String(format: "%.0f GFLOP (%.0f GFLOP/s)", encoderGEMMGFLOP, encoderGEMMGFLOP / encoderMedianSeconds)) | \(String(format: "%.0f %%", 100 * gemmShareEncoder)) | \(t1) | \(t3) | \(stateBytesPerObject / 1024) KiB | \(stateBoundBytesPerObject / 1024) KiB |
            """
        }
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Deterministic random weights with the real names and shapes (transformers layout).
    public static func randomModel(config: Sam2Config = .hieraTiny, video: Sam2VideoConfig = .init(), seed: UInt64 = 0) throws -> Sam2Video {
        try Sam2Video(WeightLoader.synthesizing(seed: seed), config: config, video: video)
    }

    public static func run(model name: String, _ m: Sam2Video, precision: String, threads: Int, encoderRuns: Int = 5, frames: Int = 8,
                           objectCounts: [Int] = [1, 3], buildSeconds: Double = 0, progress: (String) -> Void = { _ in }) throws -> Report {
        let s = m.image.config.imageSize
        var state: UInt64 = 0x5EED
        let pixels = Tensor(shape: [1, 3, s, s]) { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
        progress("encoder warm-up")
        var emb = m.image.embed(pixels: pixels, originalSize: (s, s))
        var enc: [Double] = []
        var gemm = 0.0, gflop = 0.0
        for i in 0..<encoderRuns {
            progress("encoder \(i + 1)/\(encoderRuns)")
            GEMMStats.reset()
            let t0 = ContinuousClock.now
            emb = m.image.embed(pixels: pixels, originalSize: (s, s))
            let d = seconds(ContinuousClock.now - t0)
            enc.append(d)
            gemm = Double(GEMMStats.nanoseconds) * 1e-9 / d
            gflop = Double(GEMMStats.flops) / 1e9
        }
        if GEMMStats.profiling {
            FileHandle.standardError.write(Data("GEMM shapes, last encoder run (SEGFLOW_GEMM_PROFILE=1):\n\(GEMMStats.shapeReport())\n".utf8))
        }
        let boxes: [(Float, Float, Float, Float)] = [(100, 100, 400, 400), (500, 500, 800, 900), (50, 600, 300, 1000)]
        var track: [String: Double] = [:]
        var stateBytes = 0
        for n in objectCounts {
            var states = [Sam2ObjectState](repeating: Sam2ObjectState(), count: n)
            var prompts: [Int: SamPrompt] = [:]
            for i in 0..<n { let b = boxes[i % boxes.count]; prompts[i] = SamPrompt(box: (b.0 * Float(s) / 1024, b.1 * Float(s) / 1024, b.2 * Float(s) / 1024, b.3 * Float(s) / 1024)) }
            _ = try m.step(frame: 0, features: emb, states: &states, prompts: prompts)
            var times: [Double] = []
            for t in 1...max(2, frames) {
                progress("track \(n) object(s), frame \(t)/\(max(2, frames))")
                let t0 = ContinuousClock.now
                _ = try m.step(frame: t, features: emb, states: &states)
                if t >= 2 { times.append(seconds(ContinuousClock.now - t0)) }
            }
            track["\(n)"] = median(times)
            if n == objectCounts.first {
                var one = Sam2StreamState()
                one.objects = [.init(id: 1, memory: states[0])]
                stateBytes = one.serialized().count
            }
        }
        let g = m.image.config.embeddingGrid, mem = m.video.memoryEncoderOutputChannels, c = m.image.config.promptHiddenSize
        // One conditioning memory (with its low-res mask), num_maskmem − 1 recent spatial
        // memories, and pointers of the rest of the pointer window.
        let perMemory = 13 + 4 * c + 8, spatial = 8 + 2 * g * g * mem
        let bound = 32 + (m.memoryWindow + 1) * perMemory + m.video.numMaskmem * spatial + 4 * 16 * g * g
        return Report(model: name, precision: precision, threads: threads, encoderSeconds: enc, encoderMedianSeconds: median(enc),
                      trackMedianSeconds: track, frames: frames, stateBytesPerObject: stateBytes, stateBoundBytesPerObject: bound,
                      memoryWindow: m.memoryWindow, buildSeconds: buildSeconds, gemmShareEncoder: gemm, encoderGEMMGFLOP: gflop)
    }
}
