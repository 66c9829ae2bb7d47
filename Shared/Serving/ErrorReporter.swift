import Backends
import Foundation
import Logging
import Messaging
import Pipeline

/// Bad input never kills a service and never disappears: each failure becomes an error
/// MaskResult for the requester and an ErrorReport on the dead-letter topic with the
/// record's source coordinates.
public struct ErrorReporter: Sendable {
    public let producer: Producer
    public let topics: ServingTopics
    public let service: String
    public let logger: Logger
    /// Counts every report and dead letter by code (`segflow_errors_total`).
    public let metrics: ServingMetrics

    public init(producer: Producer, topics: ServingTopics, service: String, logger: Logger, metrics: ServingMetrics? = nil) {
        self.producer = producer; self.topics = topics; self.service = service; self.logger = logger
        self.metrics = metrics ?? ServingMetrics(service: service)
    }


    public func report(_ error: ServingError, record: ConsumedMessage, requestID: String, imageID: String,
                       replyTopic: String, model: String = "", frame: VideoFrame? = nil) async throws {
        var log = logger
        log[metadataKey: LogKey.requestID] = "\(requestID)"
        log[metadataKey: LogKey.topic] = "\(record.topic)"
        log[metadataKey: LogKey.partition] = "\(record.partition)"
        log[metadataKey: LogKey.offset] = "\(record.offset)"
        log[metadataKey: LogKey.errorCode] = "\(error.code)"
        log.warning("rejected: \(error.message)")
        metrics.error(error.code)
        let result = MaskResult(requestID: requestID, imageID: imageID, error: .init(code: error.code, message: error.message),
                                model: model, frame: frame)
        // An unusable reply topic (illegal, or one of the services' own) falls back to masks.
        let reply = (try? topics.reply(to: replyTopic)) ?? topics.masks
        _ = try await producer.send([
            deadLetterRecord(error, record: record, requestID: requestID),
            ProducerRecord(topic: reply, key: imageID.isEmpty ? requestID : imageID, value: result.encode(),
                           headers: [.contentType(protobuf: "MaskResult"), .requestID(requestID)] + record.traceHeaders),
        ])
    }
}

extension ErrorReporter {
    /// An error answer for a record whose request may not have decoded: the ids read
    /// leniently from the body, else from the request-id header and the key.
    public func report(_ error: ServingError, record: ConsumedMessage, ids: RequestIDs) async {
        let ids = ids.filling(from: record)
        try? await report(error, record: record, requestID: ids.requestID, imageID: ids.imageID, replyTopic: ids.replyTopic)
    }

    /// The one dead-letter record builder: the source coordinates, the code and message,
    /// the payload (truncated to `ErrorReport.defaultPayloadLimit`), request and trace ids.
    public func deadLetterRecord(_ error: ServingError, record: ConsumedMessage, requestID: String) -> ProducerRecord {
        let limit = Messaging.ErrorReport.defaultPayloadLimit
        let dead = Messaging.ErrorReport(sourceTopic: record.topic, partition: record.partition, offset: record.offset,
                                         key: record.key ?? [], code: error.code, message: error.message, service: service,
                                         payload: Array(record.value.prefix(limit)), payloadTruncated: record.value.count > limit,
                                         payloadSize: UInt64(record.value.count), requestID: requestID, reportedAtMs: Timing.wallMs())
        return ProducerRecord(topic: topics.deadLetter, key: record.key, value: dead.encode(),
                              headers: [.contentType(protobuf: "ErrorReport"), .requestID(requestID)] + record.traceHeaders)
    }

    /// A record nobody can be answered for (e.g. a corrupt embedding): dead letter only.
    public func deadLetter(_ error: ServingError, record: ConsumedMessage, requestID: String) async throws {
        metrics.error(error.code)
        _ = try await producer.send(deadLetterRecord(error, record: record, requestID: requestID))
    }
}
