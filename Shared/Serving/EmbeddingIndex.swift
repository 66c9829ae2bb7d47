import Foundation
import Logging
import Messaging
import Pipeline

/// Where every image's embedding is (the compacted embedding-index topic, read from the
/// beginning by a consumer of this process's own), so a prompt for an image older than the
/// replay window — or one the cache evicted — is answered by fetching its chunks at their
/// offsets instead of asking for re-encoding. Bounded by entry count (oldest dropped).
public actor EmbeddingIndex {
    public let maxEntries: Int
    var locations: [String: (location: EmbeddingLocation, tick: UInt64)] = [:]
    var tick: UInt64 = 0

    public init(maxEntries: Int = 200_000) { self.maxEntries = max(1, maxEntries) }

    public var count: Int { locations.count }
    public func location(_ imageID: String) -> EmbeddingLocation? { locations[imageID]?.location }

    public func apply(key: String, value: [UInt8]) throws {
        if value.isEmpty { locations[key] = nil; return }
        let l = try EmbeddingLocation(bytes: value)
        tick += 1
        locations[l.imageID] = (l, tick)
        if locations.count > maxEntries {
            // Drop the oldest tenth at once (amortised; a scan per insert would be quadratic).
            let victims = locations.sorted { $0.value.tick < $1.value.tick }.prefix(max(1, maxEntries / 10)).map(\.key)
            for v in victims { locations[v] = nil }
        }
    }

    public func follow(client: KafkaClientConfig, topic: String, logger: Logger) async throws {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "segflow-embedding-index-\(UUID().uuidString)",
                                                           autoOffsetReset: .earliest, fetchWaitMaxMs: 1), topics: [topic])
        do {
            try await withTaskCancellationHandler {
                for try await record in consumer.messages {
                    do { try apply(key: record.keyString ?? "", value: record.value) } catch {
                        logger.warning("skipping an unreadable embedding location: \(error)",
                                       metadata: [LogKey.topic: "\(record.topic)", LogKey.offset: "\(record.offset)"])
                    }
                }
            } onCancel: {
                Task { await consumer.shutdown() }
            }
        } catch is CancellationError {}
        await consumer.close(logger: logger)
    }
}

/// Reads one embedding's chunks at their indexed offsets (a positioned reader, no group).
enum EmbeddingFetcher {
    static func fetch(_ location: EmbeddingLocation, client: KafkaClientConfig, topic: String,
                      timeout: Duration) async throws -> Messaging.ImageEmbedding {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "segflow-fetch-\(UUID().uuidString)",
                                                           autoOffsetReset: .earliest, fetchWaitMaxMs: 1),
                                    reading: [TopicPartition(topic: topic, partition: location.partition): location.firstOffset])
        let timer = Task { try? await Task.sleep(for: timeout); if !Task.isCancelled { await consumer.shutdown() } }
        defer { timer.cancel() }
        var assembler = EmbeddingAssembler(maxPendingEmbeddings: 1)
        var found: Messaging.ImageEmbedding?
        do {
            for try await record in consumer.messages {
                if record.offset > location.lastOffset { break }
                guard record.offset >= location.firstOffset, !record.value.isEmpty,
                      let chunk = try? Messaging.ImageEmbedding(bytes: record.value),
                      chunk.imageID == location.imageID, chunk.requestID == location.requestID else { continue }
                if case let .complete(whole) = try assembler.add(chunk, partition: record.partition, offset: record.offset) {
                    found = whole
                    break
                }
            }
        } catch {
            await consumer.shutdown()
            throw error
        }
        await consumer.shutdown()
        guard let found else {
            throw ServingError(.embeddingNotFound, "the embedding of '\(location.imageID)' is no longer at \(topic) [\(location.partition)] offsets \(location.firstOffset)...\(location.lastOffset) (deleted by retention, or not read within \(timeout))")
        }
        return found
    }
}
