/// Why a wire message was rejected. Every case names the offending field or value so a
/// service can put the message verbatim into an error result and a dead-letter record.
public enum MessagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// protobuf-c could not parse the bytes at all (truncated, bad tag, bad varint,
    /// wrong wire type...). protobuf-c does not say where, so we report the size.
    case invalidProtobuf(message: String, byteCount: Int)
    /// The bytes parsed but a field Segflow needs is absent or empty.
    case missingField(message: String, field: String)
    /// A field is present but its value cannot be used; `code` is the stable error code
    /// a service should report for it.
    case invalidField(message: String, field: String, value: String, reason: String, code: ErrorCode)
    /// A chunk of a chunked embedding disagrees with the chunks seen before it.
    case inconsistentChunk(imageID: String, requestID: String, reason: String)

    /// The stable code a service reports to the requester for this error.
    public var errorCode: ErrorCode {
        switch self {
        case .invalidProtobuf, .missingField: return .invalidProtobuf
        case .invalidField(_, _, _, _, let code): return code
        case .inconsistentChunk: return .invalidEmbedding
        }
    }

    public var description: String {
        switch self {
        case let .invalidProtobuf(message, byteCount):
            return "invalid protobuf: \(byteCount) bytes do not decode as segflow.v1.\(message)"
        case let .missingField(message, field):
            return "segflow.v1.\(message): required field '\(field)' is missing or empty"
        case let .invalidField(message, field, value, reason, _):
            return "segflow.v1.\(message): field '\(field)' = \(value): \(reason)"
        case let .inconsistentChunk(imageID, requestID, reason):
            return "embedding chunk for image_id '\(imageID)' request_id '\(requestID)': \(reason)"
        }
    }
}
