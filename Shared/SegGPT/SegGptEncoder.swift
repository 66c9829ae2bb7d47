import Checkpoint
import NN
import Tensor

/// The ViT stack. Image and mask streams share the batch axis until `merge_index`, where
/// they are averaged; the outputs of `intermediate_hidden_state_indices` go through the
/// shared final layer norm and feed the decoder.
///
/// Feature ensemble (several prompts for one query) follows the ORIGINAL rule: average
/// within each stream for every layer up to and including the merge layer, across the
/// batch after it (`merge = 1 if merge_idx >= idx else 2`). transformers 5.24 uses
/// `merge_index > i`, which averages across both streams at the merge layer itself, so two
/// identical prompts no longer give the one-prompt output there; with the original rule
/// they do (tested). One prompt never ensembles (`feat_ensemble = -1 if len(x) == 1`).
/// ref: models_seggpt.py SegGPT.forward_encoder; seggpt_engine.py run_one_image;
///      modeling_seggpt.py SegGptEncoder.forward (differs at i == merge_index)
public struct SegGptEncoder: Sendable {
    public let config: SegGptConfig
    let layers: [SegGptLayer]
    let layernorm: LayerNorm

    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        config = c
        let scope = names == .transformers ? vb.pp("layers") : vb.pp("blocks")
        var built: [SegGptLayer] = []
        for i in 0..<c.numHiddenLayers { built.append(try SegGptLayer(scope.pp(i), config: c, names: names)) }
        layers = built
        layernorm = try LayerNorm(vb.pp(names == .transformers ? "layernorm" : "norm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    /// The ensemble mode of layer `i` for `prompts` prompts.
    public func ensemble(layer i: Int, prompts: Int, featureEnsemble: Bool) -> SegGptFeatureEnsemble {
        guard featureEnsemble && prompts > 1 else { return .none }
        return i <= config.mergeIndex ? .withinStreams : .acrossBatch
    }

    /// `embeddings: [2N, L, C]` (image stream, then mask stream) → the layer-normed features
    /// of the intermediate layers, each `[N, L, C]`.
    public func callAsFunction(_ embeddings: Tensor, featureEnsemble: Bool) -> [Tensor] {
        var h = embeddings
        let prompts = embeddings.shape[0] / 2
        var features: [Tensor] = []
        for (i, layer) in layers.enumerated() {
            h = layer(h, ensemble: ensemble(layer: i, prompts: prompts, featureEnsemble: featureEnsemble))
            if i == config.mergeIndex { h = Self.mergeStreams(h) }
            if config.intermediateHiddenStateIndices.contains(i) { features.append(layernorm(h)) }
            if i >= config.intermediateHiddenStateIndices.last! { break }  // later layers feed nothing
        }
        return features
    }

    /// `(h[:B/2] + h[B/2:]) * 0.5` — in that order, as upstream.
    static func mergeStreams(_ h: Tensor) -> Tensor {
        let half = h.count / 2
        var shape = h.shape
        shape[0] /= 2
        return Tensor.uninitialized(shape) { o in
            h.data.withUnsafeBufferPointer { hp in
                let a = hp.baseAddress!, b = hp.baseAddress! + half
                for j in 0..<half { o[j] = (a[j] + b[j]) * 0.5 }
            }
        }
    }
}
