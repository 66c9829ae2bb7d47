import Checkpoint
import Foundation
import NN
import Tensor

// transformers' CLIP vision tower (also the `clip.vision_model` of CLIPSeg, whose
// CLIPSegVision* classes are copies of these), weights bound by the HF state-dict names;
// the encoder blocks are the ones the text tower uses (CLIPEncoder.swift), without a mask.
// ref: transformers/models/clip/modeling_clip.py (5.x)

/// Patch embedding (conv without bias) + class token + position embeddings, the latter
/// bicubically resized from the trained grid to the input's grid.
/// ref: modeling_clip.py CLIPVisionEmbeddings
public struct CLIPVisionEmbeddings: Sendable {
    public let classEmbedding: Tensor        // [D]
    public let patchEmbedding: Conv2d        // [D, C, p, p], no bias
    public let positionEmbedding: Embedding  // [1 + g², D]
    public let patchSize: Int
    let hidden: Int, trainedGrid: Int

    public init(_ vb: WeightLoader, config c: CLIPVisionConfig) throws(CheckpointError) {
        hidden = c.hiddenSize; patchSize = c.patchSize; trainedGrid = c.gridSize
        classEmbedding = try vb.tensor("class_embedding", shape: [c.hiddenSize])
        patchEmbedding = try Conv2d(vb.pp("patch_embedding"), in: c.numChannels, out: c.hiddenSize,
                                    kernel: c.patchSize, stride: c.patchSize, bias: false)
        positionEmbedding = try Embedding(vb.pp("position_embedding"), count: c.gridSize * c.gridSize + 1, dim: c.hiddenSize)
        // Pre-4.31 checkpoints stored the `position_ids` buffer (an arange); it is not a weight.
        vb.skip("position_ids")
    }

    /// Position embeddings for an input of `height`×`width` pixels: `[1, 1 + gh·gw, D]`.
    /// The stored table is used as is only when the grid matches and the input is square,
    /// exactly upstream's shortcut; otherwise the patch part is resized with bicubic
    /// (A = -0.75, align_corners=False) and the class row is kept.
    ///
    /// Upstream CLIP interpolates only with `interpolate_pos_encoding=True` (its default is
    /// False, which raises on any other input size); CLIPSeg always passes True. Here the
    /// table is always interpolated when needed: the same values wherever upstream accepts
    /// the input.
    /// ref: modeling_clip.py CLIPVisionEmbeddings.interpolate_pos_encoding, .forward
    public func interpolatedPositionEmbedding(height: Int, width: Int) -> Tensor {
        let table = positionEmbedding.weight
        let gh = height / patchSize, gw = width / patchSize
        let numPositions = table.shape[0] - 1
        if gh * gw == numPositions && height == width {
            return table.reshaped([1, numPositions + 1, hidden])
        }
        let cls = Ops.slice(table, axis: 0, start: 0, end: 1).reshaped([1, 1, hidden])
        // [g², D] → [1, g, g, D] → [1, D, g, g]
        let grid = Ops.permute(Ops.slice(table, axis: 0, start: 1)
            .reshaped([1, trainedGrid, trainedGrid, hidden]), [0, 3, 1, 2])
        let resized = Ops.interpolateBicubic(grid, size: Size2(gh, gw))
        let patches = Ops.permute(resized, [0, 2, 3, 1]).reshaped([1, gh * gw, hidden])
        return Ops.concat([cls, patches], axis: 1)
    }

    /// `[B, C, H, W]` → `[B, 1 + (H/p)·(W/p), D]`. ref: CLIPVisionEmbeddings.forward
    public func callAsFunction(_ pixelValues: Tensor) -> Tensor {
        let (b, h, w) = (pixelValues.shape[0], pixelValues.shape[2], pixelValues.shape[3])
        let patches = patchEmbedding(pixelValues)                      // [B, D, gh, gw]
        let n = patches.shape[2] * patches.shape[3]
        let tokens = Ops.transpose(patches.reshaped([b, hidden, n]), 1, 2) // flatten(2).transpose(1, 2)
        let cls = Ops.concat(Array(repeating: classEmbedding.reshaped([1, 1, hidden]), count: b), axis: 0)
        let embeddings = Ops.concat([cls, tokens], axis: 1)
        return embeddings + interpolatedPositionEmbedding(height: h, width: w)
    }
}

/// The `vision_model` of CLIPModel / CLIPVisionModel (and of CLIPSeg): embeddings →
/// pre_layrnorm → encoder layers (no attention mask); pooled output = post_layernorm of
/// the last layer's class token.
/// ref: modeling_clip.py CLIPVisionTransformer.forward (transformers 5 folds it into
///      CLIPVisionModel; state-dict names are unchanged)
public struct CLIPVisionTransformer: Sendable {
    public let config: CLIPVisionConfig
    public let embeddings: CLIPVisionEmbeddings
    public let preLayrnorm: LayerNorm
    public let encoder: CLIPEncoder
    public let postLayernorm: LayerNorm

    public struct Output: Sendable {
        /// The outputs of the 0-based encoder layers asked for in `collect`, in that order
        /// (`hidden_states[i + 1]` in transformers' numbering, where `hidden_states[0]` is
        /// the pre-layer-norm'd embedding).
        public var hiddenStates: [Tensor]
        /// `[B, 1 + gh·gw, D]` after the last encoder layer; nil when the run stopped early.
        public var lastHiddenState: Tensor?
        /// `[B, D]`; nil unless asked for.
        public var pooledOutput: Tensor?
    }

    /// `vb` is scoped at `vision_model` (`clip.vision_model` in CLIPSeg).
    public init(_ vb: WeightLoader, config c: CLIPVisionConfig) throws(CheckpointError) {
        config = c
        embeddings = try CLIPVisionEmbeddings(vb.pp("embeddings"), config: c)
        preLayrnorm = try LayerNorm(vb.pp("pre_layrnorm"), dim: c.hiddenSize, eps: c.layerNormEps)
        encoder = try CLIPEncoder(vb.pp("encoder"), config: c)
        postLayernorm = try LayerNorm(vb.pp("post_layernorm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    func validate(_ pixelValues: Tensor) throws(CLIPError) {
        let p = config.patchSize
        guard pixelValues.rank == 4, pixelValues.shape[0] > 0, pixelValues.shape[1] == config.numChannels,
              pixelValues.shape[2] >= p, pixelValues.shape[3] >= p,
              pixelValues.shape[2] % p == 0, pixelValues.shape[3] % p == 0
        else { throw .badPixelValues(shape: pixelValues.shape, channels: config.numChannels, patchSize: p) }
    }

    /// Runs the tower on `[B, C, H, W]` pixel values and returns the outputs of the layers in
    /// `collect` and, if `pooled`, the pooled output. Without `pooled` the layers after the
    /// deepest collected one are not run (CLIPSeg's decoder needs nothing later).
    public func callAsFunction(_ pixelValues: Tensor, collect: [Int] = [], pooled: Bool = true) throws(CLIPError) -> Output {
        try validate(pixelValues)
        precondition(collect.allSatisfy { $0 >= 0 && $0 < encoder.layers.count }, "layers \(collect) outside the encoder")
        var h = preLayrnorm(embeddings(pixelValues))
        let last = pooled ? encoder.layers.count - 1 : (collect.max() ?? -1)
        var states: [Int: Tensor] = [:]
        if last >= 0 {
            for i in 0...last {
                h = encoder.layers[i](h, mask: nil)
                if collect.contains(i) { states[i] = h }
            }
        }
        var pooledOutput: Tensor?
        if pooled {
            // last_hidden_state[:, 0, :] → post_layernorm   ref: CLIPVisionTransformer.forward
            let cls = Ops.slice(h, axis: 1, start: 0, end: 1).reshaped([h.shape[0], config.hiddenSize])
            pooledOutput = postLayernorm(cls)
        }
        return Output(hiddenStates: collect.map { states[$0]! }, lastHiddenState: last == encoder.layers.count - 1 ? h : nil,
                      pooledOutput: pooledOutput)
    }
}
