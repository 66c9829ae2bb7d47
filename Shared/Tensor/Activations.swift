import CKernels
import Foundation

/// Which GELU formula to use; the model's config decides (SAM/TinyViT/SegGPT: exact,
/// some CLIP variants: tanh). Mixing them up costs ~1e-3 absolute per layer.
public enum GELUApproximation: Sendable {
    /// `0.5·x·(1 + erf(x/√2))`. ref: F.gelu(approximate="none")
    case none
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. ref: F.gelu(approximate="tanh")
    case tanh
}

extension Ops {
    /// GELU. ref: torch.nn.functional.gelu
    ///
    /// The exact (erf) form runs 8-wide through `gelu8` and is split across cores;
    /// `x` is consumed, so a temporary input (the usual `gelu(linear(x))`) is overwritten
    /// in place instead of allocating a second activation-sized buffer.
    public static func gelu(_ x: consuming Tensor, approximate: GELUApproximation = .none) -> Tensor {
        switch approximate {
        case .none:
            geluInPlace(&x)
            return x
        case .tanh:
            let k: Float = 0.79788456080286536 // √(2/π)
            return unary(x) { v in 0.5 * v * (1 + Foundation.tanh(k * (v + 0.044715 * v * v * v))) }
        }
    }

    /// Exact GELU in place (see `gelu8`), one `geluSerial` per 16 Ki-element job: the
    /// kernel is inlined into its loop (through `mapInPlace`'s closure it was an indirect
    /// call per 8 floats that reloaded all 20 constants: 20 % of LiteMedSAM's bf16 encoder).
    public static func geluInPlace(_ x: inout Tensor) {
        x.data.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress, p.count > 0 else { return }
            let d = SendablePointer(base)
            forEachChunk(p.count, cost: 24) { lo, hi in geluSerial(d.base + lo, count: hi - lo) }
        }
    }

    /// Exact GELU, 8 lanes: `0.5·x·erfc(−x/√2)`, with erfc from the Numerical Recipes
    /// Chebyshev-fitted form `erfc(z) = t·exp(−z² − 1.26551223 + t·P(t))`, `t = 1/(1 + z/2)`,
    /// z ≥ 0, whose fractional error is < 1.2e-7 for all z; the exp is `exp8`
    /// (≤ 1.4 ulp). For x < 0 the result is `0.5·x·erfc(|u|)` (relative error ~1e-7 even
    /// in the far tail, where `1 + erf` would cancel); for x ≥ 0 it is
    /// `0.5·x·(2 − erfc(u))`. Measured vs a Double reference on a dense sweep of
    /// [−12, 12]: |error| ≤ 1.4e-6·max(|gelu(x)|, 1e-3), dominated by the Float rounding
    /// of x/√2 in the tail (gelu's condition number there is ~x²); the old scalar
    /// `1 + erff` form measured 8e-5 on the same metric (cancellation). NaN propagates.
    /// ref: Numerical Recipes in C, 2nd ed., §6.2 erfcc; torch.nn.functional.gelu
    @inline(__always)
    static func gelu8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let u = x * 0.70710678118654752
        let z = unsafeBitCast(unsafeBitCast(u, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
        let t = 1 / SIMD8<Float>(repeating: 1).addingProduct(z, 0.5)
        // Horner with fused multiply-adds (Swift never contracts `p * t + c` itself).
        var p = SIMD8<Float>(repeating: 0.17087277)
        p = SIMD8(repeating: -0.82215223).addingProduct(p, t)
        p = SIMD8(repeating: 1.48851587).addingProduct(p, t)
        p = SIMD8(repeating: -1.13520398).addingProduct(p, t)
        p = SIMD8(repeating: 0.27886807).addingProduct(p, t)
        p = SIMD8(repeating: -0.18628806).addingProduct(p, t)
        p = SIMD8(repeating: 0.09678418).addingProduct(p, t)
        p = SIMD8(repeating: 0.37409196).addingProduct(p, t)
        p = SIMD8(repeating: 1.00002368).addingProduct(p, t)
        let arg = SIMD8<Float>(repeating: -1.26551223).addingProduct(p, t).addingProduct(-z, z)
        let r = t * exp8(arg)                       // erfc(|u|)
        let e = (2 - r).replacing(with: r, where: x .< 0)
        return 0.5 * x * e
    }

    /// OpenAI CLIP's `x · sigmoid(1.702·x)` (HF `quick_gelu`); not the same as GELU.
    /// ref: clip/model.py QuickGELU
    public static func quickGELU(_ x: Tensor) -> Tensor {
        unary(x) { $0 / (1 + Foundation.exp(-1.702 * $0)) }
    }

    /// `max(x, 0)`; NaN propagates as in torch; −0 becomes +0. ref: torch.relu
    public static func relu(_ x: consuming Tensor) -> Tensor {
        reluInPlace(&x)
        return x
    }

    /// `relu` in place.
    public static func reluInPlace(_ x: inout Tensor) {
        mapInPlace(&x, cost: 1) { v in
            SIMD8<Float>(repeating: 0).replacing(with: v, where: (v .> 0) .| (v .!= v))
        }
    }

    /// Logistic sigmoid, written to avoid `exp` overflow for large |x|. ref: torch.sigmoid
    public static func sigmoid(_ x: Tensor) -> Tensor {
        unary(x) { v in
            if v >= 0 { return 1 / (1 + Foundation.exp(-v)) }
            let e = Foundation.exp(v)
            return e / (1 + e)
        }
    }

    /// Hyperbolic tangent. ref: torch.tanh
    public static func tanh(_ x: Tensor) -> Tensor { unary(x) { Foundation.tanh($0) } }

    /// Softmax over the last axis, max-subtracted so large logits do not overflow.
    /// A row that is entirely -inf (fully masked) yields NaN, as torch does.
    /// ref: torch.softmax(dim=-1)
    public static func softmax(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "softmax of a scalar")
        var out = x
        let cols = x.shape[x.rank - 1]
        out.data.withUnsafeMutableBufferPointer { o in
            guard let base = o.baseAddress, cols > 0 else { return }
            softmaxRows(base, rows: x.count / cols, cols: cols)
        }
        return out
    }

    /// In-place stable softmax of `rows` contiguous rows of length `cols`; rows are split
    /// across cores when the block is big (attention maps are 4096×4096 per head in SAM).
    public static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        let box = SendablePointer(p)
        let chunks = rows * cols >= parallelGrain ? min(rows, 8 * ProcessInfo.processInfo.activeProcessorCount) : 1
        parallelFor(chunks, costPerItem: parallelGrain) { c in
            // Each chunk owns rows [lo, hi): disjoint writes.
            let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
            softmaxRows(row0: box.base + lo * cols, rows: hi - lo, cols: cols)
        }
    }

    /// Serial in-place stable softmax of contiguous rows (callers split work across cores).
    /// All three passes (max, exp+sum, scale) are 8-wide: attention maps are the largest
    /// elementwise workload (12 × 4096² per SAM global block) and the scalar version was
    /// ~4× slower, as slow as the two GEMMs around it.
    /// With `bf16Out`, the probabilities go only there (row r at `bf16Out + r·cols`,
    /// rounded to nearest-even in the scaling pass) and `row0` keeps the unscaled exps:
    /// attention in bf16 feeds them straight to its second GEMM, one pass fewer.
    @inline(__always)
    static func softmaxRows(row0: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                            bf16Out: UnsafeMutablePointer<UInt16>? = nil) {
        if TensorRuntime.usesAVX512Kernels {
            segflow_softmax_rows_avx512(row0, rows, cols, bf16Out)
            return
        }
        let body = cols & ~7
        for r in 0..<rows {
            let row = row0 + r * cols
            var mv = SIMD8<Float>(repeating: -.infinity)
            var j = 0
            while j < body {
                let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                mv = mv.replacing(with: v, where: v .> mv)
                j += 8
            }
            var m = mv.max()
            for i in body..<cols where row[i] > m { m = row[i] }
            if m == -.infinity {
                // Fully masked row: torch.softmax yields NaN (0/0); so do we.
                row.update(repeating: .nan, count: cols)
                if let out = bf16Out { (out + r * cols).update(repeating: BF16.from(.nan), count: cols) }
                continue
            }
            // NaN inputs are skipped by the max but propagate through exp and the sum,
            // making the row NaN, as in torch.
            let mm = SIMD8<Float>(repeating: m)
            var acc = SIMD8<Float>(repeating: 0)
            j = 0
            while j < body {
                let p = UnsafeMutableRawPointer(row + j)
                let e = exp8(p.loadUnaligned(as: SIMD8<Float>.self) - mm)
                p.storeBytes(of: e, as: SIMD8<Float>.self)
                acc += e
                j += 8
            }
            if body < cols {
                var t = SIMD8<Float>(repeating: -.infinity)
                for i in body..<cols { t[i - body] = row[i] }
                let e = exp8(t - mm) // padding lanes: exp(-inf) = 0
                for i in body..<cols { row[i] = e[i - body] }
                acc += e
            }
            let inv = 1 / acc.sum()
            let iv = SIMD8<Float>(repeating: inv)
            j = 0
            if let out = bf16Out {
                let o = out + r * cols
                while j < body {
                    let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) * iv
                    UnsafeMutableRawPointer(o + j).storeBytes(of: BF16.from8(v), as: SIMD8<UInt16>.self)
                    j += 8
                }
                for i in body..<cols { o[i] = BF16.from(row[i] * inv) }
                continue
            }
            while j < body {
                let p = UnsafeMutableRawPointer(row + j)
                p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) * iv, as: SIMD8<Float>.self)
                j += 8
            }
            for i in body..<cols { row[i] *= inv }
        }
    }

    /// 8-wide `exp` (Cephes `expf` scheme): n = round(x·log₂e) via the 1.5·2²³ magic-add
    /// trick, r = x − n·ln2 with ln2 split in two constants, degree-6 polynomial on r,
    /// scale by 2ⁿ through the exponent bits. Measured ≤ 1.4 ulp on [−30, 0].
    /// Inputs below −87 (incl. −inf) return exactly 0 (true value < 1.7e-38), so masked
    /// logits contribute nothing. Written without `rounded()`/`clamped()`/int
    /// conversions, which compile to per-lane scalar loops for SIMD types.
    /// Valid for x ≤ 88 (softmax only feeds x − max ≤ 0).
    /// ref: Cephes library expf.c
    @inline(__always)
    static func exp8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87)
        var x = v.replacing(with: lo, where: v .< lo)
        let magic = SIMD8<Float>(repeating: 12_582_912) // 1.5·2²³
        let t = magic.addingProduct(x, 1.44269504088896341)
        let fx = t - magic                                // round-to-nearest(x·log₂e)
        x = x.addingProduct(fx, -0.693359375).addingProduct(fx, 2.12194440e-4)
        let z = x * x
        // Horner with fused multiply-adds (Swift never contracts `y * x + c` itself).
        var y = SIMD8<Float>(repeating: 1.9875691500e-4)
        y = SIMD8(repeating: 1.3981999507e-3).addingProduct(y, x)
        y = SIMD8(repeating: 8.3334519073e-3).addingProduct(y, x)
        y = SIMD8(repeating: 4.1665795894e-2).addingProduct(y, x)
        y = SIMD8(repeating: 1.6666665459e-1).addingProduct(y, x)
        y = SIMD8(repeating: 5.0000001201e-1).addingProduct(y, x)
        y = (x + 1).addingProduct(y, z)
        let n = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let r = y * unsafeBitCast((n &+ 127) &<< 23, to: SIMD8<Float>.self)
        return r.replacing(with: 0, where: v .< lo)
    }
}

extension Ops {
    /// Applies a GEMM epilogue to the `m×n` matrix at `c` (row stride `ldc`) as a separate
    /// parallel pass: what the f32 backends do after their GEMM.
    static func applyEpilogue(_ epilogue: GEMMEpilogue, _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, ldc: Int) {
        switch epilogue {
        case .none: return
        case .gelu:
            let d = SendablePointer(c)
            if ldc == n {
                forEachChunk(m * n, cost: 24) { lo, hi in geluSerial(d.base + lo, count: hi - lo) }
            } else {
                parallelFor(m, costPerItem: n * 24) { r in geluSerial(d.base + r * ldc, count: n) }
            }
        }
    }
}
