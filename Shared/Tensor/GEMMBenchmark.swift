import Dispatch

/// GEMM throughput per backend on linear-layer shapes, for `doctor`, `bench` and the f32
/// engine choice. Shapes are `m×n×k` as in `Ops.linear`: `[m, k]` activations times a
/// `[n, k]` weight (transposed by flag); the bf16 rows use a `GEMMWeight` (weight
/// converted once, outside the timing) and convert the activations in every run, as a
/// model's linear layer does.
public enum GEMMBenchmark {
    public struct Shape: Sendable, Hashable, Codable, CustomStringConvertible {
        public var m: Int, n: Int, k: Int
        public init(m: Int, n: Int, k: Int) { self.m = m; self.n = n; self.k = k }
        public var description: String { "\(m)×\(n)×\(k)" }
    }

    /// ViT-B/LiteMedSAM-like: qkv/proj over 4096 tokens, an MLP layer over 1024 tokens, a square GEMM.
    public static let defaultShapes: [Shape] = [
        Shape(m: 4096, n: 768, k: 768), Shape(m: 1024, n: 3072, k: 768), Shape(m: 1024, n: 1024, k: 1024),
    ]

    public struct Row: Sendable, Codable, Equatable {
        public var shape: Shape
        public var backend: GEMMBackend
        /// Median over the timed runs.
        public var gflops: Double
        /// "OpenBLAS <core>" or oneDNN's implementation name (e.g. "brg:avx512_core_bf16").
        public var implementation: String
        public var threads: Int
    }

    /// The backends this machine can run: bf16 only with native support.
    public static var availableBackends: [GEMMBackend] {
        BF16Support.detect().isNative ? [.openBLASF32, .oneDNNF32, .oneDNNBF16] : [.openBLASF32, .oneDNNF32]
    }

    /// One warm-up (creates oneDNN's primitive), then the median of `repetitions` runs per
    /// backend and shape, on `TensorRuntime.gemmThreads` threads.
    public static func measure(shapes: [Shape] = defaultShapes, backends: [GEMMBackend] = availableBackends,
                               repetitions: Int = 5) -> [Row] {
        var rows: [Row] = []
        for s in shapes {
            var rng = UInt64(0x9E37_79B9_7F4A_7C15)
            func next() -> Float {
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Float(rng >> 40) / Float(1 << 24) - 0.5
            }
            let a = (0..<(s.m * s.k)).map { _ in next() }
            let weight = GEMMWeight(Tensor(shape: [s.n, s.k], data: (0..<(s.n * s.k)).map { _ in next() }))
            var c = [Float](repeating: 0, count: s.m * s.n)
            for backend in backends {
                if backend == .oneDNNBF16 { _ = weight.bf16() }
                let seconds = a.withUnsafeBufferPointer { ap in
                    weight.tensor.data.withUnsafeBufferPointer { wp in
                        c.withUnsafeMutableBufferPointer { cp in
                            func run() {
                                Ops.gemm(backend: backend, transB: true, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!, lda: s.k,
                                         b: wp.baseAddress!, ldb: s.k, c: cp.baseAddress!, ldc: s.n,
                                         bWeight: backend == .oneDNNBF16 ? weight : nil)
                            }
                            return GEMMBenchmark.medianSeconds(repetitions: repetitions, run)
                        }
                    }
                }
                rows.append(Row(shape: s, backend: backend, gflops: 2 * Double(s.m * s.n * s.k) / seconds / 1e9,
                                implementation: implementation(backend, s), threads: TensorRuntime.gemmThreads))
            }
        }
        return rows
    }

    static func implementation(_ backend: GEMMBackend, _ s: Shape) -> String {
        switch backend {
        case .openBLASF32: "OpenBLAS \(BLASInfo.coreName)"
        case .oneDNNF32: OneDNNGEMM.implementation(m: s.m, n: s.n, k: s.k, bf16: false)
        case .oneDNNBF16: OneDNNGEMM.implementation(m: s.m, n: s.n, k: s.k, bf16: true)
        }
    }

    /// A markdown table: one line per shape, one GFLOP/s column per backend.
    public static func table(_ rows: [Row]) -> String {
        var shapes: [Shape] = []
        for r in rows where !shapes.contains(r.shape) { shapes.append(r.shape) }
        var backends: [GEMMBackend] = []
        for r in rows where !backends.contains(r.backend) { backends.append(r.backend) }
        var lines = ["| m×n×k | " + backends.map { "\($0.rawValue) GFLOP/s" }.joined(separator: " | ") + " |",
                     "|---|" + backends.map { _ in "---:|" }.joined()]
        for s in shapes {
            let cells = backends.map { b in
                rows.first { $0.shape == s && $0.backend == b }.map { String(format: "%.0f", $0.gflops) } ?? "–"
            }
            lines.append("| \(s) | " + cells.joined(separator: " | ") + " |")
        }
        var impls: [String] = []
        for r in rows where !impls.contains("\(r.backend.rawValue): \(r.implementation)") {
            impls.append("\(r.backend.rawValue): \(r.implementation)")
        }
        lines.append("")
        lines.append("threads: \(rows.first?.threads ?? TensorRuntime.gemmThreads); " + impls.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}

/// How the f32 GEMM engine is chosen.
public enum F32EngineChoice: Sendable, Equatable {
    /// Measure OpenBLAS and oneDNN on `GEMMBenchmark`'s representative shape; take the faster.
    case automatic
    /// Use this engine, no measurement (an explicit user choice always wins).
    case fixed(F32GEMMEngine)
}

/// The outcome of `TensorRuntime.selectF32Engine`, for logs and `doctor`.
public struct F32EngineSelection: Sendable, Equatable, Codable {
    public var engine: F32GEMMEngine
    /// Measured GFLOP/s per engine (empty when the engine was fixed by the caller).
    public var measured: [GEMMBenchmark.Row]
    public var reason: String
}

extension TensorRuntime {
    /// Representative shape for the automatic f32 engine choice: a ViT-B linear layer over
    /// 1024 tokens (qkv/MLP layers dominate the encoders' FLOPs).
    public static let f32EngineProbeShape = GEMMBenchmark.Shape(m: 1024, n: 768, k: 768)

    /// Sets `f32Engine`: the given one, or (`.automatic`) the faster of OpenBLAS and oneDNN
    /// on `f32EngineProbeShape` (about 0.1 s of measurement). A tie (within 5%) keeps
    /// OpenBLAS, the engine every kernel test is also run against.
    @discardableResult
    public static func selectF32Engine(_ choice: F32EngineChoice = .automatic, repetitions: Int = 7) -> F32EngineSelection {
        switch choice {
        case .fixed(let engine):
            f32Engine = engine
            return F32EngineSelection(engine: engine, measured: [], reason: "\(engine.rawValue) chosen by the caller")
        case .automatic:
            let rows = GEMMBenchmark.measure(shapes: [f32EngineProbeShape], backends: [.openBLASF32, .oneDNNF32],
                                             repetitions: repetitions)
            let blas = rows.first { $0.backend == .openBLASF32 }?.gflops ?? 0
            let dnnl = rows.first { $0.backend == .oneDNNF32 }?.gflops ?? 0
            let engine: F32GEMMEngine = dnnl > 1.05 * blas ? .oneDNN : .openBLAS
            f32Engine = engine
            let reason = String(format: "measured on %@: OpenBLAS %.0f, oneDNN %.0f GFLOP/s", "\(f32EngineProbeShape)", blas, dnnl)
            return F32EngineSelection(engine: engine, measured: rows, reason: reason)
        }
    }
}

extension GEMMBenchmark {
    /// Median wall seconds of `repetitions` calls of `run` after one untimed warm-up call.
    public static func medianSeconds(repetitions: Int, _ run: () -> Void) -> Double {
        run()
        var times: [Double] = []
        for _ in 0..<max(1, repetitions) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            run()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }
}
