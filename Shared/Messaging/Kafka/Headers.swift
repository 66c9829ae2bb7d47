/// A Kafka record header. Kafka allows repeated names and null values.
public struct KafkaHeader: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]?

    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }

    /// The value as UTF-8 text, nil when null or not UTF-8.
    public var stringValue: String? {
        value.flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Header names every Segflow record carries.
    public static let contentTypeName = "content-type"
    public static let requestIDName = "request-id"
    public static let traceIDName = "trace-id"
    /// On an empty record of the embeddings topic: an encoder started encoding this image id
    /// (a progress notice; decoders let the image's parked prompts wait on).
    public static let encodingName = "segflow-encoding"

    /// content-type for a segflow.v1 protobuf message, e.g. "application/x-protobuf; messageType=segflow.v1.ImageRequest".
    public static func contentType(protobuf messageName: String) -> KafkaHeader {
        KafkaHeader(name: contentTypeName, string: "application/x-protobuf; messageType=segflow.v1.\(messageName)")
    }

    public static func requestID(_ id: String) -> KafkaHeader { KafkaHeader(name: requestIDName, string: id) }
    public static func traceID(_ id: String) -> KafkaHeader { KafkaHeader(name: traceIDName, string: id) }
}

extension Array where Element == KafkaHeader {
    /// The last value for `name` as a string (Kafka convention: later headers win).
    public func string(named name: String) -> String? {
        last { $0.name == name }?.stringValue
    }
}

extension RequestIDs {
    /// Empty ids filled from the record: the request-id header and the key. (Here, not
    /// with the Proto code, which builds without Kafka — the fuzz harnesses compile it alone.)
    public func filling(from record: ConsumedMessage) -> RequestIDs {
        RequestIDs(requestID: requestID.isEmpty ? record.headers.string(named: KafkaHeader.requestIDName) ?? "" : requestID,
                   imageID: imageID.isEmpty ? record.keyString ?? "" : imageID, replyTopic: replyTopic)
    }
}
