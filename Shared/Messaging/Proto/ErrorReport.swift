import CProtobufC
import CSegflowProto

/// any service → `segflow.dead-letter`: where a bad record came from and why it failed,
/// so nothing bad disappears silently and it can be replayed or inspected later.
public struct ErrorReport: Sendable, Hashable {
    /// Default cap for `payload`; the dead-letter topic must stay under 1 MiB records.
    public static let defaultPayloadLimit = 64 * 1024

    public var sourceTopic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]
    public var code: ErrorCode
    public var message: String
    public var service: String
    /// The offending record value, truncated to a limit (see `payloadTruncated`).
    public var payload: [UInt8]
    public var payloadTruncated: Bool
    /// Size of the whole offending value.
    public var payloadSize: UInt64
    /// Empty when it could not be recovered from the record.
    public var requestID: String
    public var reportedAtMs: Int64

    public init(sourceTopic: String, partition: Int32, offset: Int64, key: [UInt8], code: ErrorCode,
                message: String, service: String, payload: [UInt8], payloadTruncated: Bool, payloadSize: UInt64,
                requestID: String = "", reportedAtMs: Int64 = 0) {
        self.sourceTopic = sourceTopic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.code = code
        self.message = message
        self.service = service
        self.payload = payload
        self.payloadTruncated = payloadTruncated
        self.payloadSize = payloadSize
        self.requestID = requestID
        self.reportedAtMs = reportedAtMs
    }

    /// Builds a report from the offending record, keeping at most `payloadLimit` bytes.
    public init(sourceTopic: String, partition: Int32, offset: Int64, key: [UInt8], code: ErrorCode,
                message: String, service: String, fullPayload: [UInt8],
                payloadLimit: Int = ErrorReport.defaultPayloadLimit, requestID: String = "", reportedAtMs: Int64 = 0) {
        let kept = Array(fullPayload.prefix(max(0, payloadLimit)))
        self.init(sourceTopic: sourceTopic, partition: partition, offset: offset, key: key, code: code,
                  message: message, service: service, payload: kept, payloadTruncated: kept.count < fullPayload.count,
                  payloadSize: UInt64(fullPayload.count), requestID: requestID, reportedAtMs: reportedAtMs)
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__error_report__init)
        m.pointee.source_topic = arena.string(sourceTopic)
        m.pointee.partition = partition
        m.pointee.offset = offset
        m.pointee.key = arena.bytes(key)
        m.pointee.code = code.c
        m.pointee.message = arena.string(message)
        m.pointee.service = arena.string(service)
        m.pointee.payload = arena.bytes(payload)
        m.pointee.payload_truncated = payloadTruncated ? 1 : 0
        m.pointee.payload_size = payloadSize
        m.pointee.request_id = arena.string(requestID)
        m.pointee.reported_at_ms = reportedAtMs
        return packMessage(m, size: segflow__v1__error_report__get_packed_size,
                           pack: segflow__v1__error_report__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "ErrorReport")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__error_report__unpack,
                                 free: segflow__v1__error_report__free_unpacked) { m in
            let code = ErrorCode(c: m.code)
            if code == .unspecified {
                throw reader.invalid("code", code, "a dead-letter record needs an error code", code: .invalidProtobuf)
            }
            let payload = reader.bytes(m.payload)
            if UInt64(payload.count) > m.payload_size {
                throw reader.invalid("payload_size", m.payload_size, "smaller than the \(payload.count) payload bytes carried", code: .invalidProtobuf)
            }
            return ErrorReport(sourceTopic: try reader.requiredString(m.source_topic, "source_topic"),
                               partition: m.partition, offset: m.offset, key: reader.bytes(m.key), code: code,
                               message: try reader.string(m.message, "message"),
                               service: try reader.requiredString(m.service, "service"),
                               payload: payload, payloadTruncated: m.payload_truncated != 0, payloadSize: m.payload_size,
                               requestID: try reader.string(m.request_id, "request_id"),
                               reportedAtMs: m.reported_at_ms)
        }
    }
}
