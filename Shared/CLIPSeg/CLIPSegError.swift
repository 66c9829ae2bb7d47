/// Invalid inputs to the CLIPSeg model and its embedding codec. Each case carries the
/// offending values so the message alone locates the problem.
public enum CLIPSegError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Pixel values are not `[B, C, H, W]` with the model's channel count, or the sides
    /// are not positive multiples of the patch size.
    case badPixelValues(shape: [Int], patchSize: Int)
    /// No token ids, or rows of different lengths.
    case badTokenIds(reason: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int, row: Int, position: Int, vocabSize: Int)
    /// More tokens than position embeddings.
    case sequenceTooLong(length: Int, maxPositions: Int)
    /// A row without the end-of-text token the pooling reads (first-occurrence rule).
    case missingEndOfText(row: Int, eosTokenId: Int)
    /// Activations or conditional embeddings do not fit the decoder.
    case shapeMismatch(what: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .badPixelValues(shape, patch):
            return "pixel values \(shape) must be [B, 3, H, W] with H and W positive multiples of the patch size \(patch)"
        case let .badTokenIds(reason):
            return "token ids: \(reason)"
        case let .tokenOutOfRange(id, row, position, vocab):
            return "token id \(id) at row \(row), position \(position) is outside the vocabulary of \(vocab)"
        case let .sequenceTooLong(length, maxPositions):
            return "token sequence of \(length) exceeds the \(maxPositions) position embeddings"
        case let .missingEndOfText(row, eos):
            return "token row \(row) has no end-of-text token \(eos) to pool at"
        case let .shapeMismatch(what, expected, actual):
            return "\(what): expected shape \(expected), got \(actual)"
        }
    }
}
