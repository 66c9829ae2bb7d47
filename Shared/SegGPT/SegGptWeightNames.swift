/// Which state-dict names a checkpoint uses. Every module writes both spellings where it
/// binds its weights, so there is no separate rename table to drift.
public enum SegGptWeightNames: String, Sendable, Equatable {
    /// transformers' `SegGptForImageSegmentation` (`model.embeddings.*`,
    /// `model.encoder.layers.N.attention.qkv`, `decoder.decoder_pred.conv`, ...):
    /// Hugging Face BAAI/seggpt-vit-large.
    case transformers
    /// baaivision/Painter's `models_seggpt.py` / `models_painter.py` (`patch_embed.proj`,
    /// `blocks.N.attn.qkv`, `decoder_pred.0`, ...): `seggpt_vit_large.pth`, `painter_vit_large.pth`.
    case original
}

/// Which type token the embeddings add: the prompt's masks are per-instance or per-class.
/// (The original codes them as `seg_type` 1 / 0 → `type_token_ins` / `type_token_cls`.)
public enum SegGptEmbeddingType: String, Sendable, Equatable, CaseIterable {
    case instance, semantic
}
