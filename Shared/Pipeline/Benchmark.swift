import Checkpoint
import COpenBLAS
import Foundation
import SAM
import Tensor

/// `segflow bench`: llama-bench-style timings of the encoder and decoder stages.
/// Warm-up runs are discarded; medians and spread come from the timed runs.
public enum Benchmark {
    public struct Options: Sendable {
        public var model: SamModelKind
        public var checkpoint: String?
        public var randomWeights = false
        public var encoderRuns = 5
        public var decoderRuns = 20
        public var warmup = 1
        public var threads: Int?
        public init(model: SamModelKind) { self.model = model }
    }

    public struct Row: Codable, Sendable {
        public var stage: String
        public var runs: Int
        public var medianMs: Double, minMs: Double, maxMs: Double, sdMs: Double
        /// SGEMM work per run divided by the median wall time (GEMM-bound stages only).
        public var gflops: Double?
        /// Share of the stage's wall time spent inside SGEMM.
        public var gemmShare: Double?
        public var note: String?
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var weights: String
        /// GEMM precision (`--precision`): f32 or bf16; `f32Engine` names f32's library.
        public var precision: String
        public var f32Engine: String
        public var blasCore: String
        public var blasThreads: Int
        public var imageSize: Int
        public var loadMs: Double
        public var peakRSSMiB: Double
        public var rows: [Row]

        public var markdown: String {
            var s = "model: \(model)  weights: \(weights)  precision: \(precision)  f32 GEMM: \(f32Engine)  OpenBLAS core: \(blasCore)  threads: \(blasThreads)  input: \(imageSize)²  "
            s += String(format: "load: %.0f ms  peak RSS: %.0f MiB\n\n", loadMs, peakRSSMiB)
            s += "| stage | runs | median ms | min ms | max ms | sd ms | GFLOP/s | in SGEMM |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
            for r in rows {
                let g = r.gflops.map { String(format: "%.1f", $0) } ?? "–"
                let share = r.gemmShare.map { String(format: "%.0f%%", 100 * $0) } ?? "–"
                s += String(format: "| %@ | %d | %.2f | %.2f | %.2f | %.2f | %@ | %@ |\n",
                            r.stage + (r.note.map { " (\($0))" } ?? ""), r.runs, r.medianMs, r.minMs, r.maxMs, r.sdMs, g, share)
            }
            return s
        }
    }

    /// Peak resident set size of this process (Linux reports ru_maxrss in KiB).
    public static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static func measure(_ stage: String, runs: Int, warmup: Int, divideBy: Int = 1, note: String? = nil,
                        _ body: () throws -> Void) rethrows -> Row {
        for _ in 0..<warmup { try body() }
        var times: [Double] = []
        GEMMStats.reset()
        for _ in 0..<runs {
            let t0 = Timing.nowMs()
            try body()
            times.append((Timing.nowMs() - t0) / Double(divideBy))
        }
        if GEMMStats.profiling {
            FileHandle.standardError.write(Data("GEMM shapes, \(stage) (\(runs) runs; SEGFLOW_GEMM_PROFILE=1):\n\(GEMMStats.shapeReport())\n".utf8))
        }
        let flopsPerRun = Double(GEMMStats.flops) / Double(runs)
        let gemmMsPerRun = Double(GEMMStats.nanoseconds) / 1e6 / Double(runs)
        times.sort()
        let median = Timing.median(times)
        let mean = times.reduce(0, +) / Double(times.count)
        let sd = (times.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, times.count - 1))).squareRoot()
        let wallPerRun = median * Double(divideBy)
        return Row(stage: stage, runs: runs, medianMs: median, minMs: times.first!, maxMs: times.last!, sdMs: sd,
                   gflops: flopsPerRun > 1e6 ? flopsPerRun / (wallPerRun / 1e3) / 1e9 : nil,
                   gemmShare: flopsPerRun > 1e6 ? min(1, gemmMsPerRun / wallPerRun) : nil, note: note)
    }

    /// A deterministic 4:3 test photo stand-in (smooth gradients plus texture); encoder
    /// cost does not depend on content.
    public static func syntheticImage(width: Int = 1024, height: Int = 768) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                px[i] = UInt8((x * 255) / width)
                px[i + 1] = UInt8((y * 255) / height)
                px[i + 2] = UInt8(((x ^ y) & 0xff))
            }
        }
        return px
    }

    public static func run(_ o: Options, progress: (String) -> Void = { _ in }) throws -> Report {
        if let t = o.threads { openblas_set_num_threads(Int32(t)) }
        let t0 = Timing.nowMs()
        let sam: Sam
        let weights: String
        if o.randomWeights {
            sam = try Sam.build(o.model, WeightLoader.synthesizing(seed: 1))
            weights = "random (official shapes)"
        } else {
            let url = try ModelStore.checkpoint(for: o.model, given: o.checkpoint)
            sam = try Sam.load(o.model, checkpoint: url)
            weights = url.lastPathComponent
        }
        let loadMs = Timing.nowMs() - t0
        let (w, h) = (1024, 768)
        let rgb = syntheticImage(width: w, height: h)
        var rows: [Row] = []
        progress("preprocess")
        rows.append(try measure("preprocess", runs: o.encoderRuns, warmup: o.warmup) { _ = try sam.preprocess(rgb: rgb, width: w, height: h) })
        let (input, inputSize) = try sam.preprocess(rgb: rgb, width: w, height: h)
        progress("encoder (\(o.encoderRuns) runs)")
        var embedding = Tensor(zeros: [1])
        rows.append(measure("image encoder", runs: o.encoderRuns, warmup: o.warmup) {
            switch sam.encoder {
            case let .vit(e): embedding = e(input)
            case let .tinyViT(e): embedding = e(input)
            }
        })
        let emb = ImageEmbedding(model: o.model, embedding: embedding, originalSize: (h, w), inputSize: inputSize)
        progress("decoder")
        let point = SamPrompt(points: [.init(x: 500, y: 400, label: 1)])
        let box = SamPrompt(box: (x0: 200, y0: 150, x1: 700, y1: 600))
        rows.append(try measure("decode 1 point", runs: o.decoderRuns, warmup: o.warmup) { _ = try sam.predict(emb, point) })
        rows.append(try measure("decode 1 box", runs: o.decoderRuns, warmup: o.warmup) { _ = try sam.predict(emb, box) })
        var batch: [SamPrompt] = []
        for i in 0..<16 {
            let p = SamPrompt.Point(x: Float(60 * i + 20), y: Float(40 * i + 30), label: 1)
            batch.append(SamPrompt(points: [p]))
        }
        rows.append(try measure("decode batch of 16 points", runs: max(3, o.decoderRuns / 4), warmup: o.warmup, divideBy: 16,
                                note: "per prompt") { _ = try sam.predict(emb, batch) })
        rows.append(try measure("decode 1 point, multimask", runs: o.decoderRuns, warmup: o.warmup) {
            _ = try sam.predict(emb, SamPrompt(points: point.points, multimask: true))
        })
        return Report(model: o.model.rawValue, weights: weights, precision: TensorRuntime.precision.rawValue,
                      f32Engine: TensorRuntime.f32Engine.rawValue, blasCore: BLASInfo.coreName, blasThreads: BLASInfo.threads,
                      imageSize: sam.imageSize, loadMs: loadMs, peakRSSMiB: peakRSSMiB(), rows: rows)
    }
}
