import Foundation

extension Ops {
    /// Layer normalisation over the last axis with optional affine `weight`/`bias` of
    /// shape `[C]`. Biased variance, like torch.
    ///
    /// Statistics and the normalisation itself run in Double: in Float32 the rounding of
    /// the mean (½ulp of |mean|) is amplified by 1/std, so rows with a large mean and a
    /// small spread (common after residual adds) lose digits. Double costs little here
    /// because the op is memory-bound, and makes the result a few ulp from exact.
    /// ref: torch.nn.functional.layer_norm(normalized_shape=[C])
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let c = x.shape.last ?? 0
        if let weight { precondition(weight.shape == [c], "layerNorm: weight \(weight.shape) for C=\(c)") }
        if let bias { precondition(bias.shape == [c], "layerNorm: bias \(bias.shape) for C=\(c)") }
        var out = x
        guard c > 0 else { return out }
        let rows = x.count / c
        let w = weight?.data ?? [Float](repeating: 1, count: c), b = bias?.data ?? [Float](repeating: 0, count: c)
        let epsD = Double(eps)
        out.data.withUnsafeMutableBufferPointer { o in
            let box = SendablePointer(o.baseAddress!)
            parallelFor(rows, costPerItem: 4 * c) { r in
                // Each iteration normalises its own row: disjoint writes.
                let row = box.base + r * c
                var s = 0.0
                for j in 0..<c { s += Double(row[j]) }
                let mean = s / Double(c)
                var v = 0.0
                for j in 0..<c { let d = Double(row[j]) - mean; v += d * d }
                let inv = 1 / (v / Double(c) + epsD).squareRoot()
                w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        for j in 0..<c { row[j] = Float((Double(row[j]) - mean) * inv * Double(wp[j]) + Double(bp[j])) }
                    }
                }
            }
        }
        return out
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
