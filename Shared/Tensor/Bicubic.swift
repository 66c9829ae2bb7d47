import Foundation

extension Ops {
    /// Bicubic resize of an NCHW tensor, `align_corners=False`, as PyTorch's CPU kernel:
    /// Keys' cubic convolution with A = -0.75 (not PIL's -0.5), 4 taps per axis with source
    /// indices clamped to the border (no antialiasing). Used for position-embedding grids
    /// (CLIPSeg, SegGPT/Painter) and Painter's restoration output.
    /// ref: torch.nn.functional.interpolate(mode="bicubic", align_corners=False);
    ///      aten/src/ATen/native/UpSample.h (area_pixel_compute_source_index with cubic=true,
    ///      guard_index_and_lambda, cubic_convolution1/2, get_cubic_upsample_coefficients);
    ///      aten/src/ATen/native/cpu/UpSampleKernel.cpp (HelperInterpCubic, Interpolate<n>)
    public static func interpolateBicubic(_ x: Tensor, size: Size2) -> Tensor {
        let (outH, outW) = (size.h, size.w)
        precondition(x.rank == 4 && outH > 0 && outW > 0, "interpolateBicubic expects NCHW and a positive size, got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ty = cubicTaps(inSize: h, outSize: outH), tx = cubicTaps(inSize: w, outSize: outW)
        var out = [Float](repeating: 0, count: n * c * outH * outW)
        x.data.withUnsafeBufferPointer { xp in
            for p in 0..<(n * c) {
                let plane = xp.baseAddress! + p * h * w
                for oy in 0..<outH {
                    let (iy, wy) = ty[oy]
                    for ox in 0..<outW {
                        let (ix, wx) = tx[ox]
                        // Same association as upstream's Interpolate<2>: rows first (inner sum over
                        // x, accumulated left to right), then the weighted sum over the 4 rows.
                        var acc: Float = 0
                        for j in 0..<4 {
                            let row = plane + iy[j] * w
                            var t = row[ix[0]] * wx[0]
                            for i in 1..<4 { t += row[ix[i]] * wx[i] }
                            acc = j == 0 ? t * wy[0] : acc + t * wy[j]
                        }
                        out[(p * outH + oy) * outW + ox] = acc
                    }
                }
            }
        }
        return Tensor(shape: [n, c, outH, outW], data: out)
    }

    /// Per output index: the 4 clamped source indices and their cubic weights.
    /// Computed in Float like upstream's `opmath_t` for float inputs.
    private static func cubicTaps(inSize: Int, outSize: Int) -> [(idx: [Int], weights: [Float])] {
        let a: Float = -0.75
        // ref: UpSample.h cubic_convolution1 / cubic_convolution2
        func conv1(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func conv2(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        let scale = Float(inSize) / Float(outSize)           // area_pixel_compute_scale (no scale_factor given)
        return (0..<outSize).map { o in
            let src = scale * (Float(o) + 0.5) - 0.5           // cubic: no clamp at 0
            let index = min(Int(floorf(src)), inSize - 1)       // guard_index_and_lambda
            let t = min(max(src - Float(index), 0), 1)
            let x2 = 1 - t                                      // get_cubic_upsample_coefficients
            let weights = [conv2(t + 1), conv1(t), conv1(x2), conv2(x2 + 1)]
            let idx = (0..<4).map { min(max(index - 1 + $0, 0), inSize - 1) }
            return (idx, weights)
        }
    }
}
