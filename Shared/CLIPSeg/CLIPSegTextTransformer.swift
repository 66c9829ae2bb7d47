import Checkpoint
import Foundation
import NN
import Tensor

/// CLIP's text tower as CLIPSeg ships it: token + position embeddings, causal pre-norm
/// encoder, final_layer_norm, pooled at the end-of-text token.
/// ref: modeling_clipseg.py CLIPSegTextEmbeddings, CLIPSegTextModel.forward
///
/// No attention mask is taken: the causal mask already keeps every position at or before
/// the end-of-text token from seeing right padding, so the pooled output (all CLIPSeg
/// uses) is the same with or without the tokenizer's padding mask.
public struct CLIPSegTextTransformer: Sendable {
    let tokenEmbedding: Tensor     // [vocab, D]
    let positionEmbedding: Tensor  // [maxPositions, D]
    let encoder: CLIPSegEncoder
    let finalLayerNorm: LayerNorm
    public let config: CLIPSegConfig.Text

    /// `vb` is scoped at `clip.text_model`.
    public init(_ vb: WeightLoader, config c: CLIPSegConfig.Text) throws {
        config = c
        let emb = vb.pp("embeddings")
        tokenEmbedding = try emb.pp("token_embedding").tensor("weight", shape: [c.vocabSize, c.hiddenSize])
        positionEmbedding = try emb.pp("position_embedding").tensor("weight", shape: [c.maxPositionEmbeddings, c.hiddenSize])
        encoder = try CLIPSegEncoder(vb.pp("encoder"), hidden: c.hiddenSize, intermediate: c.intermediateSize,
                                     heads: c.numAttentionHeads, layers: c.numHiddenLayers, eps: c.layerNormEps)
        finalLayerNorm = try LayerNorm(vb.pp("final_layer_norm"), dim: c.hiddenSize, eps: c.layerNormEps)
    }

    /// Position whose hidden state is pooled, per upstream's two rules:
    /// - `eos_token_id == 2` (configs from before transformers PR #24773, e.g.
    ///   CIDAS/clipseg-rd64-refined): the first position of the largest id (CLIP's
    ///   end-of-text 49407 is the largest id in its vocabulary);
    /// - otherwise: the first position holding `eos_token_id`. Upstream silently pools
    ///   position 0 when it is absent; we reject the row instead.
    /// ref: modeling_clipseg.py CLIPSegTextModel.forward (pooled_output)
    public func pooledIndex(_ ids: [Int], row: Int = 0) throws(CLIPSegError) -> Int {
        if config.eosTokenId == 2 {
            var best = 0
            for (i, v) in ids.enumerated() where v > ids[best] { best = i }  // argmax: first maximum
            return best
        }
        guard let i = ids.firstIndex(of: config.eosTokenId) else {
            throw .missingEndOfText(row: row, eosTokenId: config.eosTokenId)
        }
        return i
    }

    func validate(_ ids: [[Int]]) throws(CLIPSegError) {
        guard let l = ids.first?.count, l > 0 else { throw .badTokenIds(reason: "no tokens") }
        guard ids.allSatisfy({ $0.count == l }) else {
            throw .badTokenIds(reason: "rows have different lengths \(ids.map(\.count)); pad them")
        }
        guard l <= config.maxPositionEmbeddings else {
            throw .sequenceTooLong(length: l, maxPositions: config.maxPositionEmbeddings)
        }
        for (r, row) in ids.enumerated() {
            for (p, id) in row.enumerated() where id < 0 || id >= config.vocabSize {
                throw .tokenOutOfRange(id: id, row: r, position: p, vocabSize: config.vocabSize)
            }
        }
    }

    /// `ids: B rows of L token ids` → (last hidden state `[B, L, D]` after final_layer_norm,
    /// pooled output `[B, D]`).
    public func callAsFunction(_ ids: [[Int]]) throws(CLIPSegError) -> (lastHiddenState: Tensor, pooledOutput: Tensor) {
        try validate(ids)
        let (b, l, d) = (ids.count, ids[0].count, config.hiddenSize)
        let pooledAt = try ids.enumerated().map { (r, row) throws(CLIPSegError) in try pooledIndex(row, row: r) }
        // inputs_embeds + position_embedding(position_ids[:, :L])   ref: CLIPSegTextEmbeddings.forward
        var x = Tensor(zeros: [b, l, d])
        for r in 0..<b {
            for p in 0..<l {
                let tok = ids[r][p] * d, pos = p * d, dst = (r * l + p) * d
                for j in 0..<d { x.data[dst + j] = tokenEmbedding.data[tok + j] + positionEmbedding.data[pos + j] }
            }
        }
        // Causal mask: position i attends to j ≤ i.   ref: masking_utils.create_causal_mask
        let mask = Tensor(shape: [l, l]) { $0 % l > $0 / l ? -Float.infinity : 0 }
        for layer in encoder.layers { x = layer(x, mask: mask) }
        let last = finalLayerNorm(x)
        var pooled = Tensor(zeros: [b, d])
        for r in 0..<b {
            let src = (r * l + pooledAt[r]) * d
            for j in 0..<d { pooled.data[r * d + j] = last.data[src + j] }
        }
        return (last, pooled)
    }
}
