import CLIP
import Checkpoint
import Foundation
import Imaging
import NN
import Tensor

/// The image half of CLIPSeg, as the image-encoder service runs it: CLIP's vision tower
/// plus `visual_projection` (for visual prompts).
/// ref: modeling_clipseg.py CLIPSegModel.get_image_features; CLIPSegForImageSegmentation.forward step 1
public struct CLIPSegVisionEncoder: Sendable {
    public let visionModel: CLIPVisionTransformer
    let visualProjection: Linear
    public let config: CLIPSegConfig

    /// `vb` is the checkpoint root: reads `clip.vision_model.*` and `clip.visual_projection.weight`.
    public init(_ vb: WeightLoader, config c: CLIPSegConfig) throws {
        config = c
        visionModel = try CLIPVisionTransformer(vb.pp("clip").pp("vision_model"), config: c.vision)
        visualProjection = try Linear(vb.pp("clip").pp("visual_projection"), in: c.vision.hiddenSize,
                                      out: c.projectionDim, bias: false)
    }

    /// Activations at `extract_layers` (`[B, 1 + gh·gw, D]` each, shallowest first). Stops
    /// after the deepest extract layer: the decoder needs nothing later.
    public func activations(_ pixelValues: Tensor) throws(CLIPError) -> [Tensor] {
        try visionModel(pixelValues, collect: config.extractLayers, pooled: false).hiddenStates
    }

    /// The full tower: activations, pooled output (`[B, D]`, post_layernorm'd class token)
    /// and image features (`visual_projection(pooled)`, `[B, projection_dim]`).
    public func callAsFunction(_ pixelValues: Tensor) throws(CLIPError)
        -> (activations: [Tensor], pooledOutput: Tensor, imageFeatures: Tensor) {
        let out = try visionModel(pixelValues, collect: config.extractLayers, pooled: true)
        return (out.hiddenStates, out.pooledOutput!, visualProjection(out.pooledOutput!))
    }

    /// `get_image_features(...).pooler_output`: the conditional embedding of a visual prompt.
    public func imageFeatures(_ pixelValues: Tensor) throws(CLIPError) -> Tensor {
        try self(pixelValues).imageFeatures
    }

    /// Preprocesses `image` and computes what the decoder needs.
    public func embed(_ image: RGBImage) throws(CLIPError) -> CLIPSegImageEmbedding {
        let s = config.inputSize, p = config.vision.patchSize
        let acts = try activations(CLIPSegProcessor.preprocess(image, size: s))
        return CLIPSegImageEmbedding(activations: acts, extractLayers: config.extractLayers,
                                     gridHeight: s / p, gridWidth: s / p,
                                     originalHeight: image.height, originalWidth: image.width,
                                     inputHeight: s, inputWidth: s)
    }
}

/// The text half of CLIPSeg's conditioning: CLIP's text tower + `text_projection`, i.e.
/// CLIPTextModelWithProjection under the `clip.` prefix.
/// ref: modeling_clipseg.py CLIPSegModel.get_text_features
public struct CLIPSegTextEncoder: Sendable {
    public let model: CLIPTextModelWithProjection
    public var textModel: CLIPTextTransformer { model.textModel }

    /// `vb` is the checkpoint root: reads `clip.text_model.*` and `clip.text_projection.weight`.
    public init(_ vb: WeightLoader, config c: CLIPSegConfig) throws {
        model = try CLIPTextModelWithProjection(vb.pp("clip"), config: c.text)
    }

    /// `[B, projection_dim]` conditional embeddings for B rows of token ids (CLIP BPE ids
    /// with start/end-of-text, right-padded to one length). A row without the end token is
    /// an error when `eos_token_id != 2` (see `CLIPTextTransformer.pooledIndex`).
    public func textFeatures(_ ids: [[Int]]) throws(CLIPError) -> Tensor {
        try model(ids).textEmbeds
    }
}

/// How a segmentation is conditioned. ref: CLIPSegForImageSegmentation.get_conditional_embeddings
public enum CLIPSegConditioning: Sendable {
    /// Token ids, one row per query image.
    case text([[Int]])
    /// Preprocessed prompt images `[B, 3, H, W]` (`conditional_pixel_values`).
    case visualPrompt(Tensor)
    /// Precomputed `[B, projection_dim]` embeddings.
    case embeddings(Tensor)
}

/// transformers' `CLIPSegForImageSegmentation`, split into the three parts Segflow's
/// services run separately. Built from one checkpoint with the upstream names
/// (`clip.*`, `decoder.*`); loading is strict: a missing, mis-shaped or unused tensor is
/// an error naming it.
public struct CLIPSegForImageSegmentation: Sendable {
    public enum Part: Sendable, CaseIterable { case vision, text, decoder }

    public let config: CLIPSegConfig
    public let visionEncoder: CLIPSegVisionEncoder?
    public let textEncoder: CLIPSegTextEncoder?
    public let decoder: CLIPSegDecoderHead?

    /// Builds `parts` from `stateDict`. Tensors of the parts not requested are skipped by
    /// prefix (a decoder-only service need not hold the vision tower); anything else left
    /// over fails `WeightLoader.finish()`.
    public init(stateDict: StateDict, config: CLIPSegConfig, parts: Set<Part> = Set(Part.allCases)) throws {
        let vb = try WeightLoader(stateDict)
        self.config = config
        visionEncoder = parts.contains(.vision) ? try CLIPSegVisionEncoder(vb, config: config) : nil
        textEncoder = parts.contains(.text) ? try CLIPSegTextEncoder(vb, config: config) : nil
        decoder = parts.contains(.decoder) ? try CLIPSegDecoderHead(vb.pp("decoder"), config: config) : nil
        // Used only by CLIPSegModel.forward's contrastive logits, never for segmentation.
        vb.skip("clip.logit_scale")
        var skipped: [String] = []
        if !parts.contains(.vision) { skipped += ["clip.vision_model.", "clip.visual_projection."] }
        if !parts.contains(.text) { skipped += ["clip.text_model.", "clip.text_projection."] }
        if !parts.contains(.decoder) { skipped += ["decoder."] }
        for name in vb.unusedTensors where skipped.contains(where: { name.hasPrefix($0) }) { vb.skip(name) }
        try vb.finish()
    }

    /// `[B, projection_dim]` conditional embeddings. ref: get_conditional_embeddings
    public func conditionalEmbeddings(_ conditioning: CLIPSegConditioning) throws -> Tensor {
        switch conditioning {
        case let .text(ids):
            guard let textEncoder else { throw CLIPSegModelError.partNotLoaded(.text) }
            return try textEncoder.textFeatures(ids)
        case let .visualPrompt(pixels):
            guard let visionEncoder else { throw CLIPSegModelError.partNotLoaded(.vision) }
            return try visionEncoder.imageFeatures(pixels)
        case let .embeddings(e):
            return e
        }
    }

    /// Logits `[B, H, W]` for query images `[B or 1, 3, H, W]`, as CLIPSegForImageSegmentation.forward.
    public func callAsFunction(pixelValues: Tensor, conditioning: CLIPSegConditioning) throws -> Tensor {
        guard let visionEncoder else { throw CLIPSegModelError.partNotLoaded(.vision) }
        guard let decoder else { throw CLIPSegModelError.partNotLoaded(.decoder) }
        let acts = try visionEncoder.activations(pixelValues)
        let cond = try conditionalEmbeddings(conditioning)
        let p = config.vision.patchSize
        return try decoder(activations: acts, conditionalEmbeddings: cond,
                           gridHeight: pixelValues.shape[2] / p, gridWidth: pixelValues.shape[3] / p)
    }
}

public enum CLIPSegModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case partNotLoaded(CLIPSegForImageSegmentation.Part)
    public var description: String {
        switch self {
        case let .partNotLoaded(p): "the CLIPSeg \(p) part was not loaded"
        }
    }
}
