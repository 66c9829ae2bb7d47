import Foundation

// Channels-last (NHWC / token-major) convolution kernels. Token models (TinyViT) keep
// activations as `[B, H·W, C]`; these let their convolutions run without permuting to
// NCHW and back. Weights keep PyTorch's OIHW layout.

extension Ops {
    /// Depthwise 2-D convolution on channels-last input: `x: [B, H, W, C]`, weight
    /// `[C, 1, kh, kw]`, bias `[C]` → `[B, Ho, Wo, C]`. Same arithmetic as `conv2d` with
    /// `groups = C` (bias first, then taps in (ki, kj) order, one rounding per tap), but
    /// 8 channels per SIMD lane group; rows are split across cores.
    /// ref: torch.nn.functional.conv2d(groups=C) on x.permute(0, 3, 1, 2)
    public static func depthwiseConv2dNHWC(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                                           stride: Size2 = 1, padding: Size2 = 0) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && weight.shape[0] == x.shape[3] && weight.shape[1] == 1,
                     "depthwiseConv2dNHWC: x \(x.shape) must be [B, H, W, C], weight \(weight.shape) [C, 1, kh, kw]")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        if let bias { precondition(bias.shape == [c], "depthwiseConv2dNHWC: bias \(bias.shape) for C=\(c)") }
        let ho = (h + 2 * padding.h - kh) / stride.h + 1, wo = (w + 2 * padding.w - kw) / stride.w + 1
        precondition(ho > 0 && wo > 0, "depthwiseConv2dNHWC: empty output for \(x.shape)")
        // Taps as [kh·kw, C] so each tap's weights are contiguous over channels.
        var taps = [Float](repeating: 0, count: kh * kw * c)
        for ch in 0..<c { for t in 0..<(kh * kw) { taps[t * c + ch] = weight.data[ch * kh * kw + t] } }
        let biasData = bias?.data ?? [Float](repeating: 0, count: c)
        return Tensor.uninitialized([n, ho, wo, c]) { o in
            x.data.withUnsafeBufferPointer { xp in
            taps.withUnsafeBufferPointer { tp in
            biasData.withUnsafeBufferPointer { bp in
                let ob = SendablePointer(o.baseAddress!), xb = SendableConstPointer(xp.baseAddress!)
                let tb = SendableConstPointer(tp.baseAddress!), bb = SendableConstPointer(bp.baseAddress!)
                parallelFor(n * ho, costPerItem: wo * c * kh * kw) { job in
                    // One output row per job: disjoint writes.
                    let b = job / ho, oy = job % ho
                    let dstRow = ob.base + job * wo * c
                    for ox in 0..<wo { (dstRow + ox * c).update(from: bb.base, count: c) }
                    for ki in 0..<kh {
                        let iy = oy * stride.h - padding.h + ki
                        if iy < 0 || iy >= h { continue }
                        let srcRow = xb.base + (b * h + iy) * w * c
                        for kj in 0..<kw {
                            let xoff = kj - padding.w
                            let (lo, hi) = validRange(offset: xoff, stride: stride.w, inSize: w, outSize: wo)
                            if hi <= lo { continue }
                            let wt = tb.base + (ki * kw + kj) * c
                            for ox in lo..<hi {
                                let src = srcRow + (ox * stride.w + xoff) * c, dst = dstRow + ox * c
                                var ch = 0
                                while ch + 8 <= c {
                                    let s = UnsafeRawPointer(src + ch).loadUnaligned(as: SIMD8<Float>.self)
                                    let wv = UnsafeRawPointer(wt + ch).loadUnaligned(as: SIMD8<Float>.self)
                                    let dp = UnsafeMutableRawPointer(dst + ch)
                                    dp.storeBytes(of: dp.loadUnaligned(as: SIMD8<Float>.self) + wv * s, as: SIMD8<Float>.self)
                                    ch += 8
                                }
                                while ch < c { dst[ch] += wt[ch] * src[ch]; ch += 1 }
                            }
                        }
                    }
                }
            }}}
        }
    }

    /// 1×1 convolution from NCHW input straight to channels-last tokens:
    /// `x: [B, Cin, H, W]`, weight `[Cout, Cin, 1, 1]` → `[B, H·W, Cout]`. One GEMM per
    /// image, `xᵀ · Wᵀ` with both transposes as BLAS flags (no permute copy).
    /// ref: torch.nn.functional.conv2d(x, w).flatten(2).transpose(1, 2)
    public static func pointwiseConvToTokens(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        pointwiseConvToTokens(x, weight: weight, packed: nil, bias: bias)
    }

    /// `pointwiseConvToTokens` with a layer-owned weight (bf16 copy made once, see `GEMMWeight`).
    public static func pointwiseConvToTokens(_ x: Tensor, weight: GEMMWeight, bias: Tensor? = nil) -> Tensor {
        pointwiseConvToTokens(x, weight: weight.tensor, packed: weight, bias: bias)
    }

    static func pointwiseConvToTokens(_ x: Tensor, weight: Tensor, packed: GEMMWeight?, bias: Tensor?) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && weight.shape[1] == x.shape[1] && weight.shape[2] == 1 && weight.shape[3] == 1,
                     "pointwiseConvToTokens: x \(x.shape), weight \(weight.shape)")
        let (n, cin, plane, cout) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3], weight.shape[0])
        if let bias { precondition(bias.shape == [cout], "pointwiseConvToTokens: bias \(bias.shape) for Cout=\(cout)") }
        var out = Tensor.uninitialized([n, plane, cout]) { _ in }
        out.data.withUnsafeMutableBufferPointer { op in
            x.data.withUnsafeBufferPointer { xp in
                weight.data.withUnsafeBufferPointer { wp in
                    for b in 0..<n {
                        let dst = op.baseAddress! + b * plane * cout
                        if let bias {
                            bias.data.withUnsafeBufferPointer { bp in
                                for p in 0..<plane { (dst + p * cout).update(from: bp.baseAddress!, count: cout) }
                            }
                        }
                        sgemm(transA: true, transB: true, m: plane, n: cout, k: cin,
                              a: xp.baseAddress! + b * cin * plane, lda: plane, b: wp.baseAddress!, ldb: cin,
                              beta: bias == nil ? 0 : 1, c: dst, ldc: cout,
                              bPacked: packed.map { PackedOperand(weight: $0, offset: 0) })
                    }
                }
            }
        }
        return out
    }
}
