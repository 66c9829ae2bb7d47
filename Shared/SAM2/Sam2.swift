import Checkpoint
import Foundation
import Imaging
import NN
import SAM
import Tensor

/// What one SAM 2 image-encoder run produces: the decoder's three feature levels.
public struct Sam2ImageEmbedding: Sendable, Equatable {
    /// [1, C, g, g]: the coarsest FPN level as the neck made it. Image mode adds
    /// `no_memory_embedding` when decoding; video conditions it on the object's memory.
    public var embedding: Tensor
    /// [1, C/8, 4g, 4g] and [1, C/4, 2g, 2g]: the finest two levels after `conv_s0` / `conv_s1`.
    public var highRes0: Tensor, highRes1: Tensor
    public var originalSize: (height: Int, width: Int)

    public init(embedding: Tensor, highRes0: Tensor, highRes1: Tensor, originalSize: (height: Int, width: Int)) {
        self.embedding = embedding; self.highRes0 = highRes0; self.highRes1 = highRes1; self.originalSize = originalSize
    }

    public static func == (a: Sam2ImageEmbedding, b: Sam2ImageEmbedding) -> Bool {
        a.embedding == b.embedding && a.highRes0 == b.highRes0 && a.highRes1 == b.highRes1 && a.originalSize == b.originalSize
    }
}

/// Masks for one prompt.
public struct Sam2Prediction: Sendable {
    /// [M, 4g, 4g] low-resolution logits (a follow-up prompt's mask input).
    public var lowResLogits: Tensor
    public var iouPredictions: [Float]
    /// > 0: the model thinks the object is in the image.
    public var objectScoreLogit: Float
    /// [M, H, W] logits at the original size; a pixel is in the mask when its logit > 0.
    public var logits: Tensor
}

/// SAM 2 in image mode: Hiera + FPN neck → prompt encoder → mask decoder with high-res skips.
/// ref: transformers/models/sam2/modeling_sam2.py Sam2Model; sam2/sam2_image_predictor.py SAM2ImagePredictor
public final class Sam2: Sendable {
    /// ref: sam2_base.py / transformers `Sam2Processor` (logit threshold 0)
    public static let maskThreshold: Float = 0
    /// ImageNet mean / std on 0…1 values. ref: Sam2ImageProcessor (IMAGENET_DEFAULT_MEAN/STD); sam2/utils/transforms.py
    public static let imageMean: [Float] = [0.485, 0.456, 0.406], imageStd: [Float] = [0.229, 0.224, 0.225]

    public let config: Sam2Config
    public let names: Sam2WeightNames
    let backbone: Sam2HieraDet
    let neck: Sam2VisionNeck
    public let promptEncoder: PromptEncoder
    public let maskDecoder: Sam2MaskDecoder
    public let noMemoryEmbedding: Tensor  // [C]
    let densePE: Tensor             // [1, C, g, g]

    /// Builds from a loader over a state dict in either layout; `finish()` is the caller's.
    public init(_ vb: WeightLoader, config c: Sam2Config, names: Sam2WeightNames) throws {
        try c.validate(path: "config")
        config = c; self.names = names
        let t = names == .transformers
        let enc = t ? vb.pp("vision_encoder") : vb.pp("image_encoder")
        backbone = try Sam2HieraDet(enc.pp(t ? "backbone" : "trunk"), config: c.hiera, names: names)
        neck = try Sam2VisionNeck(enc.pp("neck"), config: c, names: names)
        let g = c.embeddingGrid, h = c.promptHiddenSize
        promptEncoder = try PromptEncoder(sam2: vb.pp(t ? "prompt_encoder" : "sam_prompt_encoder"), transformersNames: t, embedDim: h,
                                          imageEmbeddingSize: g, inputImageSize: c.imageSize, maskInChans: c.maskInputChannels,
                                          layerNormEps: c.promptLayerNormEps)
        maskDecoder = try Sam2MaskDecoder(vb.pp(t ? "mask_decoder" : "sam_mask_decoder"), config: c, names: names)
        noMemoryEmbedding = try vb.tensor(t ? "no_memory_embedding" : "no_mem_embed", shape: [1, 1, h]).reshaped([h])
        if t {
            // transformers keeps the image-wide PE's gaussian matrix as its own buffer.
            let gaussian = try vb.pp("shared_image_embedding").tensor("positional_embedding", shape: [2, h / 2])
            // ref: modeling_sam2.py Sam2Model.get_image_wide_positional_embeddings
            densePE = PromptEncoder.densePositionalEncoding(gaussian: gaussian, grid: g)
        } else {
            densePE = promptEncoder.densePositionalEncoding()
        }
    }

    /// The image-wide positional encoding the decoder adds to the image tokens: [1, C, g, g].
    public var imagePositionalEncoding: Tensor { densePE }

    // MARK: - Image side

    /// Resize to S×S (no aspect preservation, as upstream), ÷255, ImageNet mean/std: [1, 3, S, S].
    /// ref: Sam2ImageProcessor (torchvision bilinear, antialias, on uint8); sam2/utils/transforms.py SAM2Transforms
    public func preprocess(rgb: [UInt8], width: Int, height: Int) throws -> Tensor {
        guard width > 0, height > 0, rgb.count == width * height * 3 else { throw SamError.emptyImage(width: width, height: height) }
        let s = config.imageSize
        let resized = PILResample.bilinear(rgb, width: width, height: height, channels: 3, toWidth: s, toHeight: s)
        var data = [Float](repeating: 0, count: 3 * s * s)
        for i in 0..<(s * s) {
            for ch in 0..<3 {
                // Two float32 roundings, as the processor: rescale, then normalise.
                let v = Float(resized[i * 3 + ch]) * (1 / 255 as Float)
                data[ch * s * s + i] = (v - Self.imageMean[ch]) / Self.imageStd[ch]
            }
        }
        return Tensor(shape: [1, 3, s, s], data: data)
    }

    /// The backbone's stage outputs and the neck's levels, for tests and tools.
    public func features(_ pixels: Tensor) -> (stages: [Tensor], levels: [Tensor]) {
        let stages = backbone(pixels)
        return (stages, neck(stages))
    }

    /// pixels [1, 3, S, S] → the decoder's features. ref: Sam2Model.get_image_embeddings / get_image_features
    public func embed(pixels: Tensor, originalSize: (height: Int, width: Int)) -> Sam2ImageEmbedding {
        let levels = features(pixels).levels
        func nchw(_ x: Tensor) -> Tensor { Ops.permute(x, [0, 3, 1, 2]) }
        return Sam2ImageEmbedding(embedding: nchw(levels[2]), highRes0: nchw(maskDecoder.convS0(levels[0])),
                                  highRes1: nchw(maskDecoder.convS1(levels[1])), originalSize: originalSize)
    }

    public func embed(rgb: [UInt8], width: Int, height: Int) throws -> Sam2ImageEmbedding {
        embed(pixels: try preprocess(rgb: rgb, width: width, height: height), originalSize: (height, width))
    }

    // MARK: - Prompt side

    /// Checks a prompt against its image (coordinates in original pixels).
    public func validate(_ prompt: SamPrompt, for emb: Sam2ImageEmbedding) throws {
        try prompt.validate(height: emb.originalSize.height, width: emb.originalSize.width, maskSide: config.embeddingGrid * 4)
        let expected = [1, config.promptHiddenSize, config.embeddingGrid, config.embeddingGrid]
        guard emb.embedding.shape == expected else { throw SamError.embeddingShape(expected: expected, actual: emb.embedding.shape) }
    }

    /// Original pixel coordinates → the model's S×S input frame (each axis scaled on its own).
    /// ref: processing_sam2.py Sam2Processor._normalize_coordinates
    func transform(_ x: Float, _ y: Float, _ emb: Sam2ImageEmbedding) -> (Float, Float) {
        let s = Double(config.imageSize)
        return (x * Float(s / Double(emb.originalSize.width)), y * Float(s / Double(emb.originalSize.height)))
    }

    public func predict(_ emb: Sam2ImageEmbedding, _ prompt: SamPrompt) throws -> Sam2Prediction {
        try predict(emb, [prompt])[0]
    }

    /// Decodes prompts against one embedding; prompts of the same structure run as one batch.
    public func predict(_ emb: Sam2ImageEmbedding, _ prompts: [SamPrompt]) throws -> [Sam2Prediction] {
        for p in prompts { try validate(p, for: emb) }
        var results = [Sam2Prediction?](repeating: nil, count: prompts.count)
        var groups: [String: [Int]] = [:]
        for (i, p) in prompts.enumerated() {
            groups["\(p.points.count)|\(p.box != nil)|\(p.maskInput != nil)|\(p.multimask)", default: []].append(i)
        }
        for indices in groups.values.sorted(by: { $0[0] < $1[0] }) {
            for (i, r) in zip(indices, decodeBatch(emb, indices.map { prompts[$0] })) { results[i] = r }
        }
        return results.map { $0! }
    }

    /// Sparse prompt embedding of one prompt in the model frame: [N, C].
    public func sparseEmbedding(_ p: SamPrompt, _ emb: Sam2ImageEmbedding) -> Tensor {
        var pts = p.points.map { pt -> (x: Float, y: Float, label: Int) in
            let (x, y) = transform(pt.x, pt.y, emb); return (x, y, pt.label)
        }
        let box = p.box.map { b -> (Float, Float, Float, Float) in
            let (x0, y0) = transform(b.x0, b.y0, emb), (x1, y1) = transform(b.x1, b.y1, emb)
            return (x0, y0, x1, y1)
        }
        // No points and no box: upstream embeds one empty point (label −1). ref: Sam2Model.forward
        if pts.isEmpty && box == nil { pts = [(0, 0, -1)] }
        return promptEncoder.sparseEmbedding(points: pts, box: box)
    }

    /// The image-mode decoder input: the coarsest level plus `no_memory_embedding`.
    /// ref: Sam2Model.get_image_embeddings (`feature_maps[-1] + self.no_memory_embedding`)
    public func imageModeEmbedding(_ emb: Sam2ImageEmbedding) -> Tensor {
        let c = config.promptHiddenSize
        return Ops.add(emb.embedding, noMemoryEmbedding.reshaped([1, c, 1, 1]))
    }

    func decodeBatch(_ emb: Sam2ImageEmbedding, _ prompts: [SamPrompt]) -> [Sam2Prediction] {
        let sparse = Ops.concat(prompts.map { p -> Tensor in
            let s = sparseEmbedding(p, emb); return s.reshaped([1] + s.shape)
        }, axis: 0)
        let g4 = config.embeddingGrid * 4
        let dense = prompts[0].maskInput != nil
            ? Ops.concat(prompts.map { promptEncoder.denseEmbedding(mask: $0.maskInput!.reshaped([1, 1, g4, g4])) }, axis: 0)
            : promptEncoder.denseEmbedding(mask: nil)
        let out = maskDecoder(imageEmbedding: imageModeEmbedding(emb), imagePE: densePE, sparse: sparse, dense: dense,
                              highRes0: emb.highRes0, highRes1: emb.highRes1, multimask: prompts[0].multimask)
        let m = out.masks.shape[1]
        let full = postprocess(out.masks, emb)
        return (0..<prompts.count).map { i in
            Sam2Prediction(lowResLogits: Ops.slice(out.masks, axis: 0, start: i, end: i + 1).reshaped([m, g4, g4]),
                           iouPredictions: Array(out.iou.data[(i * m)..<((i + 1) * m)]),
                           objectScoreLogit: out.objectScore[i],
                           logits: Ops.slice(full, axis: 0, start: i, end: i + 1)
                               .reshaped([m, emb.originalSize.height, emb.originalSize.width]))
        }
    }

    /// Low-res logits → original size (bilinear, align_corners=False). ref: Sam2ImageProcessor.post_process_masks
    public func postprocess(_ lowRes: Tensor, _ emb: Sam2ImageEmbedding) -> Tensor {
        Ops.interpolateBilinear(lowRes, size: Size2(emb.originalSize.height, emb.originalSize.width))
    }
}
