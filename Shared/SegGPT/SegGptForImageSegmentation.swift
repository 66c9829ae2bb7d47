import Checkpoint
import NN
import Tensor

/// Embeddings + encoder: canvases in, decoder features out.
/// ref: modeling_seggpt.py SegGptModel
public struct SegGptModel: Sendable {
    public let config: SegGptConfig
    public let embeddings: SegGptEmbeddings
    public let encoder: SegGptEncoder

    /// `vb` is the model's scope: `model` for transformers names, the root for the original.
    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames, typeTokens: Bool = true) throws(CheckpointError) {
        config = c
        switch names {
        case .transformers:
            embeddings = try SegGptEmbeddings(vb.pp("embeddings"), config: c, names: names, typeTokens: typeTokens)
            encoder = try SegGptEncoder(vb.pp("encoder"), config: c, names: names)
        case .original:
            embeddings = try SegGptEmbeddings(vb, config: c, names: names, typeTokens: typeTokens)
            encoder = try SegGptEncoder(vb, config: c, names: names)
        }
    }

    /// Stacks prompt over query (transformers' `torch.cat(..., dim=2)`) and runs the encoder.
    /// - Parameters: `pixelValues` (queries), `promptPixelValues`, `promptMasks`: `[N, 3, h, w]`
    ///   half-canvas images, one row per prompt (the query repeated).
    /// - Returns: the decoder features, each `[N, gh·gw, C]`.
    public func callAsFunction(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor,
                               embeddingType: SegGptEmbeddingType = .instance, featureEnsemble: Bool) throws(SegGPTError) -> [Tensor] {
        let (hh, hw) = config.halfImageSize
        let n = promptPixelValues.shape.first ?? 0
        let expected = [n, config.numChannels, hh, hw]
        guard n > 0 else { throw .badPrompts(reason: "no prompt") }
        for (what, t) in [("pixel values", pixelValues), ("prompt pixel values", promptPixelValues), ("prompt masks", promptMasks)] {
            guard t.shape == expected else { throw .badInput(what: what, expected: expected, actual: t.shape) }
        }
        let images = Ops.concat([promptPixelValues, pixelValues], axis: 2)
        let masks = Ops.concat([promptMasks, promptMasks], axis: 2)  // the query half is masked anyway
        let e = embeddings(pixelValues: images, promptPixelValues: masks, embeddingType: embeddingType)
        return encoder(e, featureEnsemble: featureEnsemble)
    }
}

/// SegGPT: `SegGptModel` + `SegGptDecoder`. Loads transformers names (BAAI/seggpt-vit-large)
/// or the original `seggpt_vit_large.pth` names.
/// ref: modeling_seggpt.py SegGptForImageSegmentation; models_seggpt.py SegGPT
public struct SegGptForImageSegmentation: Sendable {
    public let config: SegGptConfig
    public let model: SegGptModel
    public let decoder: SegGptDecoder

    /// Builds from the checkpoint root; call `vb.finish()` afterwards to reject leftovers.
    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        config = c
        switch names {
        case .transformers:
            model = try SegGptModel(vb.pp("model"), config: c, names: names)
            decoder = try SegGptDecoder(vb.pp("decoder"), config: c, names: names)
        case .original:
            model = try SegGptModel(vb, config: c, names: names)
            decoder = try SegGptDecoder(vb, config: c, names: names)
        }
    }

    /// transformers' `pred_masks`: `[N, 3, H, W]` for the whole canvas (prompt half included).
    /// `featureEnsemble` as transformers' flag (it only acts with two or more prompts).
    public func callAsFunction(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor,
                               embeddingType: SegGptEmbeddingType = .instance,
                               featureEnsemble: Bool = false) throws(SegGPTError) -> Tensor {
        let f = try model(pixelValues: pixelValues, promptPixelValues: promptPixelValues, promptMasks: promptMasks,
                          embeddingType: embeddingType, featureEnsemble: featureEnsemble)
        let gh = config.gridSize.h
        let n = f[0].shape[0]
        return Ops.concat((0..<n).map { decoder(f, entry: $0, rows: 0..<gh).reshaped([1, 3, config.imageSize.h, config.imageSize.w]) },
                          axis: 0)
    }

    /// The query half of entry 0's prediction, `[3, h, w]` (normalised space) — what the
    /// original's `run_one_image` reads. Several prompts are ensembled (original rule);
    /// only the query half is decoded.
    public func predictQueryHalf(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor,
                                 embeddingType: SegGptEmbeddingType = .instance) throws(SegGPTError) -> Tensor {
        let f = try model(pixelValues: pixelValues, promptPixelValues: promptPixelValues, promptMasks: promptMasks,
                          embeddingType: embeddingType, featureEnsemble: true)
        let gh = config.gridSize.h
        return decoder(f, entry: 0, rows: (gh / 2)..<gh)
    }
}
