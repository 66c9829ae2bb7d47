import Backends
import Logging
import Messaging
import ServiceLifecycle

/// The loop every Segflow service runs: take records one at a time, hand each to
/// `handle` (which answers it, possibly with an error result), then — if `commitEach` —
/// commit it. A graceful shutdown (SIGTERM through the ServiceGroup) or cancellation
/// stops fetching; the record in flight finishes, commits run, the producer is flushed
/// and closed. Meanwhile a monitor keeps `health` (for /readyz) and the group gauges current.
enum ServiceLoop {
    static func run(name: String, consumer: Consumer, producer: Producer, logger: Logger, commitEach: Bool,
                    metrics: ServingMetrics, health: ServiceHealth,
                    handle: (ConsumedMessage) async -> Void) async throws {
        let monitor = Task { await ConsumerMonitor.run(consumer: consumer, metrics: metrics, health: health) }
        defer { monitor.cancel() }
        do {
            try await withGracefulShutdownHandler {
                try await withTaskCancellationHandler {
                    for try await record in consumer.messages {
                        await handle(record)
                        if commitEach { try await consumer.commit(record) }
                    }
                } onCancel: {
                    Task { await consumer.shutdown() }
                }
            } onGracefulShutdown: {
                Task { await consumer.shutdown() }
            }
        } catch is CancellationError {}
        monitor.cancel()
        await consumer.shutdown()
        try? await producer.flush(timeout: .seconds(10))
        await producer.close()
        logger.info("\(name) stopped")
    }
}

extension ConsumedMessage {
    /// The record's trace-id header, forwarded onto everything produced in answer to it so
    /// one request can be followed across services (absent when the client sent none).
    var traceHeaders: [KafkaHeader] {
        headers.string(named: KafkaHeader.traceIDName).map { [.traceID($0)] } ?? []
    }
}

/// What every service's options carry: the topic names and the consumer group.
public protocol ServiceTopicOptions {
    var topics: ServingTopics { get set }
    var groupID: String { get set }
}

extension ImageEncoderService.Options: ServiceTopicOptions {}
extension PromptDecoderService.Options: ServiceTopicOptions {}
extension TextEncoderService.Options: ServiceTopicOptions {}
