import Foundation

// Resampling of NCHW images / NCL sequences, matching torch.nn.functional.interpolate.

extension Ops {
    /// Source index and weights of one output position for (bi)linear interpolation.
    /// Computed in Float in upstream's order so indices agree bit-for-bit at the edges.
    /// ref: aten/src/ATen/native/UpSample.h area_pixel_compute_source_index,
    ///      compute_indices_weights_linear (align_corners=False clamps negatives to 0)
    static func linearTaps(inSize: Int, outSize: Int, alignCorners: Bool) -> [(i0: Int, i1: Int, l0: Float, l1: Float)] {
        let scale: Float = alignCorners
            ? (outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0)
            : Float(inSize) / Float(outSize)
        return (0..<outSize).map { o in
            var src: Float
            if alignCorners {
                src = scale * Float(o)
            } else {
                src = scale * (Float(o) + 0.5) - 0.5
                if src < 0 { src = 0 }
            }
            let i0 = min(Int(src), inSize - 1)
            let l1 = min(max(src - Float(i0), 0), 1)
            let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
            return (i0, i1, 1 - l1, l1)
        }
    }

    /// 1-D linear resize of `[N, C, L]` along L. ref: F.interpolate(mode="linear")
    public static func interpolateLinear(_ x: Tensor, size: Int, alignCorners: Bool = false) -> Tensor {
        precondition(x.rank == 3 && size > 0, "interpolateLinear expects [N, C, L] and size > 0, got \(x.shape), \(size)")
        let l = x.shape[2]
        let taps = linearTaps(inSize: l, outSize: size, alignCorners: alignCorners)
        let rows = x.shape[0] * x.shape[1]
        return Tensor.uninitialized([x.shape[0], x.shape[1], size]) { o in
            x.data.withUnsafeBufferPointer { xp in
                for r in 0..<rows {
                    let src = xp.baseAddress! + r * l, dst = o.baseAddress! + r * size
                    for (j, t) in taps.enumerated() { dst[j] = t.l0 * src[t.i0] + t.l1 * src[t.i1] }
                }
            }
        }
    }

    /// Bilinear resize of an NCHW tensor to `size` (height, width).
    ///
    /// `antialias: false` is classic 2-tap bilinear (PyTorch's default). `antialias: true`
    /// widens the triangle filter by the downscale factor so every input pixel
    /// contributes — PIL's `Image.resize(BILINEAR)` — which is what image
    /// preprocessing pipelines (HF processors, torchvision v2) use to shrink images.
    /// Upscaling with `antialias: true` equals plain bilinear.
    /// ref: torch.nn.functional.interpolate(mode="bilinear", align_corners=, antialias=)
    public static func interpolateBilinear(_ x: Tensor, size: Size2, alignCorners: Bool = false,
                                           antialias: Bool = false) -> Tensor {
        precondition(x.rank == 4 && size.h > 0 && size.w > 0, "interpolateBilinear expects NCHW and a positive size, got \(x.shape), \(size)")
        if antialias {
            precondition(!alignCorners, "antialiased bilinear supports align_corners=False only (as in PIL)")
            return antialiasedBilinear(x, size: size)
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ty = linearTaps(inSize: h, outSize: size.h, alignCorners: alignCorners)
        let tx = linearTaps(inSize: w, outSize: size.w, alignCorners: alignCorners)
        let (ho, wo) = (size.h, size.w)
        return Tensor.uninitialized([n, c, ho, wo]) { o in
            x.data.withUnsafeBufferPointer { xp in
                let ob = SendablePointer(o.baseAddress!), xb = SendableConstPointer(xp.baseAddress!)
                parallelFor(n * c, costPerItem: ho * wo * 4) { p in
                    // One plane per job: disjoint writes.
                    let src = xb.base + p * h * w, dst = ob.base + p * ho * wo
                    for oy in 0..<ho {
                        let t = ty[oy]
                        let r0 = src + t.i0 * w, r1 = src + t.i1 * w, line = dst + oy * wo
                        for ox in 0..<wo {
                            let s = tx[ox]
                            // Same association as upstream's cpu kernel.
                            line[ox] = t.l0 * (s.l0 * r0[s.i0] + s.l1 * r0[s.i1])
                                     + t.l1 * (s.l0 * r1[s.i0] + s.l1 * r1[s.i1])
                        }
                    }
                }
            }
        }
    }

    /// Per-output-index support window and normalised weights of the antialiased
    /// triangle filter along one axis.
    /// ref: aten/src/ATen/native/cpu/UpSampleKernel.cpp _compute_indices_min_size_weights_aa
    ///      (and PIL's Resample.c precompute_coeffs, which it ports)
    static func antialiasTaps(inSize: Int, outSize: Int) -> (start: [Int], count: [Int], weights: [Float], maxTaps: Int) {
        let scale = Double(inSize) / Double(outSize)
        let support = scale >= 1 ? scale : 1.0 // bilinear: interp_size/2 = 1, widened by the downscale
        let invScale = scale >= 1 ? 1 / scale : 1.0
        let maxTaps = Int(ceil(support)) * 2 + 1
        var start = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Float](repeating: 0, count: outSize * maxTaps)
        for i in 0..<outSize {
            let center = scale * (Double(i) + 0.5)
            let xmin = max(Int(center - support + 0.5), 0)          // C truncation, as upstream
            let xsize = min(Int(center + support + 0.5), inSize) - xmin
            var ws = [Double](repeating: 0, count: max(xsize, 0))
            var total = 0.0
            for j in 0..<max(xsize, 0) {
                let t = (Double(j + xmin) - center + 0.5) * invScale
                let wv = max(0, 1 - abs(t))
                ws[j] = wv
                total += wv
            }
            start[i] = xmin
            count[i] = max(xsize, 0)
            for j in 0..<count[i] { weights[i * maxTaps + j] = Float(total != 0 ? ws[j] / total : ws[j]) }
        }
        return (start, count, weights, maxTaps)
    }

    /// Separable antialiased bilinear: horizontal pass into an `[N·C, H, Wout]` buffer,
    /// then vertical pass — the same order as upstream, so rounding matches closely.
    static func antialiasedBilinear(_ x: Tensor, size: Size2) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (size.h, size.w)
        let tx = antialiasTaps(inSize: w, outSize: wo), ty = antialiasTaps(inSize: h, outSize: ho)
        let planes = n * c
        var tmp = [Float](repeating: 0, count: planes * h * wo)
        tmp.withUnsafeMutableBufferPointer { tp in
            x.data.withUnsafeBufferPointer { xp in
                let tb = SendablePointer(tp.baseAddress!), xb = SendableConstPointer(xp.baseAddress!)
                parallelFor(planes, costPerItem: h * wo * tx.maxTaps) { p in
                    // One plane per job: disjoint writes.
                    for y in 0..<h {
                        let src = xb.base + (p * h + y) * w, dst = tb.base + (p * h + y) * wo
                        for ox in 0..<wo {
                            let s0 = tx.start[ox], wts = ox * tx.maxTaps
                            var acc: Float = 0
                            for j in 0..<tx.count[ox] { acc += tx.weights[wts + j] * src[s0 + j] }
                            dst[ox] = acc
                        }
                    }
                }
            }
        }
        return Tensor.uninitialized([n, c, ho, wo]) { o in
            tmp.withUnsafeBufferPointer { tp in
                let ob = SendablePointer(o.baseAddress!), tb = SendableConstPointer(tp.baseAddress!)
                parallelFor(planes, costPerItem: ho * wo * ty.maxTaps) { p in
                    // One plane per job: disjoint writes.
                    let src = tb.base + p * h * wo
                    for oy in 0..<ho {
                        let line = ob.base + (p * ho + oy) * wo
                        for ox in 0..<wo { line[ox] = 0 }
                        let s0 = ty.start[oy], wts = oy * ty.maxTaps
                        for j in 0..<ty.count[oy] {
                            let wv = ty.weights[wts + j], row = src + (s0 + j) * wo
                            for ox in 0..<wo { line[ox] += wv * row[ox] }
                        }
                    }
                }
            }
        }
    }

    /// Nearest-neighbour resize of NCHW: `src = min(floor(dst · in/out), in − 1)`.
    /// (PyTorch's legacy "nearest", not "nearest-exact".) ref: F.interpolate(mode="nearest")
    public static func interpolateNearest(_ x: Tensor, size: Size2) -> Tensor {
        precondition(x.rank == 4 && size.h > 0 && size.w > 0, "interpolateNearest expects NCHW and a positive size, got \(x.shape), \(size)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (size.h, size.w)
        func index(_ o: Int, _ inSize: Int, _ outSize: Int) -> Int {
            // ref: aten/src/ATen/native/UpSample.h nearest_idx
            if outSize == inSize { return o }
            if outSize == 2 * inSize { return o >> 1 }
            let scale = Float(inSize) / Float(outSize)
            return min(Int(floorf(Float(o) * scale)), inSize - 1)
        }
        let iy = (0..<ho).map { index($0, h, ho) }, ix = (0..<wo).map { index($0, w, wo) }
        return Tensor.uninitialized([n, c, ho, wo]) { o in
            x.data.withUnsafeBufferPointer { xp in
                for p in 0..<(n * c) {
                    for oy in 0..<ho {
                        let src = xp.baseAddress! + (p * h + iy[oy]) * w, dst = o.baseAddress! + (p * ho + oy) * wo
                        for ox in 0..<wo { dst[ox] = src[ix[ox]] }
                    }
                }
            }
        }
    }
}
