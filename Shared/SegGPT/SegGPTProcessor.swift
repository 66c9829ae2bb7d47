import Foundation
import Imaging
import Tensor

/// A class-index map (0 = background, 1…numLabels = classes), row-major.
public struct SegGPTClassMap: Sendable, Equatable {
    public let width: Int, height: Int
    public let labels: [Int]
    /// Classes excluding the background: the palette has `numLabels + 1` colours.
    public let numLabels: Int

    public init(width: Int, height: Int, labels: [Int], numLabels: Int) throws(SegGPTError) {
        guard width > 0, height > 0, labels.count == width * height else {
            throw .badInput(what: "class map", expected: [height, width], actual: [labels.count])
        }
        if let bad = labels.first(where: { $0 < 0 || $0 > numLabels }) { throw .classOutOfRange(index: bad, numLabels: numLabels) }
        self.width = width; self.height = height; self.labels = labels; self.numLabels = numLabels
    }

    /// From a class-index PNG read as grey levels (pixel value = class index).
    public init(gray: GrayImage, numLabels: Int) throws(SegGPTError) {
        try self.init(width: gray.width, height: gray.height, labels: gray.pixels.map(Int.init), numLabels: numLabels)
    }

    /// The map as grey levels (pixel value = class index), if every index fits a byte.
    public var grayImage: GrayImage? {
        guard numLabels < 256 else { return nil }
        return try? GrayImage(width: width, height: height, pixels: labels.map { UInt8($0) })
    }
}

/// What a prompt shows for its image.
public enum SegGPTTarget: Sendable, Equatable {
    /// Non-zero = foreground; fed as white on black (the original's `*_target.png`).
    case binaryMask(BinaryMask)
    /// Class indices, fed in `SegGPTProcessor.palette(numLabels:)` colours (transformers'
    /// `build_palette`, background black).
    case classMap(SegGPTClassMap)
    /// An RGB target used as is (Painter: a depth map as grey levels, a clean image for
    /// restoration, or a colour-coded mask), resized with `resample`.
    case image(RGBImage, resample: SegGPTProcessor.Resample)
}

/// Pre- and post-processing of SegGPT / Painter, the contract of transformers'
/// `SegGptImageProcessor` and of the original inference scripts.
///
/// Preprocessing, to one half of the canvas (`size`, 448×448 for ViT-L):
/// - images: RGB → PIL BICUBIC resize (`resample` 3 in preprocessor_config.json; the
///   original's `Image.resize((448, 448))` default) → ÷255 → (x − mean) ÷ std with the
///   ImageNet mean/std, in float32 (bit-exact with `SegGptImageProcessorPil`).
/// - binary masks: foreground → (255, 255, 255), background → black, then the same path
///   but resized with PIL NEAREST (transformers resizes `prompt_masks` with NEAREST; the
///   original `tgt2.resize(..., Image.NEAREST)`), so masks stay two-valued.
/// - class maps: each class → `palette(numLabels:)` colour, then as binary masks.
///
/// Postprocessing of the query half of the prediction (`raw`, `[3, h, w]`):
/// - `unnormalize`: clip((raw·std + mean)·255, 0, 255) (post_process_semantic_segmentation,
///   run_one_image).
/// - `binaryMask`: nearest resize to the query's size (`F.interpolate(mode="nearest")`),
///   foreground where the channel mean > 128 (seggpt_engine.inference_video's
///   `output.mean(-1).gt(128)`).
/// - `classMap`: nearest resize, then the palette colour at the smallest squared distance
///   (first on ties), as post_process_semantic_segmentation with `num_labels`.
/// - Painter `depthMetres`: clip((raw·std + mean)·10000, 0, 10000), bilinear resize, channel
///   mean = NYUv2 depth PNG units (mm), ÷1000 → metres, i.e. grey level 1.0 = 10 m
///   (Painter/eval/nyuv2_depth/painter_inference_depth.py + eval_with_pngs.py).
/// - Painter `restoredImage`: raw·std + mean, torch-bicubic resize, clip to [0, 1], ×255,
///   truncated to uint8 (Painter/eval/derain/painter_inference_derain.py).
/// - Painter semantic maps: `classMap(…, resample: .bilinear)` (clip·255, bilinear, truncate
///   to int, nearest palette colour; Painter/eval/ade20k_semantic).
public struct SegGPTProcessor: Sendable, Equatable {
    public enum Resample: String, Sendable, Equatable { case nearest, bilinear, bicubic }

    /// IMAGENET_DEFAULT_MEAN / _STD.
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]
    /// seggpt_engine.inference_video: `output.mean(-1).gt(128)`.
    public static let binaryThreshold: Float = 128

    public var imageMean: [Float]
    public var imageStd: [Float]
    /// One half of the canvas: [height, width].
    public var size: (h: Int, w: Int)
    public var resample: Resample

    public init(size: (h: Int, w: Int), imageMean: [Float] = imagenetMean, imageStd: [Float] = imagenetStd,
                resample: Resample = .bicubic) {
        self.size = size; self.imageMean = imageMean; self.imageStd = imageStd; self.resample = resample
    }

    public static func == (a: SegGPTProcessor, b: SegGPTProcessor) -> Bool {
        a.imageMean == b.imageMean && a.imageStd == b.imageStd && a.size == b.size && a.resample == b.resample
    }

    /// transformers' `build_palette(num_labels)`: black, then `num_labels` colours stepping
    /// down from white by `256 // (⌊n^(1/3)⌋ + 1)` per channel digit.
    /// ref: image_processing_seggpt.py build_palette
    public static func palette(numLabels: Int) -> [(r: UInt8, g: UInt8, b: UInt8)] {
        let base = Int(pow(Double(numLabels), 1.0 / 3.0)) + 1
        let margin = 256 / base
        var colours: [(r: UInt8, g: UInt8, b: UInt8)] = [(0, 0, 0)]
        for location in 0..<numLabels {
            let r = location / (base * base), g = (location % (base * base)) / base, b = location % base
            colours.append((UInt8(255 - r * margin), UInt8(255 - g * margin), UInt8(255 - b * margin)))
        }
        return colours
    }

    // MARK: preprocessing

    /// `[3, h, w]` pixel values of an image (query or prompt).
    public func preprocess(image: RGBImage) -> Tensor {
        normalize(resized(image.pixels, width: image.width, height: image.height, with: resample))
    }

    /// `[3, h, w]` pixel values of a prompt's target.
    public func preprocess(target: SegGPTTarget) -> Tensor {
        switch target {
        case .binaryMask(let m):
            let rgb = m.bits.flatMap { $0 != 0 ? [UInt8](repeating: 255, count: 3) : [0, 0, 0] }
            return normalize(resized(rgb, width: m.width, height: m.height, with: .nearest))
        case .classMap(let c):
            let pal = Self.palette(numLabels: c.numLabels)
            var rgb = [UInt8](repeating: 0, count: c.labels.count * 3)
            for (i, l) in c.labels.enumerated() { rgb[3 * i] = pal[l].r; rgb[3 * i + 1] = pal[l].g; rgb[3 * i + 2] = pal[l].b }
            return normalize(resized(rgb, width: c.width, height: c.height, with: .nearest))
        case let .image(img, resample: r):
            return normalize(resized(img.pixels, width: img.width, height: img.height, with: r))
        }
    }

    func resized(_ rgb: [UInt8], width: Int, height: Int, with r: Resample) -> [UInt8] {
        switch r {
        case .nearest: return PILResample.nearest(rgb, width: width, height: height, channels: 3, toWidth: size.w, toHeight: size.h)
        case .bilinear: return PILResample.bilinear(rgb, width: width, height: height, channels: 3, toWidth: size.w, toHeight: size.h)
        case .bicubic: return PILResample.bicubic(rgb, width: width, height: height, channels: 3, toWidth: size.w, toHeight: size.h)
        }
    }

    /// HWC uint8 → CHW float32: ÷255, then (x − mean) ÷ std (two float32 roundings, as upstream).
    func normalize(_ rgb: [UInt8]) -> Tensor {
        let plane = size.h * size.w
        return Tensor.uninitialized([3, size.h, size.w]) { o in
            for c in 0..<3 {
                let mean = imageMean[c], std = imageStd[c]
                for i in 0..<plane { o[c * plane + i] = (Float(rgb[i * 3 + c]) / 255 - mean) / std }
            }
        }
    }

    // MARK: postprocessing

    /// `clip((raw·std + mean)·255, 0, 255)`, `[3, h, w]`.
    public func unnormalize(_ raw: Tensor) -> Tensor {
        scaled(raw, by: 255)
    }

    func scaled(_ raw: Tensor, by s: Float) -> Tensor {
        precondition(raw.rank == 3 && raw.shape[0] == 3, "raw prediction must be [3, h, w], got \(raw.shape)")
        let plane = raw.shape[1] * raw.shape[2]
        return Tensor.uninitialized(raw.shape) { o in
            raw.data.withUnsafeBufferPointer { r in
                for c in 0..<3 {
                    let mean = imageMean[c], std = imageStd[c]
                    for i in 0..<plane { o[c * plane + i] = min(max((r[c * plane + i] * std + mean) * s, 0), s) }
                }
            }
        }
    }

    /// The un-normalised query half as an image at the model's resolution (truncated to uint8).
    public func queryImage(_ raw: Tensor) -> RGBImage {
        let u = unnormalize(raw)
        let (h, w) = (raw.shape[1], raw.shape[2])
        var px = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 { for i in 0..<(h * w) { px[i * 3 + c] = UInt8(u.data[c * h * w + i]) } }
        return try! RGBImage(width: w, height: h, pixels: px)  // w, h > 0 from a [3, h, w] tensor
    }

    /// Foreground where the channel mean of the un-normalised prediction, resized (nearest)
    /// to `width`×`height`, is > 128.
    public func binaryMask(_ raw: Tensor, width: Int, height: Int) -> BinaryMask {
        let u = Ops.interpolateNearest(unnormalize(raw).reshaped([1, 3, raw.shape[1], raw.shape[2]]), size: Size2(height, width))
        let plane = width * height
        var bits = [UInt8](repeating: 0, count: plane)
        u.data.withUnsafeBufferPointer { p in
            for i in 0..<plane { bits[i] = (p[i] + p[plane + i] + p[2 * plane + i]) / 3 > Self.binaryThreshold ? 1 : 0 }
        }
        return try! BinaryMask(width: width, height: height, values: bits)  // sizes from a resized tensor
    }

    /// The class whose palette colour is nearest (squared distance, first on ties) to the
    /// un-normalised prediction resized to `width`×`height`: nearest (SegGPT) or bilinear then
    /// truncated to integers (Painter's ADE20k evaluation).
    public func classMap(_ raw: Tensor, numLabels: Int, width: Int, height: Int,
                         resample: Resample = .nearest) -> SegGPTClassMap {
        classMap(raw, palette: Self.palette(numLabels: numLabels), width: width, height: height, resample: resample)
    }

    /// As `classMap(_:numLabels:…)` with an explicit palette (index 0 = background).
    public func classMap(_ raw: Tensor, palette: [(r: UInt8, g: UInt8, b: UInt8)], width: Int, height: Int,
                         resample: Resample = .nearest) -> SegGPTClassMap {
        let u4 = unnormalize(raw).reshaped([1, 3, raw.shape[1], raw.shape[2]])
        var u: Tensor
        switch resample {
        case .nearest: u = Ops.interpolateNearest(u4, size: Size2(height, width))
        case .bilinear: u = Ops.interpolateBilinear(u4, size: Size2(height, width)); u = u.mapTruncated()
        case .bicubic: u = Ops.interpolateBicubic(u4, size: Size2(height, width)); u = u.mapTruncated()
        }
        let plane = width * height
        let pal = palette.map { (Float($0.r), Float($0.g), Float($0.b)) }
        var labels = [Int](repeating: 0, count: plane)
        u.data.withUnsafeBufferPointer { p in
            for i in 0..<plane {
                let (r, g, b) = (p[i], p[plane + i], p[2 * plane + i])
                var best = 0, bestD = Float.infinity
                for (k, c) in pal.enumerated() {
                    let dr = r - c.0, dg = g - c.1, db = b - c.2
                    let d = dr * dr + dg * dg + db * db
                    if d < bestD { bestD = d; best = k }
                }
                labels[i] = best
            }
        }
        return try! SegGPTClassMap(width: width, height: height, labels: labels, numLabels: palette.count - 1)
    }

    /// Painter depth in metres, `[height, width]`.
    public func depthMetres(_ raw: Tensor, width: Int, height: Int) -> Tensor {
        let d = scaled(raw, by: 10000).reshaped([1, 3, raw.shape[1], raw.shape[2]])
        let r = Ops.interpolateBilinear(d, size: Size2(height, width))
        let plane = width * height
        return Tensor.uninitialized([height, width]) { o in
            r.data.withUnsafeBufferPointer { p in
                for i in 0..<plane { o[i] = (p[i] + p[plane + i] + p[2 * plane + i]) / 3 / 1000 }
            }
        }
    }

    /// A depth map in metres as Painter's grey-level prompt target: grey = m / 10 · 255
    /// (painter_inference_depth.py: png / 10000 · 255 with NYUv2 PNGs in mm), rounded.
    public static func depthTarget(metres: [Float], width: Int, height: Int) throws -> RGBImage {
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for (i, m) in metres.enumerated() where i < width * height {
            let g = UInt8(min(max((m / 10 * 255).rounded(), 0), 255))
            px[3 * i] = g; px[3 * i + 1] = g; px[3 * i + 2] = g
        }
        return try RGBImage(width: width, height: height, pixels: px)
    }

    /// Painter restoration output (denoised / derained / enhanced image) at `width`×`height`.
    public func restoredImage(_ raw: Tensor, width: Int, height: Int) -> RGBImage {
        precondition(raw.rank == 3 && raw.shape[0] == 3, "raw prediction must be [3, h, w], got \(raw.shape)")
        let plane0 = raw.shape[1] * raw.shape[2]
        var lin = raw
        lin.data.withUnsafeMutableBufferPointer { p in
            for c in 0..<3 { for i in 0..<plane0 { p[c * plane0 + i] = p[c * plane0 + i] * imageStd[c] + imageMean[c] } }
        }
        let r = Ops.interpolateBicubic(lin.reshaped([1, 3, raw.shape[1], raw.shape[2]]), size: Size2(height, width))
        let plane = width * height
        var px = [UInt8](repeating: 0, count: plane * 3)
        r.data.withUnsafeBufferPointer { p in
            for c in 0..<3 { for i in 0..<plane { px[i * 3 + c] = UInt8(min(max(p[c * plane + i], 0), 1) * 255) } }
        }
        return try! RGBImage(width: width, height: height, pixels: px)
    }
}

extension Tensor {
    /// `.int()`: truncation toward zero (values here are non-negative).
    func mapTruncated() -> Tensor { Tensor(shape: shape, data: data.map { $0.rounded(.towardZero) }) }
}
