import Foundation

extension Ops {
    /// Layer normalisation over the last axis with optional affine `weight`/`bias` of
    /// shape `[C]`. Biased variance, like torch.
    ///
    /// Statistics run in Double: in Float32 the rounding of the mean (½ulp of |mean|) is
    /// amplified by 1/std, so rows with a large mean and a small spread (common after
    /// residual adds) would lose digits. The normalisation is 8-wide Float with the mean
    /// split into two Floats (see `layerNormRows`), a few ulp from exact. Rows are split
    /// across cores; `x` is consumed (normalised in place when it is a temporary).
    /// ref: torch.nn.functional.layer_norm(normalized_shape=[C])
    public static func layerNorm(_ x: consuming Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let c = x.shape.last ?? 0
        if let weight { precondition(weight.shape == [c], "layerNorm: weight \(weight.shape) for C=\(c)") }
        if let bias { precondition(bias.shape == [c], "layerNorm: bias \(bias.shape) for C=\(c)") }
        guard c > 0 && x.count > 0 else { return x }
        let rows = x.count / c
        let w = weight?.data ?? [Float](repeating: 1, count: c), b = bias?.data ?? [Float](repeating: 0, count: c)
        x.data.withUnsafeMutableBufferPointer { o in
            w.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    layerNormRows(o.baseAddress!, rows: rows, c: c, ld: c, weight: wp.baseAddress!, bias: bp.baseAddress!,
                                  eps: eps)
                }
            }
        }
        return x
    }

    /// In-place layer norm of `rows` rows of `c` floats, `ld` apart, split across cores.
    ///
    /// Mean and variance are accumulated in Double (so a large mean with a small spread
    /// keeps its digits). The normalisation runs 8-wide in Float on `d = (x − m₁) − m₂`,
    /// where `m₁ + m₂` is the Double mean split into two Floats: `x − m₁` is exact
    /// whenever x is within a factor 2 of the mean (the large-mean case), so `d` carries
    /// one rounding, then `d·inv·w + b` three more — a few ulp of the output.
    public static func layerNormRows(_ base: UnsafeMutablePointer<Float>, rows: Int, c: Int, ld: Int,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float) {
        let box = SendablePointer(base), wb = SendableConstPointer(weight), bb = SendableConstPointer(bias)
        let epsD = Double(eps)
        let per = max(1, min(rows, (1 << 14) / max(c, 1)))
        let jobs = (rows + per - 1) / per
        parallelFor(jobs, costPerItem: per * c * 4) { job in
            // Each job normalises its own rows: disjoint writes.
            for r in (job * per)..<min(rows, (job + 1) * per) {
                let row = box.base + r * ld
                var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                var j = 0
                while j + 4 <= c {
                    s0 += Double(row[j]); s1 += Double(row[j + 1]); s2 += Double(row[j + 2]); s3 += Double(row[j + 3])
                    j += 4
                }
                while j < c { s0 += Double(row[j]); j += 1 }
                let mean = (s0 + s1 + s2 + s3) / Double(c)
                let m1 = Float(mean), m2 = Float(mean - Double(m1))
                var v0 = 0.0, v1 = 0.0, v2 = 0.0, v3 = 0.0
                j = 0
                while j + 4 <= c {
                    let d0 = Double(row[j]) - mean, d1 = Double(row[j + 1]) - mean
                    let d2 = Double(row[j + 2]) - mean, d3 = Double(row[j + 3]) - mean
                    v0 += d0 * d0; v1 += d1 * d1; v2 += d2 * d2; v3 += d3 * d3
                    j += 4
                }
                while j < c { let d = Double(row[j]) - mean; v0 += d * d; j += 1 }
                let inv = Float(1 / ((v0 + v1 + v2 + v3) / Double(c) + epsD).squareRoot())
                let vm1 = SIMD8<Float>(repeating: m1), vm2 = SIMD8<Float>(repeating: m2), vi = SIMD8<Float>(repeating: inv)
                j = 0
                while j + 8 <= c {
                    let p = UnsafeMutableRawPointer(row + j)
                    let d = (p.loadUnaligned(as: SIMD8<Float>.self) - vm1) - vm2
                    let wv = UnsafeRawPointer(wb.base + j).loadUnaligned(as: SIMD8<Float>.self)
                    let bv = UnsafeRawPointer(bb.base + j).loadUnaligned(as: SIMD8<Float>.self)
                    p.storeBytes(of: (d * vi) * wv + bv, as: SIMD8<Float>.self)
                    j += 8
                }
                while j < c { row[j] = ((row[j] - m1) - m2) * inv * wb.base[j] + bb.base[j]; j += 1 }
            }
        }
    }

    /// SAM's channels-first LayerNorm2d: normalise each pixel of an NCHW tensor over C.
    /// Loops run over contiguous H·W planes (accumulating per-pixel sums across
    /// channels) instead of striding through C for every pixel. Statistics in Double
    /// for the same reason as `layerNorm`.
    /// ref: segment_anything/modeling/common.py LayerNorm2d.forward
    public static func layerNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-6) -> Tensor {
        precondition(x.rank == 4, "layerNorm2d expects NCHW, got \(x.shape)")
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        precondition(weight.shape == [c] && bias.shape == [c], "layerNorm2d: weight \(weight.shape) bias \(bias.shape) for C=\(c)")
        var out = x
        guard hw > 0 && c > 0 else { return out }
        var mean = [Double](repeating: 0, count: hw), inv = [Double](repeating: 0, count: hw)
        let epsD = Double(eps), invC = 1 / Double(c)
        out.data.withUnsafeMutableBufferPointer { o in
            weight.data.withUnsafeBufferPointer { wp in
                bias.data.withUnsafeBufferPointer { bp in
                    mean.withUnsafeMutableBufferPointer { mu in
                        inv.withUnsafeMutableBufferPointer { iv in
                            for b in 0..<n {
                                let img = o.baseAddress! + b * c * hw
                                for p in 0..<hw { mu[p] = 0; iv[p] = 0 }
                                for ch in 0..<c { let pl = img + ch * hw; for p in 0..<hw { mu[p] += Double(pl[p]) } }
                                for p in 0..<hw { mu[p] *= invC }
                                for ch in 0..<c {
                                    let pl = img + ch * hw
                                    for p in 0..<hw { let d = Double(pl[p]) - mu[p]; iv[p] += d * d }
                                }
                                for p in 0..<hw { iv[p] = 1 / (iv[p] * invC + epsD).squareRoot() }
                                for ch in 0..<c {
                                    let pl = img + ch * hw, w = Double(wp[ch]), bb = Double(bp[ch])
                                    for p in 0..<hw { pl[p] = Float((Double(pl[p]) - mu[p]) * iv[p] * w + bb) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Batch norm in inference mode over axis 1 of `[N, C, ...]`: folds running stats
    /// and affine into one scale/shift per channel, then a single pass.
    /// ref: torch.nn.functional.batch_norm(training=False)
    public static func batchNorm(_ x: Tensor, runningMean: Tensor, runningVar: Tensor,
                                 weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(x.rank >= 2, "batchNorm expects [N, C, ...], got \(x.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.count / max(n * c, 1)
        for (name, t) in [("runningMean", runningMean), ("runningVar", runningVar), ("weight", weight), ("bias", bias)] {
            if let t { precondition(t.shape == [c], "batchNorm: \(name) \(t.shape) for C=\(c)") }
        }
        var scale = [Float](repeating: 1, count: c), shift = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            let s = (weight?.data[ch] ?? 1) / (runningVar.data[ch] + eps).squareRoot()
            scale[ch] = s
            shift[ch] = (bias?.data[ch] ?? 0) - runningMean.data[ch] * s
        }
        var out = x
        out.data.withUnsafeMutableBufferPointer { o in
            for b in 0..<n {
                for ch in 0..<c {
                    let pl = o.baseAddress! + (b * c + ch) * inner, s = scale[ch], t = shift[ch]
                    for p in 0..<inner { pl[p] = pl[p] * s + t }
                }
            }
        }
        return out
    }
}
