import Foundation
import Logging
import Messaging
import Pipeline

/// The latest snapshot of every tracked stream (README, Streams): the compacted
/// stream-state topic read from the beginning by a consumer of this process's own, like
/// Kafka Streams' changelog restore. A decoder that gets a stream's frames without holding
/// the stream (after a failover or a rebalance) first catches this store up to the
/// partition's end, then continues from the snapshot. Bounded by a byte budget (oldest
/// updates dropped first); tombstones delete, and the ids of streams that ended are
/// remembered (bounded) so a replayed frame of an ended stream is not started again.
public actor StreamStateStore {
    public struct Options: Sendable {
        public var capacityBytes = 256 * 1024 * 1024
        public var rememberedEnds = 65_536
        /// How long a decoder waits for this store to reach the partition's end.
        public var catchUpMs: Double = 10_000
        public init() {}
    }

    let options: Options
    var snapshots: [String: (snapshot: StreamSnapshot, tick: UInt64)] = [:]
    /// Parts of large snapshots not yet claimed by their manifest (SnapshotParts), by part key.
    var parts: [String: (generation: UInt64, index: Int, payload: [UInt8])] = [:]
    var partBytes = 0
    /// The manifest each reassembled snapshot came from.
    var manifests: [String: SnapshotParts.Manifest] = [:]
    var ended: [String: UInt64] = [:]
    var usedBytes = 0
    var tick: UInt64 = 0
    /// Next offset to read per stream-state partition.
    var positions: [Int32: Int64] = [:]
    var consumer: Consumer?
    var waiters: [UUID: (partition: Int32, offset: Int64, continuation: CheckedContinuation<Void, Never>)] = [:]

    public init(options: Options = Options()) { self.options = options }

    public var count: Int { snapshots.count }

    public func snapshot(_ streamID: String) -> StreamSnapshot? { snapshots[streamID]?.snapshot }
    /// The manifest of a stream's snapshot when it was stored in parts.
    public func manifest(_ streamID: String) -> SnapshotParts.Manifest? { manifests[streamID] }
    public func hasEnded(_ streamID: String) -> Bool { ended[streamID] != nil }

    /// Applies one record of the topic (a snapshot, or a tombstone: empty value).
    public func apply(key: String, value: [UInt8], partition: Int32, offset: Int64) throws {
        defer { advance(partition: partition, to: offset + 1) }
        if SnapshotParts.stream(ofPartKey: key) != nil {
            if let old = parts.removeValue(forKey: key) { partBytes -= old.payload.count }
            guard !value.isEmpty else { return }  // a part's tombstone ends nothing
            let p = try SnapshotParts.part(try StreamSnapshot(bytes: value).trackerState)
            guard partBytes + p.payload.count <= options.capacityBytes else {
                throw ServingError(.invalidPrompt, "snapshot part \(key) would exceed the store's \(options.capacityBytes)-byte budget")
            }
            parts[key] = (p.generation, p.index, Array(p.payload))
            partBytes += p.payload.count
            return
        }
        if value.isEmpty {
            remove(key)
            tick += 1
            ended[key] = tick
            if ended.count > options.rememberedEnds, let oldest = ended.min(by: { $0.value < $1.value })?.key { ended[oldest] = nil }
            return
        }
        var s = try StreamSnapshot(bytes: value)
        var manifest: SnapshotParts.Manifest?
        if let m = try SnapshotParts.manifest(s.trackerState) {
            var whole: [UInt8] = []
            whole.reserveCapacity(m.totalBytes)
            for k in 0..<m.parts {
                let pk = SnapshotParts.partKey(stream: s.streamID, generation: m.generation, part: k)
                guard let p = parts[pk], p.generation == m.generation, p.index == k else {
                    throw ServingError(.internal, "snapshot of stream \(s.streamID) (generation \(m.generation)) lacks part \(k) of \(m.parts)")
                }
                whole += p.payload
            }
            guard whole.count == m.totalBytes else {
                throw ServingError(.internal, "snapshot of stream \(s.streamID): parts hold \(whole.count) bytes, the manifest says \(m.totalBytes)")
            }
            for k in 0..<m.parts {
                if let old = parts.removeValue(forKey: SnapshotParts.partKey(stream: s.streamID, generation: m.generation, part: k)) {
                    partBytes -= old.payload.count
                }
            }
            s.trackerState = whole
            manifest = m
        }
        remove(s.streamID)
        manifests[s.streamID] = manifest
        ended[s.streamID] = nil
        tick += 1
        snapshots[s.streamID] = (s, tick)
        usedBytes += s.trackerState.count
        while usedBytes > options.capacityBytes, snapshots.count > 1,
              let victim = snapshots.filter({ $0.key != s.streamID }).min(by: { $0.value.tick < $1.value.tick })?.key {
            remove(victim)
        }
    }

    func remove(_ id: String) {
        if let old = snapshots.removeValue(forKey: id) { usedBytes -= old.snapshot.trackerState.count }
        manifests[id] = nil
    }

    func advance(partition: Int32, to next: Int64) {
        positions[partition] = max(positions[partition] ?? 0, next)
        for (key, w) in waiters where w.partition == partition && (positions[partition] ?? 0) >= w.offset {
            waiters[key] = nil
            w.continuation.resume()
        }
    }

    /// Waits (bounded by `catchUpMs`) until every record the partition held when asked has
    /// been applied. Throws when the end cannot be learnt or is not reached in time: the
    /// caller must not guess a stream's state.
    public func catchUp(topic: String, partition: Int32) async throws {
        guard let consumer else { throw ServingError(.internal, "the stream-state store is not following \(topic)") }
        let (_, high) = try await consumer.queryWatermarks(TopicPartition(topic: topic, partition: partition))
        if (positions[partition] ?? 0) >= high { return }
        let key = UUID()
        let bound = options.catchUpMs
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: .milliseconds(Int(bound)))) != nil else { return }
            await self?.timeout(key)
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            waiters[key] = (partition, high, c)
            advance(partition: partition, to: 0)
        }
        timer.cancel()
        guard (positions[partition] ?? 0) >= high else {
            throw ServingError(.internal, "the stream state of \(topic) [\(partition)] was not read up to offset \(high) within \(Int(bound)) ms")
        }
    }

    func timeout(_ key: UUID) { waiters.removeValue(forKey: key)?.continuation.resume() }

    func attach(_ consumer: Consumer) { self.consumer = consumer }

    /// Reads the stream-state topic until cancelled (own group, earliest, never committing).
    /// Bad records are logged and skipped.
    public func follow(client: KafkaClientConfig, topic: String, logger: Logger) async throws {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "segflow-stream-state-\(UUID().uuidString)",
                                                           autoOffsetReset: .earliest, fetchWaitMaxMs: 1), topics: [topic])
        attach(consumer)
        do {
            try await withTaskCancellationHandler {
                for try await record in consumer.messages {
                    do {
                        try apply(key: record.keyString ?? "", value: record.value, partition: record.partition, offset: record.offset)
                    } catch {
                        logger.warning("skipping an unreadable stream snapshot: \(error)",
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
