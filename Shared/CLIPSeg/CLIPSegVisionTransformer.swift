import Checkpoint
import Foundation
import NN
import Tensor

/// Patch embedding (conv without bias) + class token + position embeddings, the latter
/// bicubically resized from the trained grid to the input's grid.
/// ref: modeling_clipseg.py CLIPSegVisionEmbeddings
public struct CLIPSegVisionEmbeddings: Sendable {
    let classEmbedding: Tensor        // [D]
    let patchEmbedding: Conv2d        // [D, C, p, p], no bias
    let positionEmbedding: Tensor     // [1 + g², D]
    public let patchSize: Int
    let hidden: Int, trainedGrid: Int

    init(_ vb: WeightLoader, config c: CLIPSegConfig.Vision) throws {
        hidden = c.hiddenSize; patchSize = c.patchSize; trainedGrid = c.gridSize
        classEmbedding = try vb.tensor("class_embedding", shape: [c.hiddenSize])
        patchEmbedding = try Conv2d(vb.pp("patch_embedding"), in: c.numChannels, out: c.hiddenSize,
                                    kernel: c.patchSize, stride: c.patchSize, bias: false)
        positionEmbedding = try vb.pp("position_embedding").tensor("weight", shape: [c.gridSize * c.gridSize + 1, c.hiddenSize])
    }

    /// Position embeddings for an input of `height`×`width` pixels: `[1, 1 + gh·gw, D]`.
    /// The stored table is used as is only when the grid matches and the input is square,
    /// exactly upstream's shortcut; otherwise the patch part is resized with bicubic
    /// (A = -0.75, align_corners=False) and the class row is kept.
    /// ref: modeling_clipseg.py CLIPSegVisionEmbeddings.interpolate_pos_encoding
    public func interpolatedPositionEmbedding(height: Int, width: Int) -> Tensor {
        let gh = height / patchSize, gw = width / patchSize
        let numPositions = positionEmbedding.shape[0] - 1
        if gh * gw == numPositions && height == width {
            return positionEmbedding.reshaped([1, numPositions + 1, hidden])
        }
        let cls = Ops.slice(positionEmbedding, axis: 0, start: 0, end: 1).reshaped([1, 1, hidden])
        // [g², D] → [1, g, g, D] → [1, D, g, g]
        let grid = Ops.permute(Ops.slice(positionEmbedding, axis: 0, start: 1)
            .reshaped([1, trainedGrid, trainedGrid, hidden]), [0, 3, 1, 2])
        let resized = Ops.interpolateBicubic(grid, size: Size2(gh, gw))
        let patches = Ops.permute(resized, [0, 2, 3, 1]).reshaped([1, gh * gw, hidden])
        return Ops.concat([cls, patches], axis: 1)
    }

    /// `[B, C, H, W]` → `[B, 1 + (H/p)·(W/p), D]`. ref: CLIPSegVisionEmbeddings.forward
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

/// CLIP's vision tower as CLIPSeg uses it: embeddings → pre_layrnorm → encoder layers;
/// pooled output = post_layernorm of the last layer's class token.
/// ref: modeling_clipseg.py CLIPSegVisionModel.forward (transformers 5 folds the former
///      CLIPSegVisionTransformer into it; state-dict names are unchanged)
public struct CLIPSegVisionTransformer: Sendable {
    public let embeddings: CLIPSegVisionEmbeddings
    let preLayrnorm: LayerNorm
    let encoder: CLIPSegEncoder
    let postLayernorm: LayerNorm
    public let config: CLIPSegConfig.Vision

    /// `vb` is scoped at `clip.vision_model`.
    public init(_ vb: WeightLoader, config c: CLIPSegConfig.Vision) throws {
        config = c
        embeddings = try CLIPSegVisionEmbeddings(vb.pp("embeddings"), config: c)
        preLayrnorm = try LayerNorm(vb.pp("pre_layrnorm"), dim: c.hiddenSize, eps: c.layerNormEps)
        encoder = try CLIPSegEncoder(vb.pp("encoder"), hidden: c.hiddenSize, intermediate: c.intermediateSize,
                                     heads: c.numAttentionHeads, layers: c.numHiddenLayers, eps: c.layerNormEps)
        postLayernorm = try LayerNorm(vb.pp("post_layernorm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    func validate(_ pixelValues: Tensor) throws(CLIPSegError) {
        let p = config.patchSize
        guard pixelValues.rank == 4, pixelValues.shape[0] > 0, pixelValues.shape[1] == config.numChannels,
              pixelValues.shape[2] >= p, pixelValues.shape[3] >= p,
              pixelValues.shape[2] % p == 0, pixelValues.shape[3] % p == 0
        else { throw .badPixelValues(shape: pixelValues.shape, patchSize: p) }
    }

    /// Runs the encoder and returns the outputs of the 0-based layers in `collect`
    /// (`hidden_states[i + 1]` in transformers' numbering, where `hidden_states[0]` is the
    /// pre-layer-norm'd embedding) and, if `pooled`, the pooled output `[B, D]`.
    /// Without `pooled` the layers after the last collected one are not run.
    public func callAsFunction(_ pixelValues: Tensor, collect: [Int], pooled: Bool) throws(CLIPSegError)
        -> (hiddenStates: [Tensor], pooledOutput: Tensor?) {
        try validate(pixelValues)
        precondition(collect.allSatisfy { $0 >= 0 && $0 < encoder.layers.count }, "layers \(collect) outside the encoder")
        var h = preLayrnorm(embeddings(pixelValues))
        let last = pooled ? encoder.layers.count - 1 : (collect.max() ?? -1)
        var states: [Int: Tensor] = [:]
        if last >= 0 {
            for i in 0...last {
                h = encoder.layers[i](h)
                if collect.contains(i) { states[i] = h }
            }
        }
        var pooledOutput: Tensor?
        if pooled {
            // last_hidden_state[:, 0, :] → post_layernorm   ref: CLIPSegVisionModel.forward
            let cls = Ops.slice(h, axis: 1, start: 0, end: 1).reshaped([h.shape[0], config.hiddenSize])
            pooledOutput = postLayernorm(cls)
        }
        return (collect.map { states[$0]! }, pooledOutput)
    }
}
