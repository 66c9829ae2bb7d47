import Foundation

/// A (height, width) pair for conv/pool hyper-parameters. Integer literals mean "same
/// for both" (`stride: 2`), array literals give both (`padding: [1, 0]`), mirroring
/// PyTorch's `int | tuple[int, int]` arguments.
public struct Size2: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(integerLiteral v: Int) { self.init(v, v) }
    public init(arrayLiteral v: Int...) {
        precondition(v.count == 2, "Size2 needs [h, w], got \(v)")
        self.init(v[0], v[1])
    }
    public var description: String { "(\(h), \(w))" }
}

extension Ops {
    /// 2-D convolution (cross-correlation), NCHW input, weight `[Cout, Cin/groups, kh, kw]`.
    ///
    /// Depthwise convolutions (`Cin/groups == 1`, TinyViT's MBConv) run as a direct loop:
    /// im2col would copy kh·kw× the input to do a rank-1 GEMM. Everything else is
    /// im2col + one `sgemm` per (image, group); a 1×1/stride-1/no-pad conv skips im2col
    /// and multiplies the input planes directly.
    /// ref: torch.nn.functional.conv2d
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                              stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1,
                              groups: Int = 1, epilogue: ConvEpilogue = .none) -> Tensor {
        conv2d(x, weight: weight, packed: nil, bias: bias, stride: stride, padding: padding, dilation: dilation,
               groups: groups, epilogue: epilogue)
    }

    /// `conv2d` with a layer-owned weight: in bf16 precision its bf16 copy is made once and
    /// reused by every call (see `GEMMWeight`).
    public static func conv2d(_ x: Tensor, weight: GEMMWeight, bias: Tensor? = nil,
                              stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1,
                              groups: Int = 1, epilogue: ConvEpilogue = .none) -> Tensor {
        conv2d(x, weight: weight.tensor, packed: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
               groups: groups, epilogue: epilogue)
    }

    static func conv2d(_ x: Tensor, weight: Tensor, packed: GEMMWeight?, bias: Tensor?,
                       stride: Size2, padding: Size2, dilation: Size2, groups: Int, epilogue: ConvEpilogue) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d: x \(x.shape) must be NCHW, weight \(weight.shape) OIHW")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groups >= 1 && cin % groups == 0 && cout % groups == 0 && cinG == cin / groups,
                     "conv2d: x \(x.shape), weight \(weight.shape), groups \(groups) are inconsistent")
        precondition(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
                     "conv2d: bad stride \(stride) / dilation \(dilation) / padding \(padding)")
        if let bias { precondition(bias.shape == [cout], "conv2d: bias \(bias.shape) for Cout=\(cout)") }
        let ho = (h + 2 * padding.h - dilation.h * (kh - 1) - 1) / stride.h + 1
        let wo = (w + 2 * padding.w - dilation.w * (kw - 1) - 1) / stride.w + 1
        precondition(ho > 0 && wo > 0, "conv2d: output would be empty for input \(x.shape), kernel \(kh)x\(kw)")
        if cinG == 1 && groups > 1 {
            return depthwiseConv2d(x, weight: weight, bias: bias, stride: stride, padding: padding,
                                   dilation: dilation, groups: groups, ho: ho, wo: wo, epilogue: epilogue)
        }
        let coutG = cout / groups
        let kdim = cinG * kh * kw, plane = ho * wo
        let direct = kh == 1 && kw == 1 && stride == 1 && padding == 0
        var out = Tensor(zeros: [n, cout, ho, wo])
        var cols = [Float](repeating: 0, count: direct ? 0 : kdim * plane)
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                out.data.withUnsafeMutableBufferPointer { op in
                    cols.withUnsafeMutableBufferPointer { cp in
                        if let bias {
                            for b in 0..<n { for oc in 0..<cout {
                                (op.baseAddress! + (b * cout + oc) * plane).update(repeating: bias.data[oc], count: plane)
                            } }
                        }
                        for b in 0..<n {
                            for g in 0..<groups {
                                let src = xp.baseAddress! + (b * cin + g * cinG) * h * w
                                let colPtr: UnsafePointer<Float>
                                if direct {
                                    colPtr = src
                                } else {
                                    im2col(src, channels: cinG, h: h, w: w, kh: kh, kw: kw, ho: ho, wo: wo,
                                           stride: stride, padding: padding, dilation: dilation, into: cp.baseAddress!)
                                    colPtr = UnsafePointer(cp.baseAddress!)
                                }
                                sgemm(transA: false, transB: false, m: coutG, n: plane, k: kdim,
                                      a: wp.baseAddress! + g * coutG * kdim, lda: kdim,
                                      b: colPtr, ldb: plane, beta: bias == nil ? 0 : 1,
                                      c: op.baseAddress! + (b * cout + g * coutG) * plane, ldc: plane,
                                      aPacked: packed.map { PackedOperand(weight: $0, offset: g * coutG * kdim) })
                            }
                        }
                    }
                }
            }
        }
        if epilogue == .gelu { geluInPlace(&out) }  // fused only on the depthwise path
        return out
    }

    /// Unfolds `channels` planes into a `[channels·kh·kw, ho·wo]` matrix; out-of-image
    /// taps are zero. Row order (c, ki, kj) matches the OIHW weight's flattened rows.
    /// ref: aten/src/ATen/native/im2col.h im2col
    static func im2col(_ src: UnsafePointer<Float>, channels: Int, h: Int, w: Int, kh: Int, kw: Int,
                       ho: Int, wo: Int, stride: Size2, padding: Size2, dilation: Size2,
                       into dst: UnsafeMutablePointer<Float>) {
        let srcBox = SendableConstPointer(src), dstBox = SendablePointer(dst)
        parallelFor(channels, costPerItem: kh * kw * ho * wo) { c in
            // Channel c owns rows [c·kh·kw, (c+1)·kh·kw): disjoint writes.
            let plane = srcBox.base + c * h * w
            for ki in 0..<kh {
                for kj in 0..<kw {
                    let row = dstBox.base + ((c * kh + ki) * kw + kj) * ho * wo
                    let xoff = kj * dilation.w - padding.w
                    let (lo, hi) = validRange(offset: xoff, stride: stride.w, inSize: w, outSize: wo)
                    for oy in 0..<ho {
                        let iy = oy * stride.h - padding.h + ki * dilation.h
                        let r = row + oy * wo
                        if iy < 0 || iy >= h { r.update(repeating: 0, count: wo); continue }
                        let line = plane + iy * w + xoff
                        for ox in 0..<lo { r[ox] = 0 }
                        if stride.w == 1 {
                            if hi > lo { (r + lo).update(from: line + lo, count: hi - lo) }
                        } else {
                            for ox in lo..<max(lo, hi) { r[ox] = line[ox * stride.w] }
                        }
                        for ox in max(lo, hi)..<wo { r[ox] = 0 }
                    }
                }
            }
        }
    }

    /// Output positions `o` in `lo..<hi` for which `o·stride + offset` lies in `0..<inSize`.
    @inline(__always)
    static func validRange(offset: Int, stride: Int, inSize: Int, outSize: Int) -> (Int, Int) {
        // smallest o with o·s + off >= 0; largest o with o·s + off <= inSize-1.
        let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let lastIn = inSize - 1 - offset
        let hi = lastIn < 0 ? 0 : lastIn / stride + 1
        return (min(lo, outSize), min(max(hi, 0), outSize))
    }

    /// Direct depthwise convolution: output channel `oc` reads input channel
    /// `oc / (Cout/groups)`. Parallel over (image, channel) planes.
    static func depthwiseConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Size2, padding: Size2,
                                dilation: Size2, groups: Int, ho: Int, wo: Int, epilogue: ConvEpilogue = .none) -> Tensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let mult = cout / groups
        _ = cin
        return Tensor.uninitialized([n, cout, ho, wo]) { o in
            x.data.withUnsafeBufferPointer { xp in
                weight.data.withUnsafeBufferPointer { wp in
                    let ob = SendablePointer(o.baseAddress!), xb = SendableConstPointer(xp.baseAddress!)
                    let wb = SendableConstPointer(wp.baseAddress!)
                    let biasData = bias?.data
                    parallelFor(n * cout, costPerItem: ho * wo * kh * kw) { job in
                        // One output plane per job: disjoint writes.
                        let b = job / cout, oc = job % cout
                        let ic = oc / mult
                        let src = xb.base + (b * groups + ic) * h * w
                        let dst = ob.base + job * ho * wo
                        let k = wb.base + oc * kh * kw
                        dst.update(repeating: biasData?[oc] ?? 0, count: ho * wo)
                        for ki in 0..<kh {
                            let (ylo, yhi) = validRange(offset: ki * dilation.h - padding.h, stride: stride.h, inSize: h, outSize: ho)
                            for kj in 0..<kw {
                                let xoff = kj * dilation.w - padding.w
                                let (xlo, xhi) = validRange(offset: xoff, stride: stride.w, inSize: w, outSize: wo)
                                if xhi <= xlo { continue }
                                let wv = k[ki * kw + kj]
                                for oy in ylo..<max(ylo, yhi) {
                                    let line = src + (oy * stride.h + ki * dilation.h - padding.h) * w + xoff
                                    let r = dst + oy * wo
                                    if stride.w == 1 {
                                        for ox in xlo..<xhi { r[ox] += wv * line[ox] }
                                    } else {
                                        for ox in xlo..<xhi { r[ox] += wv * line[ox * stride.w] }
                                    }
                                }
                            }
                        }
                        // The plane is still in cache: apply the activation now instead of
                        // another pass over the whole tensor.
                        if epilogue == .gelu { geluSerial(dst, count: ho * wo) }
                    }
                }
            }
        }
    }

    /// Transposed 2-D convolution ("deconvolution"), NCHW input, weight
    /// `[Cin, Cout/groups, kh, kw]` (PyTorch's layout). Computed as
    /// `cols = W_gᵀ · x_g` (one `sgemm` per image and group, transpose by flag) followed by
    /// col2im scatter-add, which is exactly the adjoint of conv2d's im2col + GEMM.
    /// ref: torch.nn.functional.conv_transpose2d; aten/src/ATen/native/NaiveConvolutionTranspose2d.cpp
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil,
                                       stride: Size2 = 1, padding: Size2 = 0, outputPadding: Size2 = 0,
                                       dilation: Size2 = 1, groups: Int = 1) -> Tensor {
        convTranspose2d(x, weight: weight, packed: nil, bias: bias, stride: stride, padding: padding,
                        outputPadding: outputPadding, dilation: dilation, groups: groups)
    }

    /// `convTranspose2d` with a layer-owned weight (bf16 copy made once, see `GEMMWeight`).
    public static func convTranspose2d(_ x: Tensor, weight: GEMMWeight, bias: Tensor? = nil,
                                       stride: Size2 = 1, padding: Size2 = 0, outputPadding: Size2 = 0,
                                       dilation: Size2 = 1, groups: Int = 1) -> Tensor {
        convTranspose2d(x, weight: weight.tensor, packed: weight, bias: bias, stride: stride, padding: padding,
                        outputPadding: outputPadding, dilation: dilation, groups: groups)
    }

    static func convTranspose2d(_ x: Tensor, weight: Tensor, packed: GEMMWeight?, bias: Tensor?,
                                stride: Size2, padding: Size2, outputPadding: Size2,
                                dilation: Size2, groups: Int) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "convTranspose2d: x \(x.shape) must be NCHW, weight \(weight.shape) IOHW")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (coutG, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groups >= 1 && weight.shape[0] == cin && cin % groups == 0,
                     "convTranspose2d: x \(x.shape), weight \(weight.shape), groups \(groups) are inconsistent")
        precondition(outputPadding.h < max(stride.h, dilation.h) && outputPadding.w < max(stride.w, dilation.w),
                     "convTranspose2d: output padding \(outputPadding) must be smaller than stride or dilation")
        let cout = coutG * groups, cinG = cin / groups
        if let bias { precondition(bias.shape == [cout], "convTranspose2d: bias \(bias.shape) for Cout=\(cout)") }
        let ho = (h - 1) * stride.h - 2 * padding.h + dilation.h * (kh - 1) + outputPadding.h + 1
        let wo = (w - 1) * stride.w - 2 * padding.w + dilation.w * (kw - 1) + outputPadding.w + 1
        precondition(ho > 0 && wo > 0, "convTranspose2d: empty output for \(x.shape)")
        let rowsK = coutG * kh * kw, plane = h * w
        var out = Tensor(zeros: [n, cout, ho, wo])
        var cols = [Float](repeating: 0, count: rowsK * plane)
        x.data.withUnsafeBufferPointer { xp in
            weight.data.withUnsafeBufferPointer { wp in
                out.data.withUnsafeMutableBufferPointer { op in
                    cols.withUnsafeMutableBufferPointer { cp in
                        for b in 0..<n {
                            for g in 0..<groups {
                                sgemm(transA: true, transB: false, m: rowsK, n: plane, k: cinG,
                                      a: wp.baseAddress! + g * cinG * rowsK, lda: rowsK,
                                      b: xp.baseAddress! + (b * cin + g * cinG) * plane, ldb: plane,
                                      c: cp.baseAddress!, ldc: plane,
                                      aPacked: packed.map { PackedOperand(weight: $0, offset: g * cinG * rowsK) })
                                let colBox = SendableConstPointer(UnsafePointer(cp.baseAddress!))
                                let outBox = SendablePointer(op.baseAddress! + (b * cout + g * coutG) * ho * wo)
                                parallelFor(coutG, costPerItem: kh * kw * plane) { oc in
                                    // Each job scatters only into output channel oc: disjoint writes.
                                    let dst = outBox.base + oc * ho * wo
                                    for ki in 0..<kh {
                                        for kj in 0..<kw {
                                            let row = colBox.base + ((oc * kh + ki) * kw + kj) * plane
                                            for iy in 0..<h {
                                                let oy = iy * stride.h - padding.h + ki * dilation.h
                                                if oy < 0 || oy >= ho { continue }
                                                let line = dst + oy * wo
                                                let ox0 = kj * dilation.w - padding.w
                                                for ix in 0..<w {
                                                    let ox = ix * stride.w + ox0
                                                    if ox >= 0 && ox < wo { line[ox] += row[iy * w + ix] }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        if let bias {
                            bias.data.withUnsafeBufferPointer { bp in
                                for b in 0..<n { for oc in 0..<cout {
                                    let pl = op.baseAddress! + (b * cout + oc) * ho * wo, v = bp[oc]
                                    for p in 0..<ho * wo { pl[p] += v }
                                } }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// An activation applied to a convolution's output. Depthwise convolutions apply it per
/// output plane while the plane is in cache (one memory pass fewer); other convolutions
/// apply it after the GEMM.
public enum ConvEpilogue: Sendable, Equatable {
    case none
    /// Exact (erf) GELU, the same kernel as `Ops.gelu`.
    case gelu
}

extension Ops {
    /// Exact GELU over `count` floats in place, on the calling thread (`gelu8` lanes).
    static func geluSerial(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let v = UnsafeMutableRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: gelu8(v), as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<(count - i) { v[j] = p[i + j] }
            let r = gelu8(v)
            for j in 0..<(count - i) { p[i + j] = r[j] }
        }
    }
}
