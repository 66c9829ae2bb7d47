/// Hyper-parameters of a CLIP vision tower, named after transformers' `CLIPVisionConfig`
/// (CLIPSeg's `CLIPSegVisionConfig` has the same fields).
/// ref: transformers/models/clip/configuration_clip.py CLIPVisionConfig
public struct CLIPVisionConfig: CLIPEncoderConfiguration, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numChannels: Int
    /// Size the position embeddings were trained at (`(imageSize / patchSize)² + 1` rows).
    public var imageSize: Int
    public var patchSize: Int
    public var hiddenAct: CLIPActivation
    public var layerNormEps: Float

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numChannels: Int = 3, imageSize: Int, patchSize: Int, hiddenAct: CLIPActivation = .quickGELU,
                layerNormEps: Float = 1e-5) {
        precondition(numAttentionHeads > 0 && hiddenSize % numAttentionHeads == 0,
                     "hidden size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        precondition(patchSize > 0, "patch size must be positive")
        self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.numChannels = numChannels; self.imageSize = imageSize; self.patchSize = patchSize
        self.hiddenAct = hiddenAct; self.layerNormEps = layerNormEps
    }

    /// Side of the trained position grid.
    public var gridSize: Int { imageSize / patchSize }
}
