import Checkpoint
import Foundation
import NN
import Tensor

// transformers' CLIP text tower, one type per upstream module, weights bound by the HF
// state-dict names. ref: transformers/models/clip/modeling_clip.py (5.x)

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

/// ref: modeling_clip.py CLIPAttention (+ eager_attention_forward)
public struct CLIPAttention: Sendable {
    public let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    public let numHeads: Int, headDim: Int
    /// ref: self.scale = self.head_dim**-0.5
    public var scale: Float { 1 / Float(headDim).squareRoot() }

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        let d = config.hiddenSize
        kProj = try Linear(vb.pp("k_proj"), in: d, out: d)
        vProj = try Linear(vb.pp("v_proj"), in: d, out: d)
        qProj = try Linear(vb.pp("q_proj"), in: d, out: d)
        outProj = try Linear(vb.pp("out_proj"), in: d, out: d)
        numHeads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// `x: [B, L, D]`, `mask`: additive `[L, L]` → `[B, L, D]`.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let b = x.shape[0], l = x.shape[1]
        // ref: queries.view(hidden_shape).transpose(1, 2)  → [B, H, L, hd]
        func heads(_ t: Tensor) -> Tensor { Ops.permute(t.reshaped([b, l, numHeads, headDim]), [0, 2, 1, 3]) }
        let out = Ops.attention(q: heads(qProj(x)), k: heads(kProj(x)), v: heads(vProj(x)), scale: scale, bias: mask)
        // ref: attn_output.reshape(*input_shape, -1) after transpose(1, 2)
        return outProj(Ops.permute(out, [0, 2, 1, 3]).reshaped([b, l, numHeads * headDim]))
    }
}

/// ref: modeling_clip.py CLIPMLP
public struct CLIPMLP: Sendable {
    public let fc1: Linear, fc2: Linear
    public let activation: CLIPTextConfig.Activation

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        fc1 = try Linear(vb.pp("fc1"), in: config.hiddenSize, out: config.intermediateSize)
        fc2 = try Linear(vb.pp("fc2"), in: config.intermediateSize, out: config.hiddenSize)
        activation = config.hiddenAct
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}

/// Pre-LN transformer block. ref: modeling_clip.py CLIPEncoderLayer.forward
public struct CLIPEncoderLayer: Sendable {
    public let selfAttn: CLIPAttention
    public let layerNorm1: LayerNorm
    public let mlp: CLIPMLP
    public let layerNorm2: LayerNorm

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        selfAttn = try CLIPAttention(vb.pp("self_attn"), config: config)
        layerNorm1 = try LayerNorm(vb.pp("layer_norm1"), dim: config.hiddenSize, eps: config.layerNormEps)
        mlp = try CLIPMLP(vb.pp("mlp"), config: config)
        layerNorm2 = try LayerNorm(vb.pp("layer_norm2"), dim: config.hiddenSize, eps: config.layerNormEps)
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let h = x + selfAttn(layerNorm1(x), mask: mask)
        return h + mlp(layerNorm2(h))
    }
}

/// ref: modeling_clip.py CLIPEncoder
public struct CLIPEncoder: Sendable {
    public let layers: [CLIPEncoderLayer]

    public init(_ vb: WeightLoader, config: CLIPTextConfig) throws(CheckpointError) {
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<config.numHiddenLayers { layers.append(try CLIPEncoderLayer(vb.pp("layers").pp(i), config: config)) }
        self.layers = layers
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        layers.reduce(x) { h, layer in layer(h, mask: mask) }
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
    /// ref: CLIPTextModel.forward —
    ///   eos_token_id == 2 (legacy OpenAI configs): input_ids.argmax(dim=-1), i.e. the first
    ///     occurrence of the largest id (the end token 49407 is the largest in the vocabulary);
    ///   otherwise: (input_ids == eos_token_id).int().argmax(dim=-1), the first end token
    ///     (0 when there is none, which is what argmax of an all-zero row gives).
    public static func pooledIndex(_ ids: [Int], eosTokenID: Int) -> Int {
        guard !ids.isEmpty else { return 0 }
        if eosTokenID == 2 {
            var best = 0
            for (i, v) in ids.enumerated() where v > ids[best] { best = i }
            return best
        }
        return ids.firstIndex(of: eosTokenID) ?? 0
    }

    /// Causal additive mask `[L, L]`: 0 on and below the diagonal, -inf above.
    /// ref: masking_utils.create_causal_mask (no padding mask: CLIP attends over padding
    /// positions too, which only later positions can see)
    public static func causalMask(_ l: Int) -> Tensor {
        Tensor(shape: [l, l]) { i in i % l > i / l ? -Float.infinity : 0 }
    }

    /// Equal-length sequences `[B][L]` → hidden states and pooled output.
    public func callAsFunction(_ ids: [[Int]]) throws(CLIPError) -> Output {
        let l = ids.first?.count ?? 0
        guard l >= 1, l <= config.maxPositionEmbeddings, ids.allSatisfy({ $0.count == l }) else {
            throw .invalidSequenceLength(length: ids.map(\.count).max() ?? 0, maxPositions: config.maxPositionEmbeddings)
        }
        if let bad = ids.lazy.flatMap({ $0 }).first(where: { $0 < 0 || $0 >= self.config.vocabSize }) {
            throw .tokenOutOfRange(id: bad, vocabularySize: config.vocabSize)
        }
        let x = encoder(embeddings(ids), mask: Self.causalMask(l))
        let h = finalLayerNorm(x)
        let d = config.hiddenSize
        var pooled = [Float](repeating: 0, count: ids.count * d)
        for (b, row) in ids.enumerated() {
            let p = Self.pooledIndex(row, eosTokenID: config.eosTokenID)
            let src = (b * l + p) * d
            for j in 0..<d { pooled[b * d + j] = h.data[src + j] }
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
