/// Invalid inputs to CLIPSeg's decoder. Each case carries the offending values so the
/// message alone locates the problem. (The towers are CLIP's: bad token ids or pixel
/// values are reported as `CLIPError`.)
public enum CLIPSegError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Activations or conditional embeddings do not fit the decoder.
    case shapeMismatch(what: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .shapeMismatch(what, expected, actual):
            return "\(what): expected shape \(expected), got \(actual)"
        }
    }
}
