import Imaging
import Messaging
import Tensor

/// One registered example: an image and its mask (binary, or class indices when
/// `numLabels` > 0), decoded and checked.
public struct InContextExample: Sendable {
    public var image: RGBImage
    /// Grey levels: nonzero = foreground for binary masks, else the class index
    /// (0 background, 1…numLabels classes).
    public var mask: GrayImage
    /// The mask as decoded (image-valued targets: Painter depth or a clean image).
    public var maskRGB: RGBImage
    public var numLabels: Int

    public init(image: RGBImage, mask: GrayImage, maskRGB: RGBImage, numLabels: Int) {
        self.image = image; self.mask = mask; self.maskRGB = maskRGB; self.numLabels = numLabels
    }

    /// Decodes a registered pair: the image (PNG/JPEG/WebP, pixel limit), the mask (PNG,
    /// same size, the grey level / red channel is the value; class indices below
    /// `numLabels`). Errors carry stable codes: INVALID_IMAGE, IMAGE_TOO_LARGE,
    /// SHAPE_MISMATCH, INVALID_PROMPT.
    public static func decode(_ pair: PromptPair, maxPixels: Int) throws(ServingError) -> InContextExample {
        let image: RGBImage, maskRGB: RGBImage
        do { image = try ImageDecoder.decodeRGB(pair.image, options: .init(maxPixels: maxPixels)) } catch {
            if case .tooManyPixels = error { throw ServingError(.imageTooLarge, "prompt \(pair.promptID) image: \(error)") }
            throw ServingError(.invalidImage, "prompt \(pair.promptID) image: \(error)")
        }
        do { maskRGB = try ImageDecoder.decodeRGB(pair.mask, options: .init(maxPixels: maxPixels)) } catch {
            throw ServingError(.invalidPrompt, "prompt \(pair.promptID) mask: \(error)")
        }
        guard maskRGB.width == image.width, maskRGB.height == image.height else {
            throw ServingError(.shapeMismatch, "prompt \(pair.promptID): mask is \(maskRGB.width)x\(maskRGB.height), image is \(image.width)x\(image.height)")
        }
        let values = stride(from: 0, to: maskRGB.pixels.count, by: 3).map { maskRGB.pixels[$0] }
        let labels = Int(pair.numLabels)
        if labels > 0, let bad = values.first(where: { Int($0) > labels }) {
            throw ServingError(.invalidPrompt, "prompt \(pair.promptID): mask value \(bad) is not a class index 0…\(labels) (num_labels \(labels))")
        }
        do {
            return InContextExample(image: image, mask: try GrayImage(width: image.width, height: image.height, pixels: values),
                                    maskRGB: maskRGB, numLabels: labels)
        } catch { throw ServingError(.internal, "\(error)") }
    }
}

/// What an in-context model returns for one query.
public struct InContextAnswer: Sendable {
    /// Binary answers: one mask; class maps: one mask per class present (`label` set,
    /// background 0 omitted); image outputs (depth, restore): none.
    public var masks: [MaskResult.Mask]
    /// The raw query-half output `[3, h, w]` (the model's normalised space); empty (`[0]`)
    /// for example-encoder models (CLIPSeg one-shot), which refuse `return_raw`.
    public var raw: Tensor
    /// Image outputs (Painter depth as grey levels, restored images) at the query's size.
    public var image: RGBImage?
    /// Class maps: the class index per pixel at the query's size.
    public var classMap: GrayImage?
    public var timingsMs: [String: Double]

    public init(masks: [MaskResult.Mask], raw: Tensor, image: RGBImage? = nil, classMap: GrayImage? = nil, timingsMs: [String: Double]) {
        self.masks = masks; self.raw = raw; self.image = image; self.classMap = classMap; self.timingsMs = timingsMs
    }
}

/// A model whose prompt is examples (image + mask) rather than points or text: it
/// answers whole in the image-encoder (SegGPT, Painter).
public protocol InContextSegmenter: Sendable {
    /// Tasks it accepts (first = default).
    var tasks: [String] { get }
    func segment(query: RGBImage, examples: [InContextExample], request: InContextRequest) throws(ServingError) -> InContextAnswer
}
