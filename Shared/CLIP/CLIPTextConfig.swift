import Foundation

/// Hyper-parameters of a CLIP text tower, named after transformers' `CLIPTextConfig`
/// (plus the CLIPModel-level `projection_dim`).
/// ref: transformers/models/clip/configuration_clip.py CLIPTextConfig
public struct CLIPTextConfig: CLIPEncoderConfiguration, Equatable {
    /// `hidden_act` (shared with the vision tower).
    public typealias Activation = CLIPActivation

    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    /// Width of `text_projection`'s output.
    public var projectionDim: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float
    /// Decides the pooled position (see `CLIPTextTransformer.pooledIndex`): 2 is the legacy
    /// value in OpenAI's and CLIPSeg's hub configs and means "argmax of the ids" (the end
    /// token is the largest id); anything else means "first position holding this id",
    /// and a row without it is an error.
    public var eosTokenID: Int

    public init(vocabSize: Int = 49408, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, maxPositionEmbeddings: Int = 77, projectionDim: Int,
                hiddenAct: Activation = .quickGELU, layerNormEps: Float = 1e-5, eosTokenID: Int = 2) {
        precondition(numAttentionHeads > 0 && hiddenSize % numAttentionHeads == 0,
                     "hidden size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.projectionDim = projectionDim
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.eosTokenID = eosTokenID
    }

    /// openai/clip-vit-base-patch32 text tower (config.json text_config; eos_token_id 2).
    public static let openAIViTB32 = CLIPTextConfig(hiddenSize: 512, intermediateSize: 2048, numHiddenLayers: 12,
                                                    numAttentionHeads: 8, projectionDim: 512)
    /// openai/clip-vit-base-patch16: the same text tower as patch32.
    public static let openAIViTB16 = openAIViTB32
    /// openai/clip-vit-large-patch14 (and -336) text tower.
    public static let openAIViTL14 = CLIPTextConfig(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12,
                                                    numAttentionHeads: 12, projectionDim: 768)

    /// Reads a transformers `config.json`: a `CLIPConfig` (uses `text_config` and the top-level
    /// `projection_dim`) or a `CLIPTextConfig`. Missing keys take transformers' defaults.
    public init(huggingFaceConfigJSON data: Data) throws(CLIPError) {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .unrecognisedCheckpoint(path: "config.json", reason: "not a JSON object")
        }
        let text = root["text_config"] as? [String: Any] ?? root
        func int(_ key: String, _ fallback: Int) -> Int { (text[key] as? NSNumber)?.intValue ?? fallback }
        let act = try Activation(huggingFaceName: text["hidden_act"] as? String ?? "quick_gelu")
        let projection = (root["projection_dim"] as? NSNumber)?.intValue ?? int("projection_dim", 512)
        // ref: CLIPTextConfig defaults (vocab 49408, hidden 512, intermediate 2048, 12 layers,
        //      8 heads, 77 positions, quick_gelu, eps 1e-5, eos_token_id 49407 in new configs)
        var eos = 49407
        if let e = text["eos_token_id"] as? NSNumber { eos = e.intValue }
        let hidden = int("hidden_size", 512), heads = int("num_attention_heads", 8)
        guard heads > 0, hidden > 0, hidden % heads == 0 else {
            throw .unrecognisedCheckpoint(path: "config.json", reason: "hidden_size \(hidden) is not divisible by \(heads) heads")
        }
        self.init(vocabSize: int("vocab_size", 49408), hiddenSize: hidden,
                  intermediateSize: int("intermediate_size", 2048), numHiddenLayers: int("num_hidden_layers", 12),
                  numAttentionHeads: heads,
                  maxPositionEmbeddings: int("max_position_embeddings", 77), projectionDim: projection,
                  hiddenAct: act, layerNormEps: (text["layer_norm_eps"] as? NSNumber)?.floatValue ?? 1e-5,
                  eosTokenID: eos)
    }
}
