import Checkpoint
import NN
import Tensor

/// Painter: SegGPT's skeleton without type tokens and without feature ensembling (one
/// prompt pair per query). The released checkpoint (`painter_vit_large.pth`) uses the
/// original names, so that is the only layout.
/// ref: Painter/models_painter.py Painter (forward_encoder, forward_decoder);
///      painter_vit_large_patch16_input896x448_win_dec64_8glb_sl1 (the official
///      `window_block_indexes` is a tuple of lists, so no block is windowed)
public struct Painter: Sendable {
    public let config: SegGptConfig
    public let model: SegGptModel
    public let decoder: SegGptDecoder

    public init(_ vb: WeightLoader, config c: SegGptConfig) throws(CheckpointError) {
        config = c
        model = try SegGptModel(vb, config: c, names: .original, typeTokens: false)
        decoder = try SegGptDecoder(vb, config: c, names: .original)
    }

    /// The whole canvas `[1, 3, H, W]` for one prompt pair (`pixelValues` = the query).
    public func callAsFunction(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor) throws(SegGPTError) -> Tensor {
        let f = try features(pixelValues: pixelValues, promptPixelValues: promptPixelValues, promptMasks: promptMasks)
        return decoder(f, rows: 0..<config.gridSize.h).reshaped([1, 3, config.imageSize.h, config.imageSize.w])
    }

    /// The query half `[3, h, w]` (normalised space), decoding only that half.
    public func predictQueryHalf(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor) throws(SegGPTError) -> Tensor {
        let f = try features(pixelValues: pixelValues, promptPixelValues: promptPixelValues, promptMasks: promptMasks)
        let gh = config.gridSize.h
        return decoder(f, rows: (gh / 2)..<gh)
    }

    func features(pixelValues: Tensor, promptPixelValues: Tensor, promptMasks: Tensor) throws(SegGPTError) -> [Tensor] {
        guard promptPixelValues.shape.first == 1 else {
            throw .badPrompts(reason: "Painter takes exactly one prompt pair, got \(promptPixelValues.shape.first ?? 0)")
        }
        return try model(pixelValues: pixelValues, promptPixelValues: promptPixelValues, promptMasks: promptMasks,
                         embeddingType: .instance, featureEnsemble: false)
    }
}
