import Checkpoint
import Foundation
import NN
import Tensor

// transformers' CLIP text tower, one type per upstream module, weights bound by the HF
// state-dict names; the encoder blocks are shared with the vision tower (CLIPEncoder.swift).
// ref: transformers/models/clip/modeling_clip.py (5.x)

/// ref: modeling_clip.py CLIPTextEmbeddings
public struct CLIPTextEmbeddings: Sendable {
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        tokenEmbedding = try Embedding(vb.pp("token_embedding"), count: config.vocabSize, dim: config.hiddenSize)
        positionEmbedding = try Embedding(vb.pp("position_embedding"), count: config.maxPositionEmbeddings,
                                          dim: config.hiddenSize)
        // Pre-4.31 checkpoints stored the `position_ids` buffer (an arange); it is not a weight.
        vb.skip("position_ids")
    }

    /// `[B][L]` ids → `[B, L, D]`: token rows + position rows 0..<L (position_ids default).
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        let l = ids.first?.count ?? 0
        let positions = positionEmbedding(Array(0..<l))
        let tokens = tokenEmbedding(ids.flatMap { $0 }).reshaped([ids.count, l, tokenEmbedding.dim])
        return tokens + positions
    }
}

/// The `text_model` of CLIPModel / CLIPTextModelWithProjection (transformers ≥ 5 names the
/// class CLIPTextModel; 4.x called it CLIPTextTransformer).
/// ref: modeling_clip.py CLIPTextModel.forward
public struct CLIPTextTransformer: Sendable {
    public let config: CLIPTextConfig
    public let embeddings: CLIPTextEmbeddings
    public let encoder: CLIPEncoder
    public let finalLayerNorm: LayerNorm

    public struct Output: Sendable {
        /// `[B, L, D]` after `final_layer_norm`.
        public var lastHiddenState: Tensor
        /// `[B, D]`: the rows at `pooledIndex` of each sequence.
        public var pooledOutput: Tensor
    }

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        self.config = config
        embeddings = try CLIPTextEmbeddings(vb.pp("embeddings"), config: config)
        encoder = try CLIPEncoder(vb.pp("encoder"), config: config)
        finalLayerNorm = try LayerNorm(vb.pp("final_layer_norm"), dim: config.hiddenSize, eps: config.layerNormEps)
    }

    /// Which position's state is the sequence's pooled output.
    /// - `eos_token_id == 2` (legacy OpenAI and CLIPSeg hub configs, e.g. CIDAS/clipseg-rd64-refined):
    ///   the first position of the largest id (CLIP's end token 49407 is the largest id in
    ///   its vocabulary);
    /// - otherwise: the first position holding `eos_token_id`. A row without it throws
    ///   `CLIPError.missingEndOfText(row:eosTokenID:)`. Upstream does not check: argmax of an
    ///   all-zero comparison row is 0, so it silently pools the start token's state, and a
    ///   CLIPSeg prompt conditioned on that segments something other than the text.
    /// ref: modeling_clip.py CLIPTextModel.forward —
    ///   eos_token_id == 2: `last_hidden_state[arange, input_ids.argmax(dim=-1)]`;
    ///   else: `last_hidden_state[arange, (input_ids == eos_token_id).int().argmax(dim=-1)]`
    /// (modeling_clipseg.py CLIPSegTextModel.forward is the same code.)
    public static func pooledIndex(_ ids: [Int], eosTokenID: Int, row: Int = 0) throws(CLIPError) -> Int {
        guard !ids.isEmpty else { throw .missingEndOfText(row: row, eosTokenID: eosTokenID) }
        if eosTokenID == 2 {
            var best = 0
            for (i, v) in ids.enumerated() where v > ids[best] { best = i }  // argmax: first maximum
            return best
        }
        guard let i = ids.firstIndex(of: eosTokenID) else { throw .missingEndOfText(row: row, eosTokenID: eosTokenID) }
        return i
    }

    /// `pooledIndex` with this tower's `eos_token_id`.
    public func pooledIndex(_ ids: [Int], row: Int = 0) throws(CLIPError) -> Int {
        try Self.pooledIndex(ids, eosTokenID: config.eosTokenID, row: row)
    }

    /// Causal additive mask `[L, L]`: 0 on and below the diagonal, -inf above.
    /// ref: masking_utils.create_causal_mask (no padding mask: CLIP attends over padding
    /// positions too, which only later positions can see)
    public static func causalMask(_ l: Int) -> Tensor {
        Tensor(shape: [l, l]) { i in i % l > i / l ? -Float.infinity : 0 }
    }

    /// Checks `[B][L]` ids (non-empty, equal lengths within the position table, ids in the
    /// vocabulary, an end token per row) and returns each row's pooled position. Runs
    /// before the encoder, so bad input costs nothing.
    func validate(_ ids: [[Int]]) throws(CLIPError) -> [Int] {
        let l = ids.first?.count ?? 0
        guard l >= 1 else { throw .invalidSequenceLength(length: 0, maxPositions: config.maxPositionEmbeddings) }
        guard ids.allSatisfy({ $0.count == l }) else { throw .raggedTokenRows(lengths: ids.map(\.count)) }
        guard l <= config.maxPositionEmbeddings else {
            throw .invalidSequenceLength(length: l, maxPositions: config.maxPositionEmbeddings)
        }
        for (r, row) in ids.enumerated() {
            for (p, id) in row.enumerated() where id < 0 || id >= config.vocabSize {
                throw .tokenOutOfRange(id: id, row: r, position: p, vocabularySize: config.vocabSize)
            }
        }
        var pooled: [Int] = []
        pooled.reserveCapacity(ids.count)
        for (r, row) in ids.enumerated() { pooled.append(try pooledIndex(row, row: r)) }
        return pooled
    }

    /// Equal-length sequences `[B][L]` → hidden states and pooled output.
    ///
    /// No attention mask is taken: the causal mask already keeps every position at or
    /// before the end token from seeing right padding, so the pooled output is the same
    /// with or without the tokenizer's padding mask.
    public func callAsFunction(_ ids: [[Int]]) throws(CLIPError) -> Output {
        let pooledAt = try validate(ids)
        let l = ids[0].count
        let x = encoder(embeddings(ids), mask: Self.causalMask(l))
        let h = finalLayerNorm(x)
        let d = config.hiddenSize
        var pooled = [Float](repeating: 0, count: ids.count * d)
        h.data.withUnsafeBufferPointer { hp in
            for (b, p) in pooledAt.enumerated() {
                let src = (b * l + p) * d
                for j in 0..<d { pooled[b * d + j] = hp[src + j] }
            }
        }
        return Output(lastHiddenState: h, pooledOutput: Tensor(shape: [ids.count, d], data: pooled))
    }
}

/// transformers' CLIPTextModelWithProjection, also the text half of CLIPModel
/// (`get_text_features`): the text tower plus `text_projection` (no bias).
/// ref: modeling_clip.py CLIPTextModelWithProjection.forward, CLIPModel.get_text_features
public struct CLIPTextModelWithProjection: Sendable {
    public let textModel: CLIPTextTransformer
    public let textProjection: Linear
    public var config: CLIPTextConfig { textModel.config }

    public struct Output: Sendable {
        public var lastHiddenState: Tensor
        public var pooledOutput: Tensor
        /// `[B, projection_dim]`.
        public var textEmbeds: Tensor
    }

    /// Binds `text_model.*` and `text_projection.weight` from `vb` (the checkpoint root).
    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        textModel = try CLIPTextTransformer(vb.pp("text_model"), config: config)
        textProjection = try Linear(vb.pp("text_projection"), in: config.hiddenSize, out: config.projectionDim, bias: false)
    }

    /// The tensor-name prefixes of CLIPModel's image half, skipped by name when only the
    /// text tower is loaded (`visual_projection.weight`, `logit_scale`, `vision_model.*`).
    public static let visionTensorPrefixes = ["vision_model.", "visual_projection.", "logit_scale"]

    /// Marks every tensor of CLIPModel's image half as intentionally unused, so a following
    /// `vb.finish()` still rejects anything else unexpected. Returns how many were skipped.
    @discardableResult
    public static func skipVisionTensors(_ vb: WeightLoader, stateDict: StateDict) -> Int {
        var n = 0
        for name in stateDict.names where isVisionTensor(name) {
            if vb.skip(name) { n += 1 }
        }
        return n
    }

    /// Whether `name` belongs to CLIPModel's image half: under a "prefix." scope, or exactly
    /// a prefix without a dot (`logit_scale`; `logit_scale_extra` is not).
    public static func isVisionTensor(_ name: String) -> Bool {
        visionTensorPrefixes.contains { name.hasPrefix($0) && ($0.hasSuffix(".") || name == $0) }
    }

    public func callAsFunction(_ ids: [[Int]]) throws(CLIPError) -> Output {
        let t = try textModel(ids)
        return Output(lastHiddenState: t.lastHiddenState, pooledOutput: t.pooledOutput,
                      textEmbeds: textProjection(t.pooledOutput))
    }
}
