import CKernels
import CDNNL
import COpenBLAS
import Foundation
import Synchronization

/// Arithmetic of the GEMMs (linear layers, matmuls, attention products, im2col
/// convolutions). Everything else (norms, softmax, activations, resizes) is f32 always.
public enum GEMMPrecision: String, Sendable, CaseIterable, Codable {
    /// Float32 operands and accumulation (OpenBLAS or oneDNN, see `F32GEMMEngine`).
    case f32
    /// bfloat16 operands, Float32 accumulation and Float32 output (oneDNN matmul), only
    /// on CPUs with native bf16 dot products (AVX512_BF16 or AMX-BF16). Weights are
    /// converted once (`GEMMWeight`), activations on every call.
    case bf16
}

/// Which library runs Float32 GEMMs.
public enum F32GEMMEngine: String, Sendable, CaseIterable, Codable {
    case openBLAS = "openblas"
    case oneDNN = "onednn"
}

/// One concrete way to run a GEMM (what the process-wide settings resolve to per call).
public enum GEMMBackend: String, Sendable, CaseIterable, Codable {
    case openBLASF32 = "openblas-f32"
    case oneDNNF32 = "onednn-f32"
    case oneDNNBF16 = "onednn-bf16"
}

public enum TensorRuntimeError: Error, Equatable, CustomStringConvertible {
    /// bf16 was requested on a machine (or oneDNN build) without native bf16 GEMM kernels.
    /// Segflow never runs an emulated bf16 path: it would be slower than f32 and no more exact.
    case bf16Unsupported(reason: String)
    case invalidThreadCount(Int)

    public var description: String {
        switch self {
        case .bf16Unsupported(let reason): "bf16 precision is not available: \(reason)"
        case .invalidThreadCount(let n): "GEMM thread count must be ≥ 1, got \(n)"
        }
    }
}

/// Whether this process can run bf16 GEMMs natively, and why (not).
public struct BF16Support: Sendable, Equatable, Codable {
    /// /proc/cpuinfo flag `avx512_bf16` (CPUID.(EAX=7,ECX=1):EAX[5]).
    public var cpuAVX512BF16: Bool
    /// /proc/cpuinfo flag `amx_bf16` (CPUID.(EAX=7,ECX=0):EDX[22]).
    public var cpuAMXBF16: Bool
    /// The ISA oneDNN's dispatcher will use, e.g. "avx512_core_bf16" (respects DNNL_MAX_CPU_ISA).
    public var oneDNNISA: String
    public var oneDNNISAHasBF16: Bool
    /// Set when `BF16Support.disableVariable` is in the environment.
    public var disabledByEnvironment: Bool

    /// Testing aid: with this environment variable set (to anything non-empty), the process
    /// behaves as on a CPU without native bf16 (bf16 is refused, bf16 tests skip).
    public static let disableVariable = "SEGFLOW_PRETEND_NO_NATIVE_BF16"

    public var isNative: Bool { (cpuAVX512BF16 || cpuAMXBF16) && oneDNNISAHasBF16 && !disabledByEnvironment }

    /// Why bf16 is unavailable, or nil when it is native.
    public var unavailableReason: String? {
        if disabledByEnvironment { return "\(Self.disableVariable) is set (native bf16 support pretended off)" }
        if !(cpuAVX512BF16 || cpuAMXBF16) { return "the CPU has neither AVX512_BF16 nor AMX-BF16" }
        if !oneDNNISAHasBF16 { return "oneDNN dispatches to \(oneDNNISA), which has no bf16 instructions (DNNL_MAX_CPU_ISA?)" }
        return nil
    }

    public var summary: String {
        let cpu = [cpuAVX512BF16 ? "AVX512_BF16" : nil, cpuAMXBF16 ? "AMX-BF16" : nil].compactMap { $0 }
        let cpuText = cpu.isEmpty ? "no native bf16" : cpu.joined(separator: " + ")
        return "CPU \(cpuText); oneDNN ISA \(oneDNNISA)" + (unavailableReason.map { " — bf16 unavailable: \($0)" } ?? "")
    }

    /// Current support; reads the environment on every call (the CPU flags once).
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) -> BF16Support {
        let isa = OneDNN.effectiveISA
        return BF16Support(cpuAVX512BF16: cpuFlags.contains("avx512_bf16"), cpuAMXBF16: cpuFlags.contains("amx_bf16"),
                           oneDNNISA: isa.name, oneDNNISAHasBF16: isa.hasBF16,
                           disabledByEnvironment: !(environment[disableVariable] ?? "").isEmpty)
    }

    /// `detect().isNative` without building the environment dictionary (cheap enough per call).
    static var isNativeNow: Bool {
        if let v = getenv(disableVariable), v.pointee != 0 { return false }
        return nativeHardware
    }

    static let nativeHardware: Bool = {
        let s = detect(environment: [:])
        return s.isNative
    }()

    static let cpuFlags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()
}

extension TensorRuntime {
    static let precisionState = Atomic<Int>(0)        // 0 f32, 1 bf16
    static let f32EngineState = Atomic<Int>(0)        // 0 OpenBLAS, 1 oneDNN
    static let gemmThreadState = Atomic<Int>(0)       // 0: follow OpenBLAS's count
    static let oneDNNMinimumState = Atomic<Int>(defaultOneDNNMinimumMultiplyAdds)
    static let bf16MinimumState = Atomic<Int>(defaultBF16MinimumMultiplyAdds)
    static let fusedEpilogueState = Atomic<Bool>(ProcessInfo.processInfo.environment[unfusedEpiloguesVariable]?.isEmpty ?? true)
    /// Benchmarking aid: set (non-empty), bf16 GEMMs apply their epilogue (GELU) as a
    /// separate pass as f32 does, instead of oneDNN's post-op, to measure what fusion saves.
    public static let unfusedEpiloguesVariable = "SEGFLOW_UNFUSED_EPILOGUES"

    /// GEMMs of at most this many multiply-adds (m·n·k) stay on OpenBLAS with the oneDNN
    /// f32 engine selected: oneDNN's per-call cost (memory objects, stream, activation conversion)
    /// is several µs, more than such a GEMM takes (TinyViT's 49-token window attention
    /// issues thousands of 49×49×32 products), and their share of the FLOPs is tiny.
    /// Same value as attention's serial-block limit, so blocks cut for our own parallel
    /// loops never go to oneDNN (whose OpenMP team must not run inside those loops).
    public static let defaultOneDNNMinimumMultiplyAdds = Ops.blasSerialLimit

    /// In bf16 precision, GEMMs of at most this many multiply-adds run in f32 (on the f32
    /// engine). Measured on one core (AVX512_BF16, oneDNN 2.6 brgemm, activations converted
    /// per call): bf16 already beats both f32 engines at 64³ (82 vs 74 GFLOP/s) and by
    /// 1.6–2× from 128³ up, so the limit is only the serial-block limit: blocks cut for our
    /// own parallel loops never start an OpenMP team there.
    public static let defaultBF16MinimumMultiplyAdds = Ops.blasSerialLimit

    /// Process-wide GEMM precision; `.f32` until `setPrecision(.bf16)` succeeds.
    public static var precision: GEMMPrecision { precisionState.load(ordering: .relaxed) == 1 ? .bf16 : .f32 }

    /// Sets the GEMM precision. `.bf16` is refused (the setting is unchanged) unless the CPU
    /// and oneDNN have native bf16 kernels and oneDNN's chosen bf16 matmul is not its
    /// reference (emulated) implementation. Call at start-up, before model work runs.
    public static func setPrecision(_ p: GEMMPrecision) throws(TensorRuntimeError) {
        if p == .bf16 {
            let support = BF16Support.detect()
            if let reason = support.unavailableReason { throw .bf16Unsupported(reason: reason) }
            let impl = OneDNNGEMM.implementation(m: 256, n: 256, k: 256, bf16: true)
            if impl.hasPrefix("ref") { throw .bf16Unsupported(reason: "oneDNN offers only its reference bf16 matmul (\(impl))") }
        }
        precisionState.store(p == .bf16 ? 1 : 0, ordering: .relaxed)
    }

    /// The library that runs f32 GEMMs (and small GEMMs in bf16 precision). Default
    /// OpenBLAS; `selectF32Engine(.automatic)` measures both and picks the faster.
    public static var f32Engine: F32GEMMEngine {
        get { f32EngineState.load(ordering: .relaxed) == 1 ? .oneDNN : .openBLAS }
        set { f32EngineState.store(newValue == .oneDNN ? 1 : 0, ordering: .relaxed) }
    }

    /// Threads per GEMM, for OpenBLAS and oneDNN alike. Defaults to OpenBLAS's own count
    /// (OPENBLAS_NUM_THREADS or the core count); setting it sets OpenBLAS's too.
    public static var gemmThreads: Int {
        let t = gemmThreadState.load(ordering: .relaxed)
        return t > 0 ? t : max(1, Int(openblas_get_num_threads()))
    }

    public static func setGEMMThreads(_ n: Int) throws(TensorRuntimeError) {
        guard n >= 1 else { throw .invalidThreadCount(n) }
        openblas_set_num_threads(Int32(n))
        gemmThreadState.store(n, ordering: .relaxed)
    }

    /// See `defaultOneDNNMinimumMultiplyAdds`; 0 sends every f32 GEMM to oneDNN when it is
    /// the f32 engine (tests use it to cover tiny shapes through the process-wide path).
    public static var oneDNNMinimumMultiplyAdds: Int {
        get { oneDNNMinimumState.load(ordering: .relaxed) }
        set { oneDNNMinimumState.store(max(0, newValue), ordering: .relaxed) }
    }

    /// See `defaultBF16MinimumMultiplyAdds`; 0 runs every GEMM in bf16 when bf16 is on.
    /// (Small-GEMM numbers from `GEMMBenchmark` with 2 OpenMP threads on a machine shared
    /// with other work swing by 10–100×: an OpenMP team waits for its descheduled member.)
    public static var bf16MinimumMultiplyAdds: Int {
        get { bf16MinimumState.load(ordering: .relaxed) }
        set { bf16MinimumState.store(max(0, newValue), ordering: .relaxed) }
    }

    /// Whether bf16 GEMMs run their epilogue inside oneDNN's kernel (the default) or as a
    /// separate pass (`unfusedEpiloguesVariable`; tests compare the two).
    public static var fusesEpilogues: Bool {
        get { fusedEpilogueState.load(ordering: .relaxed) }
        set { fusedEpilogueState.store(newValue, ordering: .relaxed) }
    }

    /// Whether the 16-lane AVX-512 kernels (CKernels: softmax) run instead of the 8-lane
    /// Swift ones: on when the CPU has AVX512F/BW/VL, unless `SEGFLOW_NO_AVX512=1` (for
    /// A/B runs; tests compare both). The Swift module itself is built for 8-lane AVX2
    /// (`-target-cpu haswell`) so the binary runs on CPUs without AVX-512.
    /// Measured on SAM 2 Hiera-T bf16 (2 threads): the attention softmax was 8 % of the
    /// encoder's and 13 % of tracking's CPU samples at 8 lanes.
    public static var usesAVX512Kernels: Bool {
        get { avx512State.load(ordering: .relaxed) }
        set { avx512State.store(newValue && avx512Available, ordering: .relaxed) }
    }
    public static let avx512Available = segflow_kernels_avx512() == 1
    static let avx512State = Atomic<Bool>(avx512Available && ProcessInfo.processInfo.environment["SEGFLOW_NO_AVX512"] != "1")

    /// The backend a GEMM of m·n·k multiply-adds runs on under the current settings.
    @inline(__always)
    public static func gemmBackend(m: Int, n: Int, k: Int) -> GEMMBackend {
        let macs = m * n * k
        if precisionState.load(ordering: .relaxed) == 1 && macs > bf16MinimumState.load(ordering: .relaxed) { return .oneDNNBF16 }
        if f32EngineState.load(ordering: .relaxed) == 1 && macs > oneDNNMinimumState.load(ordering: .relaxed) { return .oneDNNF32 }
        return .openBLASF32
    }
}

/// What runs the GEMMs in this process, for start-up logs, `doctor` and benchmarks.
public struct GEMMRuntimeInfo: Sendable, Codable, Equatable {
    public var precision: GEMMPrecision
    public var f32Engine: F32GEMMEngine
    public var threads: Int
    public var openBLASCore: String
    public var oneDNNVersion: String
    /// OpenMP here (Debian's build); the thread count is set per call from `threads`.
    public var oneDNNThreading: String
    public var bf16: BF16Support
    /// oneDNN's implementation for a representative f32 GEMM (1024×768×768, linear layout).
    public var oneDNNF32Implementation: String
    /// The same for bf16; nil when bf16 is unavailable.
    public var oneDNNBF16Implementation: String?
    public var oneDNNMinimumMultiplyAdds: Int
    public var bf16MinimumMultiplyAdds: Int

    public static func current() -> GEMMRuntimeInfo {
        let support = BF16Support.detect()
        return GEMMRuntimeInfo(
            precision: TensorRuntime.precision, f32Engine: TensorRuntime.f32Engine, threads: TensorRuntime.gemmThreads,
            openBLASCore: BLASInfo.coreName, oneDNNVersion: OneDNN.version,
            oneDNNThreading: threadingRuntimes[DNNL_CPU_THREADING_RUNTIME] ?? "runtime \(DNNL_CPU_THREADING_RUNTIME)",
            bf16: support,
            oneDNNF32Implementation: OneDNNGEMM.implementation(m: 1024, n: 768, k: 768, bf16: false),
            oneDNNBF16Implementation: support.isNative ? OneDNNGEMM.implementation(m: 1024, n: 768, k: 768, bf16: true) : nil,
            oneDNNMinimumMultiplyAdds: TensorRuntime.oneDNNMinimumMultiplyAdds,
            bf16MinimumMultiplyAdds: TensorRuntime.bf16MinimumMultiplyAdds)
    }

    /// DNNL_RUNTIME_* values of dnnl_types.h.
    static let threadingRuntimes: [UInt32: String] = [
        DNNL_RUNTIME_SEQ: "sequential", DNNL_RUNTIME_OMP: "OpenMP", DNNL_RUNTIME_TBB: "TBB", DNNL_RUNTIME_THREADPOOL: "threadpool",
    ]

    public var text: String {
        let f32 = f32Engine == .openBLAS ? "OpenBLAS \(openBLASCore)" : "oneDNN \(oneDNNF32Implementation)"
        let prec = precision == .bf16
            ? "bf16 (oneDNN \(oneDNNBF16Implementation ?? "?"), f32 accumulation; GEMMs of ≤ \(bf16MinimumMultiplyAdds) multiply-adds in f32)"
            : "f32"
        return """
            GEMM precision:  \(prec)
            f32 GEMM engine: \(f32)
            GEMM threads:    \(threads) (OpenBLAS and oneDNN/\(oneDNNThreading))
            oneDNN:          \(oneDNNVersion), f32 \(oneDNNF32Implementation), bf16 \(oneDNNBF16Implementation ?? "unavailable")
            bf16 support:    \(bf16.summary)
            """
    }
}

/// oneDNN GEMMs with the sgemm wrapper's row-major calling convention.
enum OneDNNGEMM {
    /// oneDNN's implementation name for a GEMM of this shape (linear layout: B transposed).
    static func implementation(m: Int, n: Int, k: Int, bf16: Bool) -> String {
        let key = OneDNN.MatmulKey(m: m, n: n, k: k, transA: false, transB: true, lda: k, ldb: k, ldc: n, bf16: bf16,
                                   alphaBits: Float(1).bitPattern, betaBits: Float(0).bitPattern,
                                   epilogue: .none, threads: TensorRuntime.gemmThreads)
        return OneDNN.shared.matmul(key).implementation
    }

    static func f32(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil) {
        let threads = TensorRuntime.gemmThreads
        let key = OneDNN.MatmulKey(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
                                   bf16: false, alphaBits: alpha.bitPattern, betaBits: beta.bitPattern,
                                   epilogue: .none, threads: threads, bias: bias != nil)
        let onednn = OneDNN.shared
        onednn.execute(onednn.matmul(key), a: a, b: b, c: c, bias: bias, threads: threads)
    }

    /// bf16 GEMM: packed operands are used as they are (same layout and ld as their f32
    /// pointer); other operands are converted into dense bf16 scratch for this call.
    static func bf16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, aPacked: PackedOperand?,
                     b: UnsafePointer<Float>, ldb: Int, bPacked: PackedOperand?,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: GEMMEpilogue = .none,
                     bias: UnsafePointer<Float>? = nil) {
        // Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k when transposed).
        withBF16(a, rows: transA ? k : m, cols: transA ? m : k, ld: lda, packed: aPacked) { ab, ldaUsed in
            withBF16(b, rows: transB ? n : k, cols: transB ? k : n, ld: ldb, packed: bPacked) { bb, ldbUsed in
                let threads = TensorRuntime.gemmThreads
                let key = OneDNN.MatmulKey(m: m, n: n, k: k, transA: transA, transB: transB, lda: ldaUsed, ldb: ldbUsed,
                                           ldc: ldc, bf16: true, alphaBits: alpha.bitPattern, betaBits: beta.bitPattern,
                                           epilogue: epilogue, threads: threads, bias: bias != nil)
                let onednn = OneDNN.shared
                onednn.execute(onednn.matmul(key), a: ab, b: bb, c: c, bias: bias, threads: threads)
            }
        }
    }

    /// bf16 GEMM on operands the caller already holds in bf16 (e.g. attention's keys and
    /// values, converted once and reused for every query block), f32 accumulation into C.
    static func bf16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let threads = TensorRuntime.gemmThreads
        let key = OneDNN.MatmulKey(m: m, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                                   ldc: ldc, bf16: true, alphaBits: alpha.bitPattern, betaBits: beta.bitPattern,
                                   epilogue: .none, threads: threads)
        let onednn = OneDNN.shared
        onednn.execute(onednn.matmul(key), a: a, b: b, c: c, threads: threads)
    }

    /// `batch` bf16 GEMMs on dense bf16 operands laid out one after another
    /// (A: `batch × m × k` (or `k × m` transposed), B: `batch × k × n` (or `n × k`),
    /// C: `batch × m × n` f32), in one oneDNN call.
    static func bf16Batched(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>) {
        let threads = TensorRuntime.gemmThreads
        let start = DispatchTime.now().uptimeNanoseconds
        let key = OneDNN.MatmulKey(m: m, n: n, k: k, transA: transA, transB: transB, lda: transA ? m : k, ldb: transB ? k : n,
                                   ldc: n, bf16: true, alphaBits: alpha.bitPattern, betaBits: Float(0).bitPattern,
                                   epilogue: .none, threads: threads, batch: batch)
        let onednn = OneDNN.shared
        onednn.execute(onednn.matmul(key), a: a, b: b, c: c, threads: threads)
        GEMMStats.account(backend: "onednn-bf16 batched (bf16 operands)", m: batch * m, n: n, k: k,
                          nanoseconds: Int(DispatchTime.now().uptimeNanoseconds - start))
    }

    /// The bf16 MLP core: `H = epilogue(X·W1ᵀ + b1)` written as bf16 into `hidden`, then
    /// `Y = H·W2ᵀ + b2` in f32 (X `m×k` f32, W1 `h×k`, W2 `n×h`, all dense). The hidden
    /// activation never exists in f32: what the unfused path would write as f32 and then
    /// convert to bf16 for the second GEMM is rounded to bf16 in the first one's kernel
    /// (the same round-to-nearest-even, so the same values).
    static func bf16MLP(m: Int, k: Int, hidden h: Int, n: Int, x: UnsafePointer<Float>,
                        w1: GEMMWeight, b1: UnsafePointer<Float>?, epilogue: GEMMEpilogue,
                        w2: GEMMWeight, b2: UnsafePointer<Float>?,
                        hiddenScratch: UnsafeMutablePointer<UInt16>, y: UnsafeMutablePointer<Float>) {
        let threads = TensorRuntime.gemmThreads
        let onednn = OneDNN.shared
        var start = DispatchTime.now().uptimeNanoseconds
        withBF16(x, rows: m, cols: k, ld: k, packed: nil) { xb, _ in
            w1.bf16().withUnsafeBufferPointer { wb in
                let key = OneDNN.MatmulKey(m: m, n: h, k: k, transA: false, transB: true, lda: k, ldb: k, ldc: h, bf16: true,
                                           alphaBits: Float(1).bitPattern, betaBits: Float(0).bitPattern,
                                           epilogue: epilogue, threads: threads, bias: b1 != nil, dstBF16: true)
                onednn.execute(onednn.matmul(key), a: xb, b: wb.baseAddress!, c: hiddenScratch, bias: b1, threads: threads)
            }
        }
        var took = Int(DispatchTime.now().uptimeNanoseconds - start)
        GEMMStats.account(backend: "onednn-bf16 (bf16 out)", m: m, n: h, k: k, nanoseconds: took)
        start = DispatchTime.now().uptimeNanoseconds
        w2.bf16().withUnsafeBufferPointer { wb in
            let key = OneDNN.MatmulKey(m: m, n: n, k: h, transA: false, transB: true, lda: h, ldb: h, ldc: n, bf16: true,
                                       alphaBits: Float(1).bitPattern, betaBits: Float(0).bitPattern,
                                       epilogue: .none, threads: threads, bias: b2 != nil)
            onednn.execute(onednn.matmul(key), a: hiddenScratch, b: wb.baseAddress!, c: y, bias: b2, threads: threads)
        }
        took = Int(DispatchTime.now().uptimeNanoseconds - start)
        GEMMStats.account(backend: "onednn-bf16 (bf16 operands)", m: m, n: n, k: h, nanoseconds: took)
    }

    private static func withBF16(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, packed: PackedOperand?,
                                 _ body: (UnsafePointer<UInt16>, Int) -> Void) {
        if let packed {
            let copy = packed.weight.bf16()
            copy.withUnsafeBufferPointer { p in
                precondition(packed.offset + (rows - 1) * ld + cols <= p.count, "packed operand exceeds its weight")
                body(p.baseAddress! + packed.offset, ld)
            }
            return
        }
        ScratchPool.with(UInt16.self, count: rows * cols) { scratch in
            BF16.convert(src, rows: rows, cols: cols, ld: ld, to: scratch)
            body(scratch, cols)
        }
    }
}
