import Foundation

/// Pillow's BILINEAR and BICUBIC resampling (and its NEAREST resize) of 8-bit images,
/// reproduced bit for bit.
///
/// SAM's `ResizeLongestSide.apply_image` resizes the uint8 image with PIL (antialiased
/// bilinear, fixed-point arithmetic, rounding to uint8 after each separable pass), so an
/// exact port is the only way to feed the encoder the same pixels as upstream.
/// ref: Pillow src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
///      ImagingResampleHorizontal_8bpc, ImagingResampleVertical_8bpc, ImagingResampleInner)
public enum PILResample {
    /// 32 - 8 - 2, as Resample.c's PRECISION_BITS.
    static let precisionBits = 22

    struct Coefficients {
        var ksize: Int
        var bounds: [(min: Int, count: Int)]
        var weights: [Int32]  // outSize × ksize, fixed point
    }

    /// Resample.c's filters: support and kernel.
    enum Filter {
        case bilinear, bicubic
        var support: Double { self == .bilinear ? 1 : 2 }
        // ref: Resample.c bilinear_filter, bicubic_filter (a = -0.5)
        func callAsFunction(_ x: Double) -> Double {
            let t = abs(x)
            switch self {
            case .bilinear: return t < 1 ? 1 - t : 0
            case .bicubic:
                let a = -0.5
                if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
                return 0
            }
        }
    }

    static func coefficients(inSize: Int, outSize: Int, filter: Filter = .bilinear) -> Coefficients {
        let support = filter.support
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let sup = support * filterScale
        let ksize = Int(sup.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            // C's (int) cast truncates toward zero.
            var xmin = Int(center - sup + 0.5); if xmin < 0 { xmin = 0 }
            var xmax = Int(center + sup + 0.5); if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<xmax {
                let w = filter((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax where ww != 0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(k[x] < 0 ? Int(-0.5 + v) : Int(0.5 + v))
            }
            bounds.append((xmin, xmax))
        }
        return Coefficients(ksize: ksize, bounds: bounds, weights: weights)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        if v >= Int32(1 << precisionBits) << 8 { return 255 }
        if v <= 0 { return 0 }
        return UInt8(v >> Int32(precisionBits))
    }

    /// Resizes an interleaved 8-bit image (`channels` per pixel) to `width`×`height`.
    public static func bilinear(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                                toWidth outW: Int, toHeight outH: Int) -> [UInt8] {
        resample(pixels, width: width, height: height, channels: channels, toWidth: outW, toHeight: outH, filter: .bilinear)
    }

    /// `Image.resize(size, Image.BICUBIC)` (Pillow's default filter for RGB/L images).
    public static func bicubic(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                               toWidth outW: Int, toHeight outH: Int) -> [UInt8] {
        resample(pixels, width: width, height: height, channels: channels, toWidth: outW, toHeight: outH, filter: .bicubic)
    }

    /// `Image.resize(size, Image.NEAREST)`: Pillow scales with an affine nearest transform,
    /// source index `int(x₀ + (i + ½)·in/out)` where the position is accumulated in Double
    /// step by step, as upstream does (the accumulation, not a product, picks the pixel).
    /// ref: Pillow src/libImaging/Geometry.c ImagingScaleAffine (xo += a[0]; COORD)
    public static func nearest(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                               toWidth outW: Int, toHeight outH: Int) -> [UInt8] {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        precondition(outW > 0 && outH > 0, "target size must be positive")
        if outW == width && outH == height { return pixels }
        func table(_ inSize: Int, _ outSize: Int) -> [Int] {
            let step = Double(inSize) / Double(outSize)
            var pos = step * 0.5
            var idx = [Int](repeating: 0, count: outSize)
            for i in 0..<outSize {
                idx[i] = min(max(Int(pos), 0), inSize - 1)
                pos += step
            }
            return idx
        }
        let xs = table(width, outW), ys = table(height, outH)
        var out = [UInt8](repeating: 0, count: outW * outH * channels)
        for y in 0..<outH {
            let src = ys[y] * width * channels, dst = y * outW * channels
            for x in 0..<outW {
                for c in 0..<channels { out[dst + x * channels + c] = pixels[src + xs[x] * channels + c] }
            }
        }
        return out
    }

    static func resample(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                         toWidth outW: Int, toHeight outH: Int, filter: Filter) -> [UInt8] {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        precondition(outW > 0 && outH > 0, "target size must be positive")
        let needH = outW != width, needV = outH != height
        if !needH && !needV { return pixels }
        let horiz = coefficients(inSize: width, outSize: outW, filter: filter)
        var vert = coefficients(inSize: height, outSize: outH, filter: filter)
        // Only source rows some output row uses take part in the horizontal pass.
        let yFirst = vert.bounds[0].min
        let yLast = vert.bounds[outH - 1].min + vert.bounds[outH - 1].count
        var src = pixels, srcW = width, srcH = height
        let half = Int32(1 << (precisionBits - 1))
        if needH {
            for i in 0..<outH { vert.bounds[i].min -= yFirst }
            let rows = yLast - yFirst
            var tmp = [UInt8](repeating: 0, count: outW * rows * channels)
            pixels.withUnsafeBufferPointer { inp in
                tmp.withUnsafeMutableBufferPointer { out in
                    for y in 0..<rows {
                        let row = (y + yFirst) * width * channels
                        for xx in 0..<outW {
                            let (xmin, n) = horiz.bounds[xx]
                            let kOff = xx * horiz.ksize
                            for ch in 0..<channels {
                                var ss = half
                                for x in 0..<n {
                                    ss &+= Int32(inp[row + (x + xmin) * channels + ch]) &* horiz.weights[kOff + x]
                                }
                                out[(y * outW + xx) * channels + ch] = clip8(ss)
                            }
                        }
                    }
                }
            }
            src = tmp; srcW = outW; srcH = rows
        }
        guard needV else { return src }
        _ = srcH
        var out = [UInt8](repeating: 0, count: outW * outH * channels)
        src.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                for yy in 0..<outH {
                    let (ymin, n) = vert.bounds[yy]
                    let kOff = yy * vert.ksize
                    for xx in 0..<(srcW * channels) {
                        var ss = half
                        for y in 0..<n { ss &+= Int32(inp[(y + ymin) * srcW * channels + xx]) &* vert.weights[kOff + y] }
                        o[yy * srcW * channels + xx] = clip8(ss)
                    }
                }
            }
        }
        return out
    }
}
