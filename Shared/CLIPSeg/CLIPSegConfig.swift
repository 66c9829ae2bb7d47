/// Hyper-parameters of transformers' `CLIPSegForImageSegmentation`, split the same way as
/// upstream (`CLIPSegConfig` with `text_config` and `vision_config`).
/// ref: transformers/models/clipseg/configuration_clipseg.py
public struct CLIPSegConfig: Sendable, Equatable {
    /// ref: configuration_clipseg.py CLIPSegVisionConfig
    public struct Vision: Sendable, Equatable {
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var numHiddenLayers: Int
        public var numAttentionHeads: Int
        public var numChannels: Int
        /// Size the position embeddings were trained at (`(imageSize / patchSize)² + 1` rows).
        public var imageSize: Int
        public var patchSize: Int
        public var layerNormEps: Float

        public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                    numChannels: Int = 3, imageSize: Int, patchSize: Int, layerNormEps: Float = 1e-5) {
            self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
            self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
            self.numChannels = numChannels; self.imageSize = imageSize; self.patchSize = patchSize
            self.layerNormEps = layerNormEps
        }

        /// Side of the trained position grid.
        public var gridSize: Int { imageSize / patchSize }
    }

    /// ref: configuration_clipseg.py CLIPSegTextConfig
    public struct Text: Sendable, Equatable {
        public var vocabSize: Int
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var numHiddenLayers: Int
        public var numAttentionHeads: Int
        public var maxPositionEmbeddings: Int
        public var layerNormEps: Float
        /// Decides the pooling rule (see `CLIPSegTextTransformer.pooledIndex`): `2` means the
        /// legacy "argmax of the ids" rule (configs written before transformers PR #24773,
        /// including CIDAS/clipseg-rd64-refined), anything else "first occurrence of this id".
        public var eosTokenId: Int

        public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                    numAttentionHeads: Int, maxPositionEmbeddings: Int, layerNormEps: Float = 1e-5, eosTokenId: Int) {
            self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
            self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
            self.maxPositionEmbeddings = maxPositionEmbeddings; self.layerNormEps = layerNormEps
            self.eosTokenId = eosTokenId
        }
    }

    public var vision: Vision
    public var text: Text
    public var projectionDim: Int
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

    public init(vision: Vision, text: Text, projectionDim: Int, extractLayers: [Int], reduceDim: Int,
                decoderNumAttentionHeads: Int, decoderIntermediateSize: Int, conditionalLayer: Int,
                useComplexTransposedConvolution: Bool, inputSize: Int) {
        self.vision = vision; self.text = text; self.projectionDim = projectionDim
        self.extractLayers = extractLayers; self.reduceDim = reduceDim
        self.decoderNumAttentionHeads = decoderNumAttentionHeads; self.decoderIntermediateSize = decoderIntermediateSize
        self.conditionalLayer = conditionalLayer; self.useComplexTransposedConvolution = useComplexTransposedConvolution
        self.inputSize = inputSize
    }

    /// CIDAS/clipseg-rd64-refined: CLIP ViT-B/16 (position grid 14×14, run at 352×352 → 22×22),
    /// CLIP text transformer, FiLM decoder with 64 channels and the "complex" upsampling head.
    /// Values: the hub config.json (extract_layers, reduce_dim, patch 16, complex conv,
    /// text eos_token_id 2) over configuration_clipseg.py's defaults; 352 from the hub's
    /// preprocessor_config.json.
    public static let rd64Refined = CLIPSegConfig(
        vision: Vision(hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12, numAttentionHeads: 12,
                       imageSize: 224, patchSize: 16),
        text: Text(vocabSize: 49408, hiddenSize: 512, intermediateSize: 2048, numHiddenLayers: 12,
                   numAttentionHeads: 8, maxPositionEmbeddings: 77, eosTokenId: 2),
        projectionDim: 512, extractLayers: [3, 6, 9], reduceDim: 64, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 2048, conditionalLayer: 0, useComplexTransposedConvolution: true, inputSize: 352)

    /// The tiny random model of Tests/Reference/make_clipseg_fixtures.py (4×4 trained position
    /// grid run at 96×96, eos 998 with a higher "added" token 999, FiLM at decoder layer 1).
    public static let tinyTest = CLIPSegConfig(
        vision: Vision(hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 4, numAttentionHeads: 4,
                       imageSize: 64, patchSize: 16),
        text: Text(vocabSize: 1000, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
                   numAttentionHeads: 4, maxPositionEmbeddings: 16, eosTokenId: 998),
        projectionDim: 16, extractLayers: [1, 2, 3], reduceDim: 16, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 32, conditionalLayer: 1, useComplexTransposedConvolution: true, inputSize: 96)
}

extension CLIPSegConfig {
    /// The tiny test layout with CLIP's real 49,408-token vocabulary, 77 positions and
    /// end-of-text 49407: small enough for service tests, yet fed by the real tokenizer.
    public static let tinyTestFullVocabulary = CLIPSegConfig(
        vision: tinyTest.vision,
        text: Text(vocabSize: 49408, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2,
                   numAttentionHeads: 4, maxPositionEmbeddings: 77, eosTokenId: 49407),
        projectionDim: 16, extractLayers: [1, 2, 3], reduceDim: 16, decoderNumAttentionHeads: 4,
        decoderIntermediateSize: 32, conditionalLayer: 1, useComplexTransposedConvolution: true, inputSize: 96)

    /// Layouts selectable by name (`--clipseg-config`).
    public static let presets: [String: CLIPSegConfig] = [
        "rd64-refined": .rd64Refined, "tiny-test": .tinyTestFullVocabulary,
    ]
}
