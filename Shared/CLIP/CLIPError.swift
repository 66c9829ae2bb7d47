import Checkpoint

/// Everything the CLIP tokenizer, text tower and vision tower report. Cases carry the
/// offending value.
public enum CLIPError: Error, Equatable, Sendable {
    /// The BPE vocabulary file is missing, not gzip, or not the expected merge list.
    case vocabularyUnreadable(reason: String)
    /// No checkpoint file at `path`.
    case checkpointNotFound(path: String)
    /// The checkpoint does not look like a CLIP text tower (`reason` says what is missing).
    case unrecognisedCheckpoint(path: String, reason: String)
    /// Reading or binding the checkpoint failed (missing/mis-shaped/unused tensor, …).
    case checkpoint(CheckpointError)
    /// An unknown `hidden_act` name.
    case unsupportedActivation(name: String)
    /// `texts[index]` is empty or only whitespace after cleaning.
    case emptyText(index: Int)
    /// `texts[index]` consists only of special tokens (`<start_of_text>` / `<end_of_text>`
    /// typed literally), so there is nothing to encode.
    case onlySpecialTokens(index: Int, text: String)
    /// `texts[index]` needs `tokens` positions (with start and end token) but the model has
    /// `limit`; raised only when the encoder is told to reject instead of truncate.
    case textTooLong(index: Int, tokens: Int, limit: Int)
    /// A token id outside the model's vocabulary, at `position` of token row `row` (for
    /// `CLIPTextEncoder`, the row is the text's index).
    case tokenOutOfRange(id: Int, row: Int, position: Int, vocabularySize: Int)
    /// A token sequence longer than the model's position table, or empty.
    case invalidSequenceLength(length: Int, maxPositions: Int)
    /// Token rows of different lengths in one batch (pad them to one length).
    case raggedTokenRows(lengths: [Int])
    /// Token row `row` has no end-of-text token `eosTokenID` to pool at (only checked when
    /// `eos_token_id != 2`; see `CLIPTextTransformer.pooledIndex`).
    case missingEndOfText(row: Int, eosTokenID: Int)
    /// Pixel values are not `[B, channels, H, W]` with H and W positive multiples of the
    /// patch size.
    case badPixelValues(shape: [Int], channels: Int, patchSize: Int)
}

extension CLIPError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .vocabularyUnreadable(reason): return "CLIP BPE vocabulary unreadable: \(reason)"
        case let .checkpointNotFound(path): return "CLIP checkpoint not found: '\(path)'"
        case let .unrecognisedCheckpoint(path, reason): return "'\(path)' is not a CLIP text checkpoint: \(reason)"
        case let .checkpoint(error): return "CLIP checkpoint: \(error)"
        case let .unsupportedActivation(name): return "unsupported CLIP hidden_act '\(name)' (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)"
        case let .emptyText(index): return "text #\(index) is empty after cleaning"
        case let .onlySpecialTokens(index, text): return "text #\(index) ('\(text.prefix(80))') contains only special tokens"
        case let .textTooLong(index, tokens, limit):
            return "text #\(index) needs \(tokens) tokens including start/end, the model takes \(limit)"
        case let .tokenOutOfRange(id, row, position, vocabularySize):
            return "token id \(id) at row \(row), position \(position) is outside the vocabulary (size \(vocabularySize))"
        case let .invalidSequenceLength(length, maxPositions):
            return "token sequence of length \(length); the model takes 1...\(maxPositions)"
        case let .raggedTokenRows(lengths): return "token rows have different lengths \(lengths); pad them to one length"
        case let .missingEndOfText(row, eos): return "token row \(row) has no end-of-text token \(eos) to pool at"
        case let .badPixelValues(shape, channels, patch):
            return "pixel values \(shape) must be [B, \(channels), H, W] with H and W positive multiples of the patch size \(patch)"
        }
    }
}

extension CLIPError {
    /// The same error reported for token row `row` (the text encoder runs each text as row 0
    /// of its own batch and reports the text's index instead).
    func inRow(_ row: Int) -> CLIPError {
        switch self {
        case let .tokenOutOfRange(id, _, position, size): return .tokenOutOfRange(id: id, row: row, position: position, vocabularySize: size)
        case let .missingEndOfText(_, eos): return .missingEndOfText(row: row, eosTokenID: eos)
        default: return self
        }
    }
}
