import Foundation
import Imaging
import Tensor

/// One-shot prompts for CLIPSeg: an example image with its mask applied becomes
/// `conditional_pixel_values`, which CLIP's vision tower + `visual_projection` turn into the
/// conditional embedding (`CLIPSegVisionEncoder.imageFeatures`).
///
/// transformers' `CLIPSegForImageSegmentation` takes already-engineered pixels; how the mask
/// is applied is the CLIPSeg authors' choice, ported here. The paper's visual-prompt ablation
/// (Lüddecke & Ecker, "Image Segmentation Using Text and Image Prompts", CVPR 2022, Table 5)
/// found cropping to the object, darkening the background to 10 % and blurring it the best
/// combination, and rd64-uni-refined (= CIDAS/clipseg-rd64-refined) was trained with exactly
/// that prompt form, so it is the default (`.cropBlurHighlight`) and, for now, the only one:
/// a prompt engineered differently from training is out of distribution for the decoder.
///
/// Steps, all at the model's input size S (352 for rd64-refined):
/// 1. the image preprocessed like every CLIPSeg image (`CLIPSegProcessor.preprocess`:
///    PIL bilinear to S×S, ImageNet mean/std) — the blend works in that normalised space, as
///    upstream's does (its datasets normalise before blending), so "dark" means "towards the
///    mean colour";
/// 2. the mask (nonzero = foreground) resized nearest to S×S (torch's rule);
/// 3. `image·mask + 0.1 · blur(image) · (1 − mask)`, blur = cv2.GaussianBlur 15×15, σ 3,
///    BORDER_REFLECT_101;
/// 4. crop to the mask's bounding box widened by 10 % of its extent on each side (clamped),
///    zero-pad to a centred square, resize nearest back to S×S.
///
/// ref: timojl/clipseg datasets/utils.py blend_image_segmentation mode 'crop_blur_highlight352'
///      → evaluation_utils.py img_preprocess(blur=3, bg_fac=0.1, center_context=0.1,
///      image_size=352), object_crop / crop_mask / pad_to_square; experiments/phrasecut.yaml
///      (rd64-uni-refined: mask text_and_crop_blur_highlight352).
/// Golden: Tests/Reference/make_clipseg_fixtures.py (the same steps in numpy).
public enum CLIPSegVisualPrompt {
    /// How the mask is applied (see the type's documentation).
    public struct Engineering: Sendable, Equatable {
        /// Gaussian kernel side (pixels at the model's input size) and σ.
        public var blurKernel: Int
        public var blurSigma: Double
        /// Background factor in normalised space (0.1 = darkened to 10 %).
        public var backgroundFactor: Float
        /// Crop context: the bounding box grows by this fraction of its extent per side; nil = no crop.
        public var cropContext: Double?

        public init(blurKernel: Int, blurSigma: Double, backgroundFactor: Float, cropContext: Double?) {
            self.blurKernel = blurKernel; self.blurSigma = blurSigma
            self.backgroundFactor = backgroundFactor; self.cropContext = cropContext
        }

        /// The paper's best variant and rd64-refined's training form ('crop_blur_highlight352').
        public static let cropBlurHighlight = Engineering(blurKernel: 15, blurSigma: 3, backgroundFactor: 0.1, cropContext: 0.1)
    }

    public enum Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        case sizeMismatch(image: [Int], mask: [Int])
        case emptyMask(atInputSize: Int?)
        /// Example `index` (0-based, in the order given) failed with `reason`.
        indirect case example(index: Int, reason: Error)

        public var description: String {
            switch self {
            case let .sizeMismatch(i, m): "prompt mask is \(m[0])x\(m[1]), its image is \(i[0])x\(i[1]); they must be the same size"
            case .emptyMask(nil): "prompt mask has no foreground (nonzero) pixel"
            case let .emptyMask(s?): "prompt mask's foreground vanishes when resized to the model's \(s)x\(s) input; use a larger object"
            case let .example(i, reason): "example \(i + 1): \(reason)"
            }
        }
    }

    /// `[1, 3, size, size]` conditional pixel values for one example. `mask`: nonzero = foreground.
    public static func pixelValues(image: RGBImage, mask: GrayImage, size: Int,
                                   engineering e: Engineering = .cropBlurHighlight) throws(Error) -> Tensor {
        guard mask.width == image.width, mask.height == image.height else {
            throw .sizeMismatch(image: [image.width, image.height], mask: [mask.width, mask.height])
        }
        guard mask.pixels.contains(where: { $0 != 0 }) else { throw .emptyMask(atInputSize: nil) }
        let plane = size * size
        let pixels = CLIPSegProcessor.preprocess(image, size: size).data
        // ref: torch nearest (upsample_nearest2d): src = min(floor(dst · (in / out)), in − 1), in float32.
        let ys = nearestIndices(from: mask.height, to: size), xs = nearestIndices(from: mask.width, to: size)
        var m = [Float](repeating: 0, count: plane)
        for y in 0..<size { for x in 0..<size where mask.pixels[ys[y] * mask.width + xs[x]] != 0 { m[y * size + x] = 1 } }
        guard m.contains(1) else { throw .emptyMask(atInputSize: size) }

        // ref: img_preprocess: img_inp = img*mask + bg_fac * img_bl * (1-mask)
        let blurred = gaussianBlur(pixels, channels: 3, height: size, width: size, kernel: e.blurKernel, sigma: e.blurSigma)
        var blended = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for i in 0..<plane {
                let k = c * plane + i
                blended[k] = pixels[k] * m[i] + e.backgroundFactor * blurred[k] * (1 - m[i])
            }
        }
        guard let context = e.cropContext else { return Tensor(shape: [1, 3, size, size], data: blended) }
        return Tensor(shape: [1, 3, size, size], data: objectCrop(blended, mask: m, size: size, context: context))
    }

    /// ref: evaluation_utils.py object_crop(context) = crop_mask + pad_to_square + F.interpolate (nearest).
    static func objectCrop(_ image: [Float], mask m: [Float], size: Int, context: Double) -> [Float] {
        var x0 = size, x1 = 0, y0 = size, y1 = 0   // half-open box of the foreground
        for y in 0..<size {
            for x in 0..<size where m[y * size + x] != 0 {
                x0 = min(x0, x); x1 = max(x1, x + 1); y0 = min(y0, y); y1 = max(y1, y + 1)
            }
        }
        // Each axis widens by `context` × its own extent, in doubles, truncated like Python's int().
        let (xe, ye) = (Double(x1 - x0), Double(y1 - y0))
        let cx0 = Int(max(0, Double(x0) - context * xe)), cx1 = Int(min(Double(size), Double(x1) + context * xe))
        let cy0 = Int(max(0, Double(y0) - context * ye)), cy1 = Int(min(Double(size), Double(y1) + context * ye))
        let (h, w) = (cy1 - cy0, cx1 - cx0)
        let side = max(h, w)
        // pad_to_square: zeros, the smaller side centred (the odd pixel goes right/bottom).
        let (oy, ox) = ((side - h) / 2, (side - w) / 2)
        let src = nearestIndices(from: side, to: size)
        let plane = size * size
        var out = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for y in 0..<size {
                let py = src[y] - oy
                guard py >= 0, py < h else { continue }
                for x in 0..<size {
                    let px = src[x] - ox
                    guard px >= 0, px < w else { continue }
                    out[c * plane + y * size + x] = image[c * plane + (cy0 + py) * size + cx0 + px]
                }
            }
        }
        return out
    }

    /// torch's `nearest` source indices for a resize `n` → `out`.
    public static func nearestIndices(from n: Int, to out: Int) -> [Int] {
        if n == out { return Array(0..<n) }
        let scale = Float(n) / Float(out)
        return (0..<out).map { min(Int((Float($0) * scale).rounded(.down)), n - 1) }
    }

    /// cv2.getGaussianKernel(k, σ) for σ > 0: computed in double, normalised, stored as float.
    static func gaussianKernel(_ k: Int, sigma: Double) -> [Float] {
        let mid = Double(k - 1) / 2
        let w = (0..<k).map { exp(-(Double($0) - mid) * (Double($0) - mid) / (2 * sigma * sigma)) }
        let sum = w.reduce(0, +)
        return w.map { Float($0 / sum) }
    }

    /// BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`) index.
    public static func reflect101(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        var i = i
        while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
        return i
    }

    /// cv2.GaussianBlur on a float32 planar image: separable, rows then columns, float32 sums
    /// in tap order. ref: opencv imgproc smooth.dispatch.cpp (createGaussianKernels, sepFilter2D)
    static func gaussianBlur(_ src: [Float], channels: Int, height h: Int, width w: Int, kernel: Int, sigma: Double) -> [Float] {
        let k = gaussianKernel(kernel, sigma: sigma), r = kernel / 2
        let xIndex = (0..<w).map { x in (0..<kernel).map { reflect101(x + $0 - r, w) } }
        let yIndex = (0..<h).map { y in (0..<kernel).map { reflect101(y + $0 - r, h) } }
        var rows = [Float](repeating: 0, count: src.count), out = rows
        for c in 0..<channels {
            let base = c * h * w
            for y in 0..<h {
                for x in 0..<w {
                    var s: Float = 0
                    for t in 0..<kernel { s += k[t] * src[base + y * w + xIndex[x][t]] }
                    rows[base + y * w + x] = s
                }
            }
            for y in 0..<h {
                for x in 0..<w {
                    var s: Float = 0
                    for t in 0..<kernel { s += k[t] * rows[base + yIndex[y][t] * w + x] }
                    out[base + y * w + x] = s
                }
            }
        }
        return out
    }
}

extension CLIPSegVisionEncoder {
    /// The conditional embedding `[1, projection_dim]` of one or more examples (image + mask,
    /// nonzero = foreground): each is engineered (`CLIPSegVisualPrompt`) and encoded by the
    /// vision tower + `visual_projection`; several are averaged (the mean of their projected
    /// embeddings, the space text and visual prompts share; training interpolates text and
    /// visual conditional vectors the same way. ref: timojl/clipseg training.py, `mix`).
    public func visualPromptEmbedding(_ examples: [(image: RGBImage, mask: GrayImage)],
                                      engineering: CLIPSegVisualPrompt.Engineering = .cropBlurHighlight) throws -> Tensor {
        precondition(!examples.isEmpty, "at least one example")
        var sum = [Float](repeating: 0, count: config.projectionDim)
        for (i, e) in examples.enumerated() {
            let pixels: Tensor
            do {
                pixels = try CLIPSegVisualPrompt.pixelValues(image: e.image, mask: e.mask, size: config.inputSize, engineering: engineering)
            } catch { throw CLIPSegVisualPrompt.Error.example(index: i, reason: error) }
            let f = try imageFeatures(pixels).data
            for i in sum.indices { sum[i] += f[i] }
        }
        let n = Float(examples.count)
        return Tensor(shape: [1, sum.count], data: sum.map { $0 / n })
    }
}
