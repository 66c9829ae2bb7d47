import Foundation
import Tensor
import XCTest

/// Pointwise accuracy of the vectorised transcendental kernels on dense sweeps, and the
/// in-place / strided fast paths against their out-of-place definitions.
final class FastPathTests: XCTestCase {
    /// GELU (erfc form + 8-wide exp) vs Double erf on every 1/256 step of [−12, 12] plus
    /// odd lengths (tail lanes) and specials. Per-element bound: 2e-6 relative to
    /// max(|gelu(x)|, 1e-3). In the negative tail gelu's condition number is ~x², so the
    /// Float rounding of x/√2 alone costs ~1e-6 there (the old scalar `1 + erff` form
    /// cancelled and was off by 8e-5 on this metric); elsewhere the error is ~4e-7.
    func testGELUPointwiseAccuracy() {
        let n = 24 * 256 + 3
        let x = Tensor(shape: [n]) { Float($0) / 256 - 12 }
        let y = Ops.gelu(x)
        var worst = 0.0
        for (xi, yi) in zip(x.data, y.data) {
            let r = 0.5 * Double(xi) * (1 + erf(Double(xi) / 2.0.squareRoot()))
            let e = abs(Double(yi) - r) / max(abs(r), 1e-3)
            worst = max(worst, e)
        }
        XCTAssertLessThanOrEqual(worst, 2e-6, "gelu pointwise relative error \(worst)")
        let s = Ops.gelu(Tensor(shape: [5], data: [.nan, .infinity, 0, -0.0, 100]))
        XCTAssertTrue(s.data[0].isNaN)
        XCTAssertEqual(Array(s.data[1...]), [.infinity, 0, 0, 100])
    }

    func testReluSpecials() {
        let r = Ops.relu(Tensor(shape: [9], data: [-1, -0.0, 0, 2, .nan, -.infinity, .infinity, 3, -4]))
        XCTAssertEqual(r.data[0], 0); XCTAssertEqual(r.data[1].sign, .plus); XCTAssertTrue(r.data[4].isNaN)
        XCTAssertEqual(Array(r.data[5...]), [0, .infinity, 3, 0])
    }

    /// Large mean, tiny spread (the cancellation case the Double statistics guard against),
    /// row lengths around the 8-lane body/tail split.
    func testLayerNormLargeMean() {
        var rng = SeededRNG(seed: 77)
        for c in [1, 7, 8, 9, 320] {
            let x = rng.tensor([33, c], scale: 0.01, offset: 1000), w = rng.tensor([c]), b = rng.tensor([c])
            let y = Ops.layerNorm(x, weight: w, bias: b, eps: 1e-6)
            var maxErr = 0.0, maxRef = 0.0
            for r in 0..<33 {
                let row = (0..<c).map { Double(x.data[r * c + $0]) }
                let m = row.reduce(0, +) / Double(c)
                let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c)
                for j in 0..<c {
                    let ref = (row[j] - m) / (v + 1e-6).squareRoot() * Double(w.data[j]) + Double(b.data[j])
                    maxErr = max(maxErr, abs(Double(y.data[r * c + j]) - ref)); maxRef = max(maxRef, abs(ref))
                }
            }
            XCTAssertLessThanOrEqual(maxErr / maxRef, 1e-6, "layerNorm large mean C=\(c)")
        }
    }

    /// Head views over a fused `[B, L, 3·H·d]` projection (TinyViT's per-head q|k|v and
    /// ViT's [3, H, d] packings) and shared (B=1) keys/values vs `Ops.attention` on
    /// explicitly split heads; covers both the parallel-problems and the sequential path.
    func testMultiHeadAttentionViews() {
        var rng = SeededRNG(seed: 99)
        for (b, l, lk, heads, d, shareKV) in [(2, 5, 5, 3, 4, false), (3, 49, 49, 4, 8, false), (1, 700, 700, 2, 8, false),
                                              (4, 7, 300, 8, 16, true), (2, 300, 7, 8, 16, true)] {
            let w = heads * d
            let qs = rng.tensor([b, l, w]), ks = rng.tensor([shareKV ? 1 : b, lk, w]), vs = rng.tensor([shareKV ? 1 : b, lk, w])
            func split(_ t: Tensor, _ bb: Int, _ ll: Int) -> Tensor {
                let x = Ops.permute(t.reshaped([t.shape[0], ll, heads, d]), [0, 2, 1, 3])
                return t.shape[0] == bb ? x : Ops.concat(Array(repeating: x, count: bb), axis: 0)
            }
            let bias = rng.tensor([heads, l, lk])
            let ref = Ops.permute(Ops.attention(q: split(qs, b, l), k: split(ks, b, lk), v: split(vs, b, lk), bias: bias),
                                  [0, 2, 1, 3]).reshaped([b, l, w])
            let got = Ops.multiHeadAttention(q: .contiguous(qs, heads: heads), k: .contiguous(ks, heads: heads),
                                             v: .contiguous(vs, heads: heads), heads: heads, bias: bias)
            assertClose(got, ref, tol: Tol.attentionRelTol, "mha b\(b) l\(l) lk\(lk) h\(heads)")
            if !shareKV {
                // TinyViT packing: per head [q | k | v].
                var fused = Tensor(zeros: [b, l, 3 * w])
                for bi in 0..<b { for t in 0..<l { for h in 0..<heads { for j in 0..<d {
                    let src = (bi * l + t) * w + h * d, dst = (bi * l + t) * 3 * w + h * 3 * d + j
                    fused.data[dst] = qs.data[src + j]; fused.data[dst + d] = ks.data[src + j]; fused.data[dst + 2 * d] = vs.data[src + j]
                } } } }
                let got2 = Ops.multiHeadAttention(q: HeadView(fused, column: 0, headStride: 3 * d, headDim: d),
                                                  k: HeadView(fused, column: d, headStride: 3 * d, headDim: d),
                                                  v: HeadView(fused, column: 2 * d, headStride: 3 * d, headDim: d),
                                                  heads: heads, bias: bias)
                assertClose(got2, ref, tol: Tol.attentionRelTol, "mha fused b\(b) l\(l)")
            }
        }
    }
}

final class ConvEpilogueTests: XCTestCase {
    /// The fused GELU must equal conv2d followed by Ops.gelu exactly (same kernel, same order).
    func testFusedGELUEqualsSeparateGELU() {
        var state: UInt64 = 7
        func r() -> Float { state = state &* 6364136223846793005 &+ 1; return Float(state >> 40) / Float(1 << 24) * 4 - 2 }
        for (cin, cout, groups, k, h, w) in [(6, 6, 6, 3, 9, 13), (4, 8, 4, 3, 5, 7), (3, 5, 1, 1, 6, 6), (3, 4, 1, 3, 7, 5)] {
            let x = Tensor(shape: [2, cin, h, w]) { _ in r() }
            let wt = Tensor(shape: [cout, cin / groups, k, k]) { _ in r() }
            let b = Tensor(shape: [cout]) { _ in r() }
            let separate = Ops.gelu(Ops.conv2d(x, weight: wt, bias: b, padding: Size2(k / 2, k / 2), groups: groups))
            let fused = Ops.conv2d(x, weight: wt, bias: b, padding: Size2(k / 2, k / 2), groups: groups, epilogue: .gelu)
            XCTAssertEqual(fused, separate, "cin \(cin) cout \(cout) groups \(groups) k \(k)")
        }
    }
}
