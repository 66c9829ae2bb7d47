import Foundation
import Tensor

/// Full-size timing for `segflow bench`: one forward (preprocessed random inputs → query
/// half) of a model, typically `SegGPT.randomWeights()` at the official ViT-L geometry.
public enum SegGPTBenchmark {
    public struct Result: Sendable, Codable, Equatable {
        /// Seconds of each measured forward, in run order.
        public var seconds: [Double]
        /// Seconds to build the model (random weights), if measured.
        public var buildSeconds: Double?
        /// Floating-point operations issued to BLAS by one forward (2·m·n·k summed).
        public var gemmFlops: Double
        /// Seconds inside SGEMM during the last run, summed over threads.
        public var gemmSeconds: Double = 0
        public var median: Double {
            let s = seconds.sorted()
            guard !s.isEmpty else { return .nan }
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
    }

    /// Deterministic pseudo-random pixel values `[3, h, w]` in the normalised range.
    public static func randomPixels(_ config: SegGptConfig, seed: UInt64) -> Tensor {
        let (h, w) = config.halfImageSize
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        return Tensor(shape: [3, h, w]) { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
    }

    /// Times `runs` forwards after `warmup` unmeasured ones, with `prompts` prompt pairs
    /// (several prompts = feature ensemble; Painter takes one).
    public static func forward(_ model: SegGPT, prompts: Int = 1, runs: Int = 3, warmup: Int = 1) throws(SegGPTError) -> Result {
        let c = model.config
        let q = randomPixels(c, seed: 1)
        let pairs = (0..<prompts).map { (image: randomPixels(c, seed: 10 + UInt64($0)), target: randomPixels(c, seed: 20 + UInt64($0))) }
        for _ in 0..<warmup { _ = try model.predictQueryHalf(query: q, prompts: pairs) }
        var seconds: [Double] = []
        var flops = 0.0, gemmSeconds = 0.0
        for _ in 0..<runs {
            GEMMStats.reset()
            let t0 = ContinuousClock.now
            _ = try model.predictQueryHalf(query: q, prompts: pairs)
            let d = ContinuousClock.now - t0
            seconds.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
            flops = Double(GEMMStats.flops)
            gemmSeconds = Double(GEMMStats.nanoseconds) * 1e-9
        }
        return Result(seconds: seconds, buildSeconds: nil, gemmFlops: flops, gemmSeconds: gemmSeconds)
    }

    /// Builds random ViT-L (or `config`) weights and times the forward.
    public static func randomFullSize(kind: SegGPT.Kind = .seggpt, config: SegGptConfig = .vitLarge, prompts: Int = 1,
                                      runs: Int = 3, warmup: Int = 1) throws(SegGPTError) -> Result {
        let t0 = ContinuousClock.now
        let model = try SegGPT.randomWeights(kind: kind, config: config)
        let d = ContinuousClock.now - t0
        var r = try forward(model, prompts: prompts, runs: runs, warmup: warmup)
        r.buildSeconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        return r
    }
}
