import CProtobufC
import CSegflowProto

/// Uncompressed RGB8 pixels, row-major, no padding.
public struct RawImage: Sendable, Hashable {
    public var rgb8: [UInt8]
    public var width: UInt32
    public var height: UInt32

    public init(rgb8: [UInt8], width: UInt32, height: UInt32) {
        self.rgb8 = rgb8
        self.width = width
        self.height = height
    }
}

/// client → `segflow.images`: one image (or video frame) to embed.
public struct ImageRequest: Sendable, Hashable {
    public enum Image: Sendable, Hashable {
        case png([UInt8])
        case raw(RawImage)
    }

    public var requestID: String
    public var imageID: String
    public var image: Image
    public var frame: VideoFrame?
    /// Empty means the encoder's default model.
    public var model: String
    /// Empty means `segflow.masks`.
    public var replyTopic: String
    public var createdAtMs: Int64
    /// In-context models: answer from registered examples instead of embedding.
    public var inContext: InContextRequest?

    public init(requestID: String, imageID: String, image: Image, frame: VideoFrame? = nil,
                model: String = "", replyTopic: String = "", createdAtMs: Int64 = 0, inContext: InContextRequest? = nil) {
        self.inContext = inContext
        self.requestID = requestID
        self.imageID = imageID
        self.image = image
        self.frame = frame
        self.model = model
        self.replyTopic = replyTopic
        self.createdAtMs = createdAtMs
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let message = arena.message(segflow__v1__image_request__init)
        message.pointee.request_id = arena.string(requestID)
        message.pointee.image_id = arena.string(imageID)
        switch image {
        case .png(let bytes):
            message.pointee.image_case = SEGFLOW__V1__IMAGE_REQUEST__IMAGE_PNG
            message.pointee.png = arena.bytes(bytes)
        case .raw(let raw):
            let c = arena.message(segflow__v1__raw_image__init)
            c.pointee.rgb8 = arena.bytes(raw.rgb8)
            c.pointee.width = raw.width
            c.pointee.height = raw.height
            message.pointee.image_case = SEGFLOW__V1__IMAGE_REQUEST__IMAGE_RAW
            message.pointee.raw = c
        }
        message.pointee.frame = frame?.c(arena)
        message.pointee.model = arena.string(model)
        message.pointee.reply_topic = arena.string(replyTopic)
        message.pointee.created_at_ms = createdAtMs
        message.pointee.in_context = inContext?.c(arena)
        return packMessage(message, size: segflow__v1__image_request__get_packed_size,
                           pack: segflow__v1__image_request__pack)
    }

    /// Decodes and validates: ids present, exactly one image, a raw image's byte count
    /// matching width × height × 3. PNG content is not inspected here (the imaging code
    /// decodes it with its own pixel-count limit).
    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "ImageRequest")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__image_request__unpack,
                                 free: segflow__v1__image_request__free_unpacked) { m in
            let image: Image
            switch m.image_case {
            case SEGFLOW__V1__IMAGE_REQUEST__IMAGE_PNG:
                let png = reader.bytes(m.png)
                if png.isEmpty { throw MessagingError.missingField(message: reader.message, field: "png") }
                image = .png(png)
            case SEGFLOW__V1__IMAGE_REQUEST__IMAGE_RAW:
                guard let raw = m.raw?.pointee else { throw MessagingError.missingField(message: reader.message, field: "raw") }
                let pixels = reader.bytes(raw.rgb8)
                if raw.width == 0 || raw.height == 0 {
                    throw reader.invalid("raw.width×height", "\(raw.width)×\(raw.height)", "dimensions must be positive", code: .invalidImage)
                }
                // 3·(2³²−1)² does not fit in Int64: a forged size must be an error, not a trap.
                let (area, o1) = Int(raw.width).multipliedReportingOverflow(by: Int(raw.height))
                let (expected, o2) = area.multipliedReportingOverflow(by: 3)
                if o1 || o2 {
                    throw reader.invalid("raw.width×height", "\(raw.width)×\(raw.height)", "width × height × 3 overflows", code: .imageTooLarge)
                }
                if pixels.count != expected {
                    throw reader.invalid("raw.rgb8", "\(pixels.count) bytes",
                                         "a \(raw.width)×\(raw.height) RGB8 image needs \(expected) bytes", code: .invalidImage)
                }
                image = .raw(RawImage(rgb8: pixels, width: raw.width, height: raw.height))
            default:
                throw MessagingError.missingField(message: reader.message, field: "image (png or raw)")
            }
            return ImageRequest(requestID: try reader.requiredString(m.request_id, "request_id"),
                                imageID: try reader.requiredString(m.image_id, "image_id"),
                                image: image,
                                frame: try VideoFrame.read(m.frame, reader, field: "frame"),
                                model: try reader.string(m.model, "model"),
                                replyTopic: try reader.string(m.reply_topic, "reply_topic"),
                                createdAtMs: m.created_at_ms,
                                inContext: try InContextRequest.read(m.in_context, reader))
        }
    }
}

/// The ids of a request whose full validation failed, read leniently (only the
/// protobuf framing must be valid), so its error result still names the request and
/// goes where the requester listens.
public struct RequestIDs: Sendable, Hashable {
    public var requestID = ""
    public var imageID = ""
    public var replyTopic = ""

    public init(requestID: String = "", imageID: String = "", replyTopic: String = "") {
        self.requestID = requestID; self.imageID = imageID; self.replyTopic = replyTopic
    }

    static func lenient(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.flatMap { String(validatingCString: $0) } ?? ""
    }

    /// Ids of an `ImageRequest`'s bytes (empty strings where unreadable).
    public static func ofImageRequest(_ bytes: [UInt8]) -> RequestIDs {
        (try? unpackMessage(bytes, name: "ImageRequest", unpack: segflow__v1__image_request__unpack,
                            free: segflow__v1__image_request__free_unpacked) { m in
            RequestIDs(requestID: lenient(m.request_id), imageID: lenient(m.image_id), replyTopic: lenient(m.reply_topic))
        }) ?? RequestIDs()
    }

    /// Ids of a `PromptRequest`'s bytes (empty strings where unreadable).
    public static func ofPromptRequest(_ bytes: [UInt8]) -> RequestIDs {
        (try? unpackMessage(bytes, name: "PromptRequest", unpack: segflow__v1__prompt_request__unpack,
                            free: segflow__v1__prompt_request__free_unpacked) { m in
            RequestIDs(requestID: lenient(m.request_id), imageID: lenient(m.image_id), replyTopic: lenient(m.reply_topic))
        }) ?? RequestIDs()
    }
}
