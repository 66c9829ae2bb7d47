import Checkpoint

public enum Sam2Error: Error, Equatable, Sendable, CustomStringConvertible {
    case missingFile(path: String)
    case malformedConfig(path: String, reason: String)
    case badConfigValue(path: String, key: String, reason: String)
    case checkpoint(CheckpointError)
    /// A checkpoint whose names are neither transformers' nor the official sam2 package's.
    case unknownLayout(path: String, sample: [String])

    public var description: String {
        switch self {
        case let .missingFile(p): "SAM 2 file not found: \(p)"
        case let .malformedConfig(p, r): "SAM 2 config \(p) is malformed: \(r)"
        case let .badConfigValue(p, k, r): "SAM 2 config \(p): \(k) \(r)"
        case let .checkpoint(e): "SAM 2 checkpoint: \(e)"
        case let .unknownLayout(p, s):
            "\(p) is not a SAM 2 checkpoint: expected transformers names (vision_encoder.backbone.*) or the official "
                + "sam2 names (image_encoder.trunk.*); first names: \(s.joined(separator: ", "))"
        }
    }
}

/// Which state-dict names a checkpoint uses. Every module binds both spellings where it
/// loads its weights, so there is no separate rename table to drift.
public enum Sam2WeightNames: String, Sendable, Equatable {
    /// transformers' `Sam2Model` / `Sam2VideoModel` (`vision_encoder.backbone.blocks.N.layer_norm1`,
    /// `mask_decoder.transformer.layers.N.self_attn.o_proj`, ...): Hugging Face `facebook/sam2.1-hiera-*`.
    case transformers
    /// facebookresearch/sam2 (`image_encoder.trunk.blocks.N.norm1`, `sam_mask_decoder.transformer
    /// .layers.N.self_attn.out_proj`, ...) inside `{"model": state_dict}`: `sam2.1_hiera_*.pt`.
    case original
}
