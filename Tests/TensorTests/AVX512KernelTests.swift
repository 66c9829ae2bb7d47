import Foundation
import Tensor
import XCTest

/// The 16-lane AVX-512 softmax (CKernels) against the 8-lane Swift one it replaces on
/// AVX-512 CPUs: every row width class (shorter than a vector, exact multiples, ragged
/// tails), the NaN / −inf rules, and the bf16-probability path inside attention.
final class AVX512KernelTests: XCTestCase {
    var rng = SeededRNG(seed: 0xA5_12)

    override func tearDown() {
        TensorRuntime.usesAVX512Kernels = true
        try? TensorRuntime.setPrecision(.f32)
        TensorRuntime.bf16MinimumMultiplyAdds = TensorRuntime.defaultBF16MinimumMultiplyAdds
    }

    func requireAVX512() throws {
        guard TensorRuntime.avx512Available else { throw XCTSkip("this CPU has no AVX512F/BW/VL; the 8-lane Swift softmax runs everywhere") }
    }

    func softmax(_ rows: [[Float]], avx512: Bool) -> [Float] {
        TensorRuntime.usesAVX512Kernels = avx512
        var flat = rows.flatMap { $0 }
        flat.withUnsafeMutableBufferPointer { Ops.softmaxRows($0.baseAddress!, rows: rows.count, cols: rows[0].count) }
        return flat
    }

    func testSoftmaxMatchesTheSwiftKernel() throws {
        try requireAVX512()
        XCTAssertTrue(TensorRuntime.usesAVX512Kernels || ProcessInfo.processInfo.environment["SEGFLOW_NO_AVX512"] == "1",
                      "AVX-512 CPU but the AVX-512 kernels are off by default")
        var worst: Float = 0
        for cols in [1, 7, 15, 16, 17, 33, 64, 100, 4101] {
            var rows = (0..<6).map { _ in (0..<cols).map { _ in Float.random(in: -30..<30, using: &rng) } }
            rows[1] = rows[1].map { $0 * 4 }                                  // exps underflowing below −87
            rows[2][cols / 2] = -.infinity                                    // a masked key
            rows[3] = [Float](repeating: -.infinity, count: cols)             // fully masked: NaN row
            rows[4][cols - 1] = .nan                                          // NaN propagates to the row
            rows[5] = [Float](repeating: 3, count: cols)                      // uniform
            let fast = softmax(rows, avx512: true), slow = softmax(rows, avx512: false)
            for r in 0..<rows.count {
                let f = fast[(r * cols)..<((r + 1) * cols)], s = slow[(r * cols)..<((r + 1) * cols)]
                XCTAssertEqual(f.map(\.isNaN), s.map(\.isNaN), "cols \(cols) row \(r): NaN positions differ")
                let scale = max(s.filter { !$0.isNaN }.map(abs).max() ?? 0, 1e-30)
                for (a, b) in zip(f, s) where !b.isNaN {
                    worst = max(worst, abs(a - b) / scale)
                }
                if r == 5 { XCTAssertEqual(f.first!, 1 / Float(cols), accuracy: 1e-7 * Float(cols), "uniform row, cols \(cols)") }
            }
        }
        XCTAssertLessThanOrEqual(worst, Tol.softmaxLaneOrderRelTol)
        print("AVX-512 vs Swift softmax: relative max difference \(worst)")
    }

    /// Attention in bf16 takes the softmax's bf16-probability output (rounded in the
    /// kernel): both kernels within the bf16 budget of the f32 reference, ragged widths.
    func testBF16AttentionProbabilitiesThroughTheAVX512Kernel() throws {
        try requireAVX512()
        guard BF16Support.detect().isNative else { throw XCTSkip("needs native bf16 GEMM: \(BF16Support.detect().summary)") }
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        let (lq, lk, d, dv) = (70, 45, 32, 24)
        let q = rng.tensor([1, lq, d]), k = rng.tensor([1, lk, d]), v = rng.tensor([1, lk, dv])
        let want = Ref.attention(q: q, k: k, v: v, scale: 0.3, bias: nil)
        TensorRuntime.usesAVX512Kernels = true
        let fast = Ops.attention(q: q, k: k, v: v, scale: 0.3)
        TensorRuntime.usesAVX512Kernels = false
        let slow = Ops.attention(q: q, k: k, v: v, scale: 0.3)
        assertClose(fast, want, tol: Tol.bf16OpsRelTol, "bf16 attention, AVX-512 softmax")
        assertClose(slow, want, tol: Tol.bf16OpsRelTol, "bf16 attention, Swift softmax")
        XCTAssertLessThanOrEqual(relativeMaxError(fast, slow), Double(Tol.bf16OpsRelTol), "the two kernels' bf16 attention")
    }
}
