import Backends
import Logging
import Messaging
import ServiceLifecycle

/// The loop every Segflow service runs: take records one at a time, hand each to
/// `handle` (which answers it, possibly with an error result), then — if `commitEach` —
/// store its offset for commit. With `commitEach`, records sliced by `RecordChunking`
/// (large images) are reassembled first; a slice's offset is committed only when its
/// whole record was handled, so a crash mid-record redelivers every slice. Slices that
/// cannot be used go to `reject`. A graceful shutdown (SIGTERM through the ServiceGroup)
/// first drains — keeps handling records until caught up, at most
/// `Consumer.defaultDrainBudget` — then stops fetching; cancellation stops at once. The
/// record in flight finishes, commits run, the producer is flushed and closed. Meanwhile a monitor keeps `health` (for /readyz) and
/// the group gauges current.
enum ServiceLoop {
    static func run(name: String, consumer: Consumer, producer: Producer, logger: Logger, commitEach: Bool,
                    metrics: ServingMetrics, health: ServiceHealth,
                    poison: PoisonGuard? = nil,
                    reject: (ConsumedMessage, ServingError) async -> Void = { _, _ in },
                    handle: (ConsumedMessage) async -> Void) async throws {
        /// Handles `record` unless it already crashed this service PoisonGuard.maxCrashes times.
        func guarded(_ record: ConsumedMessage) async {
            if let poison, !poison.begin(record) {
                logger.error("dead-lettering a record that crashed \(name) \(PoisonGuard.maxCrashes) times",
                             metadata: [LogKey.topic: "\(record.topic)", LogKey.partition: "\(record.partition)", LogKey.offset: "\(record.offset)"])
                await reject(record, ServingError(.internal, "this record crashed \(name) \(PoisonGuard.maxCrashes) times; dead-lettered instead of retried"))
                return
            }
            await handle(record)
            poison?.end(record)
        }
        let monitor = Task { await ConsumerMonitor.run(consumer: consumer, metrics: metrics, health: health) }
        defer { monitor.cancel() }
        var assembler = RecordAssembler()
        var trackers: [TopicPartition: OffsetTracker] = [:]
        func finish(_ record: ConsumedMessage, offsets: [Int64]) {
            let tp = TopicPartition(topic: record.topic, partition: record.partition)
            var position: Int64?
            for offset in offsets { position = trackers[tp, default: OffsetTracker()].finish(offset) ?? position }
            if let position { consumer.storeLogging(tp, nextOffset: position, logger: logger) }
        }
        do {
            try await withGracefulShutdownHandler {
                try await withTaskCancellationHandler {
                    for try await record in consumer.messages {
                        guard commitEach else { await guarded(record); continue }
                        trackers[TopicPartition(topic: record.topic, partition: record.partition), default: OffsetTracker()].begin(record.offset)
                        do {
                            switch try assembler.add(record) {
                            case let .complete(whole, offsets):
                                await guarded(whole)
                                finish(record, offsets: offsets)
                            case .incomplete:
                                break
                            }
                        } catch {
                            await reject(record, ServingError(.invalidImage, "sliced record: \(error)"))
                            finish(record, offsets: [record.offset])
                        }
                        for (first, offsets) in assembler.takeDropped() {
                            await reject(first, ServingError(.invalidImage, "incomplete sliced record dropped: more than \(assembler.maxPendingBytes) bytes of slices pending"))
                            finish(first, offsets: offsets)
                        }
                    }
                } onCancel: {
                    Task { await consumer.shutdown() }
                }
            } onGracefulShutdown: {
                // Drain first: answer what this member already fetched, then leave the
                // group (Consumer.drainThenShutdown). Cancellation (the 30 s escalation)
                // still shuts down at once.
                Task {
                    logger.info("\(name) draining before it leaves the group (at most \(Consumer.defaultDrainBudget))")
                    let (outcome, _) = await consumer.drainThenShutdown()
                    switch outcome {
                    case .caughtUp(let s):
                        logger.info("\(name) drained: every fetched record handled", metadata: ["seconds": "\(String(format: "%.1f", s))"])
                    case .budgetSpent(let s):
                        logger.warning("\(name) drain budget spent with records still arriving; the rest is redelivered to the group",
                                       metadata: ["seconds": "\(String(format: "%.1f", s))"])
                    }
                }
            }
        } catch is CancellationError {}
        monitor.cancel()
        await consumer.close(logger: logger)
        try? await producer.flush(timeout: .seconds(10))
        await producer.close()
        logger.info("\(name) stopped")
    }
}

extension Consumer {
    /// How often the services' consumers commit the offsets they stored (after processing).
    /// Up to this much processed work is redelivered after a crash (at-least-once).
    static let commitIntervalMs = 500

    /// Stores a processed record's next offset; a refusal (the partition moved in a
    /// rebalance) only means the new owner redelivers it.
    func storeLogging(_ record: ConsumedMessage, logger: Logger) {
        storeLogging(TopicPartition(topic: record.topic, partition: record.partition), nextOffset: record.offset + 1, logger: logger)
    }

    func storeLogging(_ partition: TopicPartition, nextOffset: Int64, logger: Logger) {
        do { try store(partition, nextOffset: nextOffset) } catch {
            logger.debug("offset not stored (the record will be redelivered): \(error)")
        }
    }

    /// The bounded close (Consumer.defaultCloseBound), logging a close it had to abandon.
    func close(logger: Logger) async {
        if !(await shutdown()) {
            logger.warning("consumer close did not finish within \(Consumer.defaultCloseBound); abandoned it (uncommitted records are redelivered)",
                           metadata: [LogKey.topic: "\(topics.joined(separator: ","))"])
        }
    }
}

extension ConsumedMessage {
    /// The record's trace-id header, forwarded onto everything produced in answer to it so
    /// one request can be followed across services (absent when the client sent none).
    var traceHeaders: [KafkaHeader] {
        headers.string(named: KafkaHeader.traceIDName).map { [.traceID($0)] } ?? []
    }
}

extension ServingTopics {
    /// Where a request's answer goes: its reply_topic, or the masks topic when empty. A
    /// reply topic must be a legal Kafka topic name and none of the services' own topics
    /// (an answer written there would be read back as a request, an embedding or a pair).
    public func reply(to requested: String) throws(ServingError) -> String {
        if requested.isEmpty { return masks }
        let legal = requested.utf8.count <= 249 && requested != "." && requested != ".."
            && requested.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
        guard legal else {
            throw ServingError(.invalidPrompt, "reply_topic '\(requested)' is not a legal Kafka topic name (letters, digits, '.', '_', '-'; at most 249 bytes)")
        }
        guard ![images, embeddings, prompts, text, promptPairs, deadLetter, streamState, embeddingIndex].contains(requested) else {
            throw ServingError(.invalidPrompt, "reply_topic '\(requested)' is one of Segflow's own topics; answers go to \(masks) or a topic of the requester's")
        }
        return requested
    }
}

/// What every service's options carry: the topic names and the consumer group.
public protocol ServiceTopicOptions {
    var topics: ServingTopics { get set }
    var groupID: String { get set }
    /// The poison-record guard's directory (nil: no guard).
    var stateDirectory: String? { get set }
}

extension ImageEncoderService.Options: ServiceTopicOptions {}
extension PromptDecoderService.Options: ServiceTopicOptions {}
extension TextEncoderService.Options: ServiceTopicOptions {}
