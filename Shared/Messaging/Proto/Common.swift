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
    case streamNotFound
    case frameOutOfOrder
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
        case 13: self = .streamNotFound
        case 14: self = .frameOutOfOrder
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
        case .streamNotFound: return 13
        case .frameOutOfOrder: return 14
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
        case .streamNotFound: return "STREAM_NOT_FOUND"
        case .frameOutOfOrder: return "FRAME_OUT_OF_ORDER"
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
    /// Present: the prompt-decoder tracks the stream (README, Streams).
    public var track: StreamTrack?

    public init(streamID: String, frameIndex: UInt64, track: StreamTrack? = nil) {
        self.streamID = streamID
        self.frameIndex = frameIndex
        self.track = track
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__VideoFrame> {
        let frame = arena.message(segflow__v1__video_frame__init)
        frame.pointee.stream_id = arena.string(streamID)
        frame.pointee.frame_index = frameIndex
        frame.pointee.track = track?.c(arena)
        return frame
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__VideoFrame>?, _ reader: FieldReader, field: String) throws -> VideoFrame? {
        guard let frame = pointer?.pointee else { return nil }
        return VideoFrame(streamID: try reader.requiredString(frame.stream_id, "\(field).stream_id"),
                          frameIndex: frame.frame_index,
                          track: try StreamTrack.read(frame.track, reader, field: "\(field).track"))
    }
}

/// Decoder-side tracking of one frame (segflow.proto `StreamTrack`).
public struct StreamTrack: Sendable, Hashable {
    /// Most objects one stream may track: bounds the decoder's work and state per frame.
    public static let maxObjects = 16

    public var objects: [ObjectPrompt]
    public var removeObjects: [UInt32]
    public var endOfStream: Bool
    /// Empty means `segflow.masks`.
    public var replyTopic: String
    public var outputFormat: OutputFormat

    public init(objects: [ObjectPrompt] = [], removeObjects: [UInt32] = [], endOfStream: Bool = false,
                replyTopic: String = "", outputFormat: OutputFormat = .rle) {
        self.objects = objects; self.removeObjects = removeObjects; self.endOfStream = endOfStream
        self.replyTopic = replyTopic; self.outputFormat = outputFormat
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__StreamTrack> {
        let t = arena.message(segflow__v1__stream_track__init)
        let objs: [UnsafeMutablePointer<Segflow__V1__ObjectPrompt>?] = objects.map { $0.c(arena) }
        t.pointee.n_objects = objs.count
        t.pointee.objects = arena.array(objs)
        t.pointee.n_remove_objects = removeObjects.count
        t.pointee.remove_objects = arena.array(removeObjects)
        t.pointee.end_of_stream = endOfStream ? 1 : 0
        t.pointee.reply_topic = arena.string(replyTopic)
        t.pointee.output_format = Segflow__V1__OutputFormat(rawValue: numericCast(outputFormat.rawValue))
        return t
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__StreamTrack>?, _ reader: FieldReader, field: String) throws -> StreamTrack? {
        guard let t = pointer?.pointee else { return nil }
        let objects = try reader.messages(t.objects, t.n_objects, "\(field).objects").enumerated().map { i, o in
            try ObjectPrompt.read(o, reader, field: "\(field).objects[\(i)]")
        }
        let removed = reader.array(t.remove_objects, t.n_remove_objects)
        if objects.count > maxObjects || removed.count > maxObjects {
            throw reader.invalid("\(field).objects", "\(objects.count) objects, \(removed.count) removals",
                                 "at most \(maxObjects) of each per frame", code: .invalidPrompt)
        }
        if let zero = objects.first(where: { $0.objectID == 0 }) {
            throw reader.invalid("\(field).objects.object_id", zero.objectID, "object ids start at 1 (0 is the background)", code: .invalidPrompt)
        }
        if Set(objects.map(\.objectID)).count != objects.count {
            throw reader.invalid("\(field).objects.object_id", objects.map(\.objectID), "an object id appears twice on one frame", code: .invalidPrompt)
        }
        let rawFormat = Int32(truncatingIfNeeded: Int64(t.output_format.rawValue))
        guard rawFormat == 0 || OutputFormat(rawValue: rawFormat) != nil else {
            throw reader.invalid("\(field).output_format", rawFormat, "expected OUTPUT_FORMAT_RLE (1) or OUTPUT_FORMAT_PNG (2)", code: .unsupported)
        }
        return StreamTrack(objects: objects, removeObjects: removed, endOfStream: t.end_of_stream != 0,
                           replyTopic: try reader.string(t.reply_topic, "\(field).reply_topic"),
                           outputFormat: OutputFormat(rawValue: rawFormat) ?? .rle)
    }
}

/// One object's prompt on a frame (segflow.proto `ObjectPrompt`): points and/or a box in
/// the frame's pixels. Coordinates are checked against the frame by the decoder.
public struct ObjectPrompt: Sendable, Hashable {
    public var objectID: UInt32
    public var points: [PromptRequest.Point]
    public var box: PromptRequest.Box?

    public init(objectID: UInt32, points: [PromptRequest.Point] = [], box: PromptRequest.Box? = nil) {
        self.objectID = objectID; self.points = points; self.box = box
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__ObjectPrompt> {
        let o = arena.message(segflow__v1__object_prompt__init)
        o.pointee.object_id = objectID
        let pts: [UnsafeMutablePointer<Segflow__V1__Point>?] = points.map { p in
            let c = arena.message(segflow__v1__point__init)
            c.pointee.x = p.x; c.pointee.y = p.y; c.pointee.label = p.label
            return c
        }
        o.pointee.n_points = pts.count
        o.pointee.points = arena.array(pts)
        if let b = box {
            let c = arena.message(segflow__v1__box__init)
            c.pointee.x0 = b.x0; c.pointee.y0 = b.y0; c.pointee.x1 = b.x1; c.pointee.y1 = b.y1
            o.pointee.box = c
        }
        return o
    }

    static func read(_ o: Segflow__V1__ObjectPrompt, _ reader: FieldReader, field: String) throws -> ObjectPrompt {
        let points = try reader.messages(o.points, o.n_points, "\(field).points").map { PromptRequest.Point(x: $0.x, y: $0.y, label: $0.label) }
        if points.count > 64 {
            throw reader.invalid("\(field).points", points.count, "at most 64 points per object", code: .invalidPrompt)
        }
        let box = o.box.map { PromptRequest.Box(x0: $0.pointee.x0, y0: $0.pointee.y0, x1: $0.pointee.x1, y1: $0.pointee.y1) }
        if points.isEmpty && box == nil {
            throw reader.invalid("\(field)", "object \(o.object_id)", "an object prompt needs points or a box", code: .invalidPrompt)
        }
        return ObjectPrompt(objectID: o.object_id, points: points, box: box)
    }
}

/// How a tracked object's mask was obtained (segflow.proto `TrackStatus`).
public enum TrackStatus: Int32, Sendable, Hashable, CaseIterable {
    case none = 0, tracked = 1, started = 2, reacquired = 3, lost = 4
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
