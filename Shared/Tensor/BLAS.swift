import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// Process-wide GEMM accounting for benchmarks: floating-point operations issued to BLAS
/// and wall time spent inside it. Two relaxed atomic adds per call; negligible next to
/// any GEMM worth calling BLAS for.
public enum GEMMStats {
    static let flopCounter = Atomic<Int>(0)
    static let nanosCounter = Atomic<Int>(0)
    static let oneDNNF32FlopCounter = Atomic<Int>(0)
    static let bf16FlopCounter = Atomic<Int>(0)

    /// 2·m·n·k summed over all SGEMM calls since the last `reset()`.
    public static var flops: Int { flopCounter.load(ordering: .relaxed) }
    /// Nanoseconds spent inside SGEMM since the last `reset()` (summed over threads).
    public static var nanoseconds: Int { nanosCounter.load(ordering: .relaxed) }

    /// The part of `flops` that ran on `backend` (OpenBLAS's is the rest): shows how much
    /// of a model's GEMM work the precision/engine settings actually moved.
    public static func flops(on backend: GEMMBackend) -> Int {
        switch backend {
        case .openBLASF32: flops - oneDNNF32FlopCounter.load(ordering: .relaxed) - bf16FlopCounter.load(ordering: .relaxed)
        case .oneDNNF32: oneDNNF32FlopCounter.load(ordering: .relaxed)
        case .oneDNNBF16: bf16FlopCounter.load(ordering: .relaxed)
        }
    }

    /// Per-shape accounting, on when `SEGFLOW_GEMM_PROFILE=1` (a lock per GEMM call, so
    /// only for finding which shapes run below the engine's peak).
    public static let profiling = ProcessInfo.processInfo.environment["SEGFLOW_GEMM_PROFILE"] == "1"
    public struct Shape: Hashable, Sendable {
        public var backend: String, m: Int, n: Int, k: Int
    }
    public struct ShapeTotals: Sendable {
        public var calls = 0, nanoseconds = 0
    }
    static let shapeTotals = Mutex<[Shape: ShapeTotals]>([:])

    static func record(_ backend: String, m: Int, n: Int, k: Int, nanoseconds: Int) {
        guard profiling else { return }
        shapeTotals.withLock { t in
            let key = Shape(backend: backend, m: m, n: n, k: k)
            t[key, default: ShapeTotals()].calls += 1
            t[key, default: ShapeTotals()].nanoseconds += nanoseconds
        }
    }

    /// The profiled shapes, most time first: "backend m×n×k: calls, ms, GFLOP/s" lines.
    public static func shapeReport(top: Int = 40) -> String {
        let rows = shapeTotals.withLock { $0 }.sorted { $0.value.nanoseconds > $1.value.nanoseconds }
        let total = rows.reduce(0) { $0 + $1.value.nanoseconds }
        return rows.prefix(top).map { key, v in
            let gflops = Double(2 * key.m * key.n * key.k * v.calls) / Double(max(v.nanoseconds, 1))
            return String(format: "%@ %d×%d×%d: %d calls, %.1f ms (%.1f %%), %.0f GFLOP/s", key.backend, key.m, key.n, key.k,
                          v.calls, Double(v.nanoseconds) / 1e6, 100 * Double(v.nanoseconds) / Double(max(total, 1)), gflops)
        }.joined(separator: "\n")
    }

    /// FLOP/time accounting of one bf16 GEMM run outside `gemmOn`.
    static func account(backend: String, m: Int, n: Int, k: Int, nanoseconds: Int) {
        flopCounter.add(2 * m * n * k, ordering: .relaxed)
        bf16FlopCounter.add(2 * m * n * k, ordering: .relaxed)
        nanosCounter.add(nanoseconds, ordering: .relaxed)
        record(backend, m: m, n: n, k: k, nanoseconds: nanoseconds)
    }

    public static func reset() {
        if profiling { shapeTotals.withLock { $0 = [:] } }
        flopCounter.store(0, ordering: .relaxed)
        nanosCounter.store(0, ordering: .relaxed)
        oneDNNF32FlopCounter.store(0, ordering: .relaxed)
        bf16FlopCounter.store(0, ordering: .relaxed)
    }
}

/// Diagnostics about the OpenBLAS library actually loaded in this process.
///
/// Benchmarks and service start-up logs print these so a slow run can be traced to the
/// generic fallback core (Debian's OpenBLAS 0.3.21 does not know recent Intel CPUs).
/// Choosing the core (OPENBLAS_CORETYPE) is done elsewhere, before the library loads.
public enum BLASInfo {
    /// The kernel family OpenBLAS selected, e.g. "Haswell", "SkylakeX", "Prescott".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Number of threads OpenBLAS uses for one BLAS call.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The build configuration string (version, threading model, max threads).
    public static var config: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c)
    }
}

/// The one GEMM choke point: row-major C = alpha · op(A) · op(B) + beta · C.
///
/// `op(A)` is `m×k`, `op(B)` is `k×n`, C is `m×n`. Transposes are passed as flags, never
/// materialised. `lda/ldb/ldc` are row strides of the stored matrices. The backend comes
/// from the process-wide settings (`TensorRuntime.precision`, `.f32Engine`,
/// `.oneDNNMinimumMultiplyAdds`): OpenBLAS `cblas_sgemm`, oneDNN f32 or oneDNN bf16.
/// `aPacked`/`bPacked` name a `GEMMWeight` the operand lives in (same layout): a bf16 GEMM
/// then uses its once-made bf16 copy instead of converting the operand again.
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
           alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int,
           b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0,
           c: UnsafeMutablePointer<Float>, ldc: Int,
           aPacked: PackedOperand? = nil, bPacked: PackedOperand? = nil,
           epilogue: GEMMEpilogue = .none, bias: UnsafePointer<Float>? = nil) {
    gemmOn(TensorRuntime.gemmBackend(m: m, n: n, k: k), transA: transA, transB: transB, m: m, n: n, k: k,
         alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, aPacked: aPacked, bPacked: bPacked,
         epilogue: epilogue, bias: bias)
}

/// An element-wise function applied to C after `alpha·A·B + beta·C`.
///
/// On the bf16 backend it runs inside oneDNN's kernel as a post-op while the tile is in
/// registers (no extra pass over C); on the f32 backends it is a separate pass with
/// `Ops.geluSerial`, so f32 numerics are exactly those of the unfused layers.
public enum GEMMEpilogue: Sendable, Hashable {
    case none
    /// Exact (erf) GELU, `torch.nn.functional.gelu(approximate="none")`; oneDNN's
    /// `eltwise_gelu_erf` on the bf16 backend.
    case gelu
}

/// `sgemm` on an explicit backend (and FLOP/time accounting for all of them).
///
/// `bias` (`[n]`, only with `beta == 0`): C = f(alpha·A·B + bias). oneDNN adds it inside
/// the kernel (C is only written, so it may be uninitialised); OpenBLAS gets C pre-filled
/// with the bias rows and `beta = 1` — the same sum either way.
func gemmOn(_ backend: GEMMBackend, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
          aPacked: PackedOperand?, bPacked: PackedOperand?, epilogue: GEMMEpilogue = .none,
          bias: UnsafePointer<Float>? = nil) {
    if m == 0 || n == 0 { return }
    precondition(bias == nil || beta == 0, "gemm: a bias is added to a C that is overwritten (beta must be 0)")
    var beta = beta
    // oneDNN 2.x applies its output scale (alpha) to the bias too: with alpha ≠ 1 the
    // bias is pre-filled like OpenBLAS's.
    let biasInKernel = bias != nil && backend != .openBLASF32 && k > 0 && alpha == 1
    if let bias, !biasInKernel {
        for r in 0..<m { (c + r * ldc).update(from: bias, count: n) }
        beta = 1
    }
    let deviceBias = biasInKernel ? bias : nil
    if k == 0 {
        // BLAS handles k == 0 as C = beta·C, but some builds reject lda < 1; do it here.
        for i in 0..<m {
            let row = c + i * ldc
            for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
        Ops.applyEpilogue(epilogue, c, m: m, n: n, ldc: ldc)
        return
    }
    precondition(m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
                 "gemm dimension exceeds 32-bit BLAS integer")
    // Only the bf16 backend runs the epilogue inside the GEMM; elsewhere it is a separate
    // pass after the timed region, so GEMM time (and the benchmarks' GEMM share) stays GEMM.
    let fused = backend == .oneDNNBF16 && TensorRuntime.fusesEpilogues
    let start = DispatchTime.now().uptimeNanoseconds
    switch backend {
    case .openBLASF32:
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)),
                    beta, c, blasint(max(ldc, 1)))
    case .oneDNNF32:
        GEMMStats.oneDNNF32FlopCounter.add(2 * m * n * k, ordering: .relaxed)
        OneDNNGEMM.f32(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc, bias: deviceBias)
    case .oneDNNBF16:
        GEMMStats.bf16FlopCounter.add(2 * m * n * k, ordering: .relaxed)
        OneDNNGEMM.bf16(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, aPacked: aPacked,
                        b: b, ldb: ldb, bPacked: bPacked, beta: beta, c: c, ldc: ldc,
                        epilogue: fused ? epilogue : .none, bias: deviceBias)
    }
    let took = Int(DispatchTime.now().uptimeNanoseconds - start)
    GEMMStats.flopCounter.add(2 * m * n * k, ordering: .relaxed)
    GEMMStats.nanosCounter.add(took, ordering: .relaxed)
    GEMMStats.record(backend.rawValue, m: m, n: n, k: k, nanoseconds: took)
    if !fused { Ops.applyEpilogue(epilogue, c, m: m, n: n, ldc: ldc) }
}

/// A bf16 GEMM on operands already in bf16 (dense row-major, `lda`/`ldb` in elements),
/// f32 accumulation into C; same accounting as `gemmOn`. Only for `.oneDNNBF16` callers
/// that convert an operand once and reuse it across many GEMMs.
func gemmBF16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    precondition(k > 0 && m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
                 "gemmBF16: dimensions \(m)×\(n)×\(k)")
    precondition(BF16Support.isNativeNow, "bf16 GEMM requested without native bf16: \(BF16Support.detect().summary)")
    let start = DispatchTime.now().uptimeNanoseconds
    defer {
        GEMMStats.account(backend: "onednn-bf16 (bf16 operands)", m: m, n: n, k: k,
                          nanoseconds: Int(DispatchTime.now().uptimeNanoseconds - start))
    }
    OneDNNGEMM.bf16(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: c, ldc: ldc)
}

extension Ops {
    /// Pointer-level row-major SGEMM for model code that fuses its own layouts:
    /// `C = alpha · op(A) · op(B) + beta · C`, `op(A)`: m×k, `op(B)`: k×n. Same choke point
    /// (and FLOP accounting) as every other GEMM in the module.
    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
              beta: beta, c: c, ldc: ldc)
    }

    /// `gemm` on an explicit backend, bypassing the process-wide settings (engine tests and
    /// benchmarks). `.oneDNNBF16` requires native bf16 (`BF16Support.detect().isNative`):
    /// it is a precondition, never emulated. `bWeight` (optional) is a `GEMMWeight` that B
    /// lives in, at element `bWeightOffset`: its cached bf16 copy is used for B.
    public static func gemm(backend: GEMMBackend, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                            bWeight: GEMMWeight? = nil, bWeightOffset: Int = 0, bias: UnsafePointer<Float>? = nil,
                            epilogue: GEMMEpilogue = .none) {
        if backend == .oneDNNBF16 && !BF16Support.isNativeNow {
            preconditionFailure("bf16 GEMM requested without native bf16: \(BF16Support.detect().summary)")
        }
        gemmOn(backend, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, aPacked: nil,
                    bPacked: bWeight.map { PackedOperand(weight: $0, offset: bWeightOffset) }, epilogue: epilogue, bias: bias)
    }
}
