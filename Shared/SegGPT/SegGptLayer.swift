import Checkpoint
import NN
import Tensor

/// How a layer averages the query half of its attention output over the prompts
/// (few-shot "feature ensemble"). The batch is `[image stream (N), mask stream (N)]` before
/// the merge layer's stream average and `[N]` after it.
public enum SegGptFeatureEnsemble: Sendable, Equatable {
    case none
    /// Mean over the N prompts separately in each stream (the original's `merge == 1`).
    case withinStreams
    /// Mean over the whole batch (the original's `merge == 2`).
    case acrossBatch
}

/// The MLP: two linears with exact GELU between (`lin1`/`lin2`, timm's `fc1`/`fc2`).
/// ref: modeling_seggpt.py SegGptMlp; timm.models.vision_transformer.Mlp
public struct SegGptMlp: Sendable {
    let block: MLPBlock

    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        block = try MLPBlock(vb, dim: c.hiddenSize, hidden: c.mlpDim, activation: .gelu,
                             names: names == .transformers ? ("lin1", "lin2") : ("fc1", "fc2"))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { block(x) }
}

/// Pre-norm transformer block: `x + ensemble(attn(ln₁(x)))`, then `+ mlp(ln₂(·))`.
/// ref: modeling_seggpt.py SegGptLayer.forward; models_seggpt.py Block.forward (window 0)
public struct SegGptLayer: Sendable {
    let layernormBefore: LayerNorm, layernormAfter: LayerNorm
    let attention: SegGptAttention
    let mlp: SegGptMlp

    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        let C = c.hiddenSize, eps = c.layerNormEps
        switch names {
        case .transformers:
            layernormBefore = try LayerNorm(vb.pp("layernorm_before"), dim: C, eps: eps)
            attention = try SegGptAttention(vb.pp("attention"), config: c)
            layernormAfter = try LayerNorm(vb.pp("layernorm_after"), dim: C, eps: eps)
        case .original:
            layernormBefore = try LayerNorm(vb.pp("norm1"), dim: C, eps: eps)
            attention = try SegGptAttention(vb.pp("attn"), config: c)
            layernormAfter = try LayerNorm(vb.pp("norm2"), dim: C, eps: eps)
        }
        mlp = try SegGptMlp(vb.pp("mlp"), config: c, names: names)
    }

    /// `x: [B, L, C]` → `[B, L, C]`.
    public func callAsFunction(_ x: Tensor, ensemble: SegGptFeatureEnsemble = .none) -> Tensor {
        var h = attention(layernormBefore(x))
        if ensemble != .none { Self.averageQueryHalf(&h, ensemble) }
        h += x
        var m = mlp.block.lin1(layernormAfter(h), then: .gelu, into: mlp.block.lin2)
        m += h
        return m
    }

    /// Replaces the query half (tokens L/2 ..< L, i.e. the bottom half of the canvas) of
    /// every batch entry by its mean over the group: each stream's N entries
    /// (`withinStreams`) or all entries (`acrossBatch`). Sum in batch order, then ÷ count,
    /// like torch's `mean`.
    /// ref: models_seggpt.py Block.forward "feature ensemble"; modeling_seggpt.py SegGptLayer.forward
    static func averageQueryHalf(_ h: inout Tensor, _ mode: SegGptFeatureEnsemble) {
        let (b, l, c) = (h.shape[0], h.shape[1], h.shape[2])
        let groups = mode == .withinStreams ? 2 : 1
        precondition(b % groups == 0, "feature ensemble over \(b) entries in \(groups) streams")
        let per = b / groups, start = (l / 2) * c, count = (l - l / 2) * c
        guard per > 1 else { return }
        var sum = [Float](repeating: 0, count: count)
        h.data.withUnsafeMutableBufferPointer { hp in
            sum.withUnsafeMutableBufferPointer { sp in
                let s = sp.baseAddress!, inv = Float(per)
                for g in 0..<groups {
                    let first = hp.baseAddress! + (g * per) * l * c + start
                    s.update(from: first, count: count)
                    for e in 1..<per {
                        let src = hp.baseAddress! + (g * per + e) * l * c + start
                        for j in 0..<count { s[j] += src[j] }
                    }
                    for j in 0..<count { s[j] /= inv }
                    for e in 0..<per { (hp.baseAddress! + (g * per + e) * l * c + start).update(from: s, count: count) }
                }
            }
        }
    }
}
