/// Bad input to `ObjectTracker.step`, each naming what was wrong. Nothing in the state
/// changes when `step` throws one of these before decoding.
public enum TrackerError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownObject(UInt32)
    case objectExists(UInt32)
    case emptyPrompt(objectID: UInt32)
    case emptyBox(objectID: UInt32, x0: Float, y0: Float, x1: Float, y1: Float)
    case promptOutsideFrame(objectID: UInt32, what: String, value: Float, limit: Float)
    case invalidLabel(objectID: UInt32, label: Int)
    case frameSizeChanged(expected: (width: Int, height: Int), actual: (width: Int, height: Int))
    case frameOutOfOrder(last: UInt64, got: UInt64)
    case tooManyObjects(limit: Int)
    case embeddingShape([Int])
    case predictionCount(expected: Int, actual: Int)
    case predictionShape(expected: [Int], actual: [Int])
    case stateLayout(stateShapeSide: Int, stateAppearancePoints: Int)

    public static func == (a: TrackerError, b: TrackerError) -> Bool { a.description == b.description }

    public var description: String {
        switch self {
        case let .unknownObject(id): "correction for unknown object id \(id) (add it as a new object first)"
        case let .objectExists(id): "object id \(id) already exists in this stream (send a correction instead)"
        case let .emptyPrompt(id): "prompt for object \(id) has neither points nor a box"
        case let .emptyBox(id, x0, y0, x1, y1): "box (\(x0), \(y0), \(x1), \(y1)) for object \(id) is empty (needs x0 < x1 and y0 < y1)"
        case let .promptOutsideFrame(id, what, v, limit): "object \(id): \(what) = \(v) is outside the frame [0, \(limit)]"
        case let .invalidLabel(id, l): "object \(id): point label \(l) is not 1 (foreground) or 0 (background)"
        case let .frameSizeChanged(e, a): "frame is \(a.width)x\(a.height) but the stream's frames are \(e.width)x\(e.height)"
        case let .frameOutOfOrder(last, got): "frame index \(got) is not after the stream's last frame \(last)"
        case let .tooManyObjects(limit): "more than \(limit) objects in one stream"
        case let .embeddingShape(s): "image embedding has shape \(s), expected [1, C, g, g]"
        case let .predictionCount(e, a): "predict returned \(a) predictions for \(e) prompts"
        case let .predictionShape(e, a): "prediction logits have shape \(a), expected [M] + \(e)"
        case let .stateLayout(side, points): "stream state was made with shapeSide \(side), appearancePoints \(points); the tracker config differs"
        }
    }
}

/// Bytes that are not a tracker state this build can read (StreamState(serialized:)).
public enum TrackerStateError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic
    case unsupportedVersion(UInt16)
    case truncated(field: String, offset: Int)
    case invalidValue(field: String)
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .badMagic: "not a Segflow tracker state (magic \"SGTS\" missing)"
        case let .unsupportedVersion(v): "tracker state version \(v) is not supported (this build reads version \(StreamState.formatVersion))"
        case let .truncated(field, offset): "tracker state ends inside \(field) at byte \(offset)"
        case let .invalidValue(field): "tracker state has an invalid \(field)"
        case let .trailingBytes(n): "tracker state has \(n) unexpected trailing bytes"
        }
    }
}
