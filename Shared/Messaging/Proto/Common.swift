import CProtobufC
import CSegflowProto

/// Stable error codes (segflow.proto `ErrorCode`). Raw values are the wire values and
/// never change; values from newer peers survive a round trip as `.unrecognized`.
public enum ErrorCode: Sendable, Hashable, CustomStringConvertible {
    case unspecified
    case invalidProtobuf
    case invalidImage
    case imageTooLarge
    case unknownModel
    case invalidPrompt
    case embeddingNotFound
    case shapeMismatch
    case `internal`
    case invalidEmbedding
    case unsupported
    case timeout
    case promptNotFound
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .invalidProtobuf
        case 2: self = .invalidImage
        case 3: self = .imageTooLarge
        case 4: self = .unknownModel
        case 5: self = .invalidPrompt
        case 6: self = .embeddingNotFound
        case 7: self = .shapeMismatch
        case 8: self = .internal
        case 9: self = .invalidEmbedding
        case 10: self = .unsupported
        case 11: self = .timeout
        case 12: self = .promptNotFound
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: return 0
        case .invalidProtobuf: return 1
        case .invalidImage: return 2
        case .imageTooLarge: return 3
        case .unknownModel: return 4
        case .invalidPrompt: return 5
        case .embeddingNotFound: return 6
        case .shapeMismatch: return 7
        case .internal: return 8
        case .invalidEmbedding: return 9
        case .unsupported: return 10
        case .timeout: return 11
        case .promptNotFound: return 12
        case .unrecognized(let value): return value
        }
    }

    /// The proto enum value name, e.g. "INVALID_PROTOBUF" (for logs and messages).
    public var description: String {
        switch self {
        case .unspecified: return "ERROR_CODE_UNSPECIFIED"
        case .invalidProtobuf: return "INVALID_PROTOBUF"
        case .invalidImage: return "INVALID_IMAGE"
        case .imageTooLarge: return "IMAGE_TOO_LARGE"
        case .unknownModel: return "UNKNOWN_MODEL"
        case .invalidPrompt: return "INVALID_PROMPT"
        case .embeddingNotFound: return "EMBEDDING_NOT_FOUND"
        case .shapeMismatch: return "SHAPE_MISMATCH"
        case .internal: return "INTERNAL"
        case .invalidEmbedding: return "INVALID_EMBEDDING"
        case .unsupported: return "UNSUPPORTED"
        case .timeout: return "TIMEOUT"
        case .promptNotFound: return "PROMPT_NOT_FOUND"
        case .unrecognized(let value): return "ERROR_CODE_\(value)"
        }
    }

    var c: Segflow__V1__ErrorCode { Segflow__V1__ErrorCode(rawValue: numericCast(UInt32(bitPattern: rawValue))) }
    init(c: Segflow__V1__ErrorCode) { self.init(rawValue: Int32(truncatingIfNeeded: Int64(c.rawValue))) }
}

/// Element type of an embedding tensor.
public enum DType: Int32, Sendable, Hashable, CaseIterable {
    case f32 = 1
    case f16 = 2

    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// Mask encoding requested by a prompt. Unset on the wire means RLE.
public enum OutputFormat: Int32, Sendable, Hashable, CaseIterable {
    case rle = 1
    case png = 2
}

/// Identifies a frame of a video stream (frames are keyed by stream id for order).
public struct VideoFrame: Sendable, Hashable {
    public var streamID: String
    public var frameIndex: UInt64

    public init(streamID: String, frameIndex: UInt64) {
        self.streamID = streamID
        self.frameIndex = frameIndex
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__VideoFrame> {
        let frame = arena.message(segflow__v1__video_frame__init)
        frame.pointee.stream_id = arena.string(streamID)
        frame.pointee.frame_index = frameIndex
        return frame
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__VideoFrame>?, _ reader: FieldReader, field: String) throws -> VideoFrame? {
        guard let frame = pointer?.pointee else { return nil }
        return VideoFrame(streamID: try reader.requiredString(frame.stream_id, "\(field).stream_id"),
                          frameIndex: frame.frame_index)
    }
}

/// A little-endian float32 tensor (mask logits, text embeddings).
/// Invariant checked on decode: `data.count == 4 * shape.product`.
public struct FloatTensor: Sendable, Hashable {
    public var shape: [UInt32]
    /// Raw little-endian IEEE-754 binary32 bytes, row-major.
    public var data: [UInt8]

    public init(shape: [UInt32], data: [UInt8]) {
        self.shape = shape
        self.data = data
    }

    /// Builds the byte form from floats (little-endian on every host).
    public init(shape: [UInt32], values: [Float]) {
        self.shape = shape
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 4)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        self.data = bytes
    }

    /// The floats, decoded from little-endian bytes.
    public var values: [Float] {
        stride(from: 0, to: data.count - data.count % 4, by: 4).map { offset in
            let bits = UInt32(data[offset]) | UInt32(data[offset + 1]) << 8
                | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24
            return Float(bitPattern: bits)
        }
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__FloatTensor> {
        let tensor = arena.message(segflow__v1__float_tensor__init)
        tensor.pointee.n_shape = shape.count
        tensor.pointee.shape = arena.array(shape)
        tensor.pointee.data_f32le = arena.bytes(data)
        return tensor
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__FloatTensor>?, _ reader: FieldReader, field: String) throws -> FloatTensor? {
        guard let tensor = pointer?.pointee else { return nil }
        let shape = reader.array(tensor.shape, tensor.n_shape)
        let data = reader.bytes(tensor.data_f32le)
        if shape.isEmpty || shape.contains(0) {
            throw reader.invalid("\(field).shape", shape, "every dimension must be positive and the shape non-empty", code: .shapeMismatch)
        }
        guard let expected = byteCount(shape: shape, elementSize: 4), expected == data.count else {
            throw reader.invalid("\(field).data_f32le", "\(data.count) bytes",
                                 "shape \(shape) needs \(byteCount(shape: shape, elementSize: 4).map(String.init) ?? "an overflowing number of") bytes of float32",
                                 code: .shapeMismatch)
        }
        return FloatTensor(shape: shape, data: data)
    }
}
