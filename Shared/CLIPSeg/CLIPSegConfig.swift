import CLIP

/// Hyper-parameters of transformers' `CLIPSegForImageSegmentation`, split the same way as
/// upstream (`CLIPSegConfig` with `text_config` and `vision_config`). CLIPSeg's towers are
/// CLIP's, so the two sub-configs are CLIP's own config types.
/// ref: transformers/models/clipseg/configuration_clipseg.py
public struct CLIPSegConfig: Sendable, Equatable {
    /// `vision_config` (CLIPSegVisionConfig has CLIPVisionConfig's fields).
    public var vision: CLIPVisionConfig
    /// `text_config` (CLIPSegTextConfig has CLIPTextConfig's fields); its `projectionDim`
    /// is the model's `projection_dim`.
    public var text: CLIPTextConfig
    /// `projection_dim`: width of `text_projection`, `visual_projection` and the decoder's
    /// FiLM input. Stored once, in `text.projectionDim`.
    public var projectionDim: Int {
        get { text.projectionDim }
        set { text.projectionDim = newValue }
    }
    /// 0-based encoder layers whose outputs feed the decoder (`hidden_states[i + 1]`).
    public var extractLayers: [Int]
    public var reduceDim: Int
    public var decoderNumAttentionHeads: Int
    public var decoderIntermediateSize: Int
    /// Index (in the decoder's deepest-first order) of the layer whose input gets FiLM.
    public var conditionalLayer: Int
    public var useComplexTransposedConvolution: Bool
    /// Side length the processor resizes images to (the model runs at this size).
    public var inputSize: Int

    /// `text.projectionDim` is the model's `projection_dim`.
    public init(vision: CLIPVisionConfig, text: CLIPTextConfig, extractLayers: [Int], reduceDim: Int,
                decoderNumAttentionHeads: Int, decoderIntermediateSize: Int, conditionalLayer: Int,
                useComplexTransposedConvolution: Bool, inputSize: Int) {
        self.vision = vision; self.text = text
        self.extractLayers = extractLayers; self.reduceDim = reduceDim
        self.decoderNumAttentionHeads = decoderNumAttentionHeads; self.decoderIntermediateSize = decoderIntermediateSize
        self.conditionalLayer = conditionalLayer; self.useComplexTransposedConvolution = useComplexTransposedConvolution
        self.inputSize = inputSize
    }

    /// CIDAS/clipseg-rd64-refined: CLIP ViT-B/16 (position grid 14×14, run at 352×352 → 22×22),
    /// CLIP text transformer, FiLM decoder with 64 channels and the "complex" upsampling head.
    /// Values: the hub config.json (extract_layers, reduce_dim, patch 16, complex conv,
    /// text eos_token_id 2) over configuration_clipseg.py's defaults (both towers quick_gelu,
    /// layer_norm_eps 1e-5); 352 from the hub's preprocessor_config.json.
    public static let rd64Refined = CLIPSegConfig(
        vision: CLIPVisionConfig(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12, numAttentionHeads: 12,
                                 imageSize: 224, patchSize: 16),
        text: CLIPTextConfig(vocabSize: 49408, hiddenSize: 512, intermediateSize: 2048, numHiddenLayers: 12,
                             numAttentionHeads: 8, maxPositionEmbeddings: 77, projectionDim: 512, eosTokenID: 2),
        extractLayers: [3, 6, 9], reduceDim: 64, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 2048, conditionalLayer: 0, useComplexTransposedConvolution: true, inputSize: 352)

    /// The tiny random model of Tests/Reference/make_clipseg_fixtures.py (4×4 trained position
    /// grid run at 96×96, eos 998 with a higher "added" token 999, FiLM at decoder layer 1).
    public static let tinyTest = CLIPSegConfig(
        vision: CLIPVisionConfig(hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 4, numAttentionHeads: 4,
                                 imageSize: 64, patchSize: 16),
        text: CLIPTextConfig(vocabSize: 1000, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
                             numAttentionHeads: 4, maxPositionEmbeddings: 16, projectionDim: 16, eosTokenID: 998),
        extractLayers: [1, 2, 3], reduceDim: 16, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 32, conditionalLayer: 1, useComplexTransposedConvolution: true, inputSize: 96)
}

extension CLIPSegConfig {
    /// The tiny test layout with CLIP's real 49,408-token vocabulary, 77 positions and
    /// end-of-text 49407: small enough for service tests, yet fed by the real tokenizer.
    public static let tinyTestFullVocabulary = CLIPSegConfig(
        vision: tinyTest.vision,
        text: CLIPTextConfig(vocabSize: 49408, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
                             numAttentionHeads: 4, maxPositionEmbeddings: 77, projectionDim: 16, eosTokenID: 49407),
        extractLayers: [1, 2, 3], reduceDim: 16, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 32, conditionalLayer: 1, useComplexTransposedConvolution: true, inputSize: 96)

    /// Layouts selectable by name (`--clipseg-config`).
    public static let presets: [String: CLIPSegConfig] = [
        "rd64-refined": .rd64Refined, "tiny-test": .tinyTestFullVocabulary,
    ]
}
