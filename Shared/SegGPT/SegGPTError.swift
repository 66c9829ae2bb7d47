import Checkpoint

/// Everything that can go wrong loading or running SegGPT / Painter. Each case carries the
/// offending value so the message alone locates the problem.
public enum SegGPTError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A config key holds a value of the wrong type or out of range.
    case badConfigValue(key: String, value: String, reason: String)
    /// A config file that is not a JSON object.
    case malformedConfig(path: String, reason: String)
    /// A model directory without the named file.
    case missingFile(path: String)
    /// The checkpoint does not fit the architecture (missing / unexpected / mis-shaped tensor).
    case checkpoint(CheckpointError)
    /// A checkpoint whose names are neither transformers' nor the original repository's.
    case unknownLayout(firstNames: [String])
    /// `load(kind:)` asked for one model, the checkpoint holds the other.
    case wrongKind(requested: String, checkpoint: String)
    /// In-context inputs that do not fit the call (no prompt, several prompts for Painter, ...).
    case badPrompts(reason: String)
    /// Pixel values whose shape does not fit the model's canvas.
    case badInput(what: String, expected: [Int], actual: [Int])
    /// A class index at or above the palette size.
    case classOutOfRange(index: Int, numLabels: Int)

    public var description: String {
        switch self {
        case let .badConfigValue(key, value, reason): return "config key \"\(key)\" = \(value): \(reason)"
        case let .malformedConfig(path, reason): return "config \(path): \(reason)"
        case let .missingFile(path): return "model directory has no \(path)"
        case let .checkpoint(e): return "checkpoint: \(e)"
        case let .unknownLayout(names):
            return "checkpoint names are neither transformers' SegGptForImageSegmentation nor the original SegGPT/Painter layout (first: \(names))"
        case let .wrongKind(requested, checkpoint): return "a \(requested) model was requested, the checkpoint holds \(checkpoint)"
        case let .badPrompts(reason): return "prompts: \(reason)"
        case let .badInput(what, expected, actual): return "\(what): expected shape \(expected), got \(actual)"
        case let .classOutOfRange(index, n): return "class index \(index) outside the palette of \(n) labels (+ background)"
        }
    }
}
