import Backends
import Foundation
import Logging
import Messaging
import Pipeline

/// A tracked stream this decoder holds (README, Streams).
struct LiveStream: Sendable {
    var snapshot: StreamSnapshot
    /// The embeddings partition its frames arrive on.
    var partition: Int32
    var lastActivityMs: Double
    /// Request ids of the last frames answered: redeliveries are dropped.
    var recentRequestIDs: [String]
    static let recentKept = 16
    /// Generation of the last parted snapshot written for it (SnapshotParts), and the most
    /// parts any of its snapshots used (both slots are tombstoned up to it when it ends).
    var partGeneration: UInt64 = 0
    var maxParts = 0
}

/// Tracked streams: frames arrive as embeddings keyed by stream id, so one decoder — the
/// owner of that embeddings partition — sees a stream's frames in order and holds its
/// state. After answering a frame it snapshots the state to the compacted stream-state
/// topic (key = stream id); a decoder that gets the partition later (failover, rebalance)
/// catches up on that topic and continues at the next frame. Order of effects per frame:
/// snapshot delivered (holding the frame's encoded answer; an answer too large for that
/// goes first instead, as before), then the answer delivered, then
/// the embedding's offset stored. So an answer a client has seen always has its state on
/// the topic — a new owner never needs the embeddings of answered frames, which retention
/// may already have deleted — and a crash at any point either re-processes the frame from
/// the previous snapshot (crash before the snapshot) or re-sends the stored answer when
/// the frame is redelivered (crash after it): at-least-once, identical answers.
///
/// Rules: frame indices increase (gaps allowed). A redelivery (a replayed record, or a
/// request id answered recently) of the last snapshotted frame is answered again from the
/// snapshot; of an earlier frame, dropped. Any other frame at or before the last one is
/// answered FRAME_OUT_OF_ORDER. A frame of a stream with no
/// state and no object prompts is STREAM_NOT_FOUND. `end_of_stream` frees the state
/// (tombstone); so does `streamIdleMs` without frames.
extension DecoderState {
    func trackFrame(_ whole: Messaging.ImageEmbedding, entry: any BackendEmbedding, frame: VideoFrame, track: StreamTrack,
                    record: ConsumedMessage) async {
        let arrivedMs = Timing.nowMs()
        let id = frame.streamID, index = frame.frameIndex
        let replayed = record.offset < (replayHigh[record.partition] ?? -1)
        var log = service.logger
        log[metadataKey: "stream"] = "\(id)"
        log[metadataKey: "frame"] = "\(index)"
        do {
            guard !id.contains(SnapshotParts.separator) else {
                throw ServingError(.invalidPrompt, "stream id \(id.debugDescription) contains U+001F, which is reserved for snapshot parts")
            }
            var live = streams[id]
            if live == nil, let store = streamStore {
                let statePartitions = promptPartitions ?? 1
                try await store.catchUp(topic: service.options.topics.streamState,
                                        partition: KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: statePartitions))
                if let snap = await store.snapshot(id) {
                    live = LiveStream(snapshot: snap, partition: record.partition, lastActivityMs: arrivedMs, recentRequestIDs: [snap.lastRequestID])
                    if let m = await store.manifest(id) { live!.partGeneration = m.generation; live!.maxParts = m.parts }
                    log.info("restored stream state", metadata: ["last_frame": "\(snap.lastFrameIndex)", "bytes": "\(snap.trackerState.count)"])
                } else if replayed, await store.hasEnded(id) {
                    log.debug("skipping a replayed frame of an ended stream")
                    return
                }
            }
            if let l = live, index <= l.snapshot.lastFrameIndex {
                if replayed || l.recentRequestIDs.contains(whole.requestID) {
                    streams[id] = l
                    if index == l.snapshot.lastFrameIndex, !l.snapshot.lastResult.isEmpty {
                        // Its answer may never have been sent (the previous owner died after the snapshot).
                        log.info("re-sending the answer of a redelivered frame from its snapshot")
                        let replyTopic = try service.options.topics.reply(to: track.replyTopic)
                        _ = try await producer.send(ProducerRecord(topic: replyTopic, key: id, value: l.snapshot.lastResult,
                                                                   headers: [.contentType(protobuf: "MaskResult"), .requestID(l.snapshot.lastRequestID)] + record.traceHeaders))
                    } else {
                        log.debug("dropping a redelivered frame (already answered)")
                    }
                    return
                }
                throw ServingError(.frameOutOfOrder, "stream \(id): frame \(index) arrived after frame \(l.snapshot.lastFrameIndex) was answered; frame indices must increase")
            }
            if live == nil && track.objects.isEmpty {
                if replayed { return }
                throw ServingError(.streamNotFound, "stream \(id) has no state (never started, ended, or idle longer than \(Int(service.options.streamIdleMs / 1000)) s): send its first frame with object prompts")
            }
            let backend = try service.backends.resolve(whole.model, role: "decoder")
            guard let tracker = backend.streamTracker else {
                throw ServingError(.unsupported, "model '\(backend.modelName)' does not track streams")
            }
            if let l = live, l.snapshot.model != backend.modelName {
                throw ServingError(.shapeMismatch, "stream \(id) is tracked with '\(l.snapshot.model)' but frame \(index) was encoded with '\(backend.modelName)'")
            }
            let replyTopic = try service.options.topics.reply(to: track.replyTopic)
            let t0 = Timing.nowMs()
            let out = try tracker.track(frameIndex: index, embedding: entry, state: live?.snapshot.trackerState, track: track)
            let t1 = Timing.nowMs()
            let nowWall = Timing.wallMs()
            let created = whole.createdAtMs > 0 ? Double(whole.createdAtMs) : Double(nowWall)
            let result = MaskResult(requestID: whole.requestID, imageID: whole.imageID, masks: out.masks,
                                    timings: .init(queueMs: max(0, Double(nowWall) - created - (t1 - t0)), decodeMs: t1 - t0,
                                                   totalMs: max(0, Double(nowWall) - created), encodeMs: whole.encoderMs),
                                    model: backend.modelName, frame: VideoFrame(streamID: id, frameIndex: index))
            let encoded = result.encode()
            guard encoded.count <= RequestLimits.maxResultBytes else {
                throw ServingError(.invalidPrompt, "the answer to frame \(index) of stream \(id) is \(encoded.count) bytes, over the \(RequestLimits.maxResultBytes)-byte bound: use RLE or fewer objects")
            }
            let answer = ProducerRecord(topic: replyTopic, key: id, value: encoded,
                                        headers: [.contentType(protobuf: "MaskResult"), .requestID(whole.requestID)] + record.traceHeaders)
            if track.endOfStream {
                // Answer, then tombstone: a crash between re-processes the frame from the
                // previous snapshot on redelivery (a tombstone first would lose the answer).
                _ = try await producer.send(answer)
                _ = try await producer.send(.tombstone(topic: service.options.topics.streamState, key: id))
                await tombstoneParts(id, live: live)
                streams[id] = nil
                log.info("stream ended", metadata: ["frames_to": "\(index)"])
            } else {
                let snapshot = StreamSnapshot(streamID: id, lastFrameIndex: index, model: backend.modelName, trackerState: out.state,
                                              updatedAtMs: nowWall, lastRequestID: whole.requestID, lastResult: encoded)
                // A state over one record's share travels as parts (SnapshotParts), written
                // before the snapshot that names them, all on the stream's state partition.
                var generation = live?.partGeneration ?? 0, maxParts = live?.maxParts ?? 0
                var stored = snapshot
                var statePartition: Int32? = nil
                let partBytes = service.options.snapshotPartBytes
                if out.state.count > partBytes {
                    generation += 1
                    let p = KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: promptPartitions ?? 1)
                    statePartition = p
                    let (parts, manifest) = SnapshotParts.split(out.state, generation: generation, partBytes: partBytes)
                    for (k, part) in parts.enumerated() {
                        let key = SnapshotParts.partKey(stream: id, generation: generation, part: k)
                        var r = ProducerRecord(topic: service.options.topics.streamState, key: key,
                                               value: StreamSnapshot(streamID: key, lastFrameIndex: index, model: backend.modelName,
                                                                     trackerState: part, updatedAtMs: nowWall, lastRequestID: "").encode(),
                                               headers: [.contentType(protobuf: "StreamSnapshot")])
                        r.partition = p
                        _ = try await producer.send(r)
                    }
                    maxParts = max(maxParts, parts.count)
                    stored.trackerState = manifest
                }
                var value = stored.encode()
                // An answer too large to ride along (near the record bound) is not stored:
                // then the answer goes first, and a crash before the snapshot re-processes
                // the frame from the previous one (its embedding is redelivered with it).
                let answerStored = value.count <= RequestLimits.maxResultBytes
                if !answerStored {
                    stored.lastResult = []
                    value = stored.encode()
                    _ = try await producer.send(answer)
                }
                var main = ProducerRecord(topic: service.options.topics.streamState, key: id, value: value,
                                          headers: [.contentType(protobuf: "StreamSnapshot")])
                main.partition = statePartition
                _ = try await producer.send(main)
                // The state is durable: this decoder continues from it whatever happens to the answer.
                var recent = (live?.recentRequestIDs ?? []) + [whole.requestID]
                if recent.count > LiveStream.recentKept { recent.removeFirst(recent.count - LiveStream.recentKept) }
                var kept = snapshot
                if !answerStored { kept.lastResult = [] }
                streams[id] = LiveStream(snapshot: kept, partition: record.partition, lastActivityMs: Timing.nowMs(), recentRequestIDs: recent,
                                         partGeneration: generation, maxParts: maxParts)
                evictLiveStreams()
                if answerStored { _ = try await producer.send(answer) }
            }
            metrics.record(.decode, ms: t1 - t0)
            metrics.record(.total, ms: Timing.nowMs() - arrivedMs)
        } catch {
            let e = (error as? ServingError) ?? ServingError((error as? MessagingError)?.errorCode ?? .internal, "\(error)")
            try? await reporter.report(e, record: record, requestID: whole.requestID, imageID: whole.imageID,
                                       replyTopic: track.replyTopic, model: whole.model,
                                       frame: VideoFrame(streamID: id, frameIndex: index))
        }
    }

    /// Deletes an ended stream's snapshot parts (both slots) from the compacted topic.
    func tombstoneParts(_ id: String, live: LiveStream?) async {
        guard let live, live.maxParts > 0 else { return }
        let p = KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: promptPartitions ?? 1)
        for slot in 0..<2 { for k in 0..<live.maxParts {
            var r = ProducerRecord.tombstone(topic: service.options.topics.streamState,
                                             key: SnapshotParts.partKey(stream: id, generation: UInt64(slot), part: k))
            r.partition = p
            _ = try? await producer.send(r)
        } }
    }

    /// Beyond `maxLiveStreams`, the least recently active stream leaves memory (its
    /// snapshot stays on the topic).
    func evictLiveStreams() {
        while streams.count > service.options.maxLiveStreams,
              let victim = streams.min(by: { $0.value.lastActivityMs < $1.value.lastActivityMs })?.key {
            streams[victim] = nil
        }
    }

    /// Streams idle longer than `streamIdleMs` end: state freed here and tombstoned.
    func expireStreams() async {
        let now = Timing.nowMs()
        for (id, s) in streams where now - s.lastActivityMs > service.options.streamIdleMs {
            streams[id] = nil
            _ = try? await producer.send(.tombstone(topic: service.options.topics.streamState, key: id))
            await tombstoneParts(id, live: s)
            service.logger.info("stream expired idle; state freed", metadata: ["stream": "\(id)", "last_frame": "\(s.snapshot.lastFrameIndex)"])
        }
    }

    /// Streams on revoked embeddings partitions now belong to their new owner.
    func dropStreams(revoked: Set<TopicPartition>) {
        let parts = Set(revoked.filter { $0.topic == service.options.topics.embeddings }.map(\.partition))
        guard !parts.isEmpty else { return }
        for p in parts { replayHigh[p] = nil; embeddingStored[p] = nil }
        streams = streams.filter { !parts.contains($0.value.partition) }
    }

    /// Embedding offsets are stored for commit once a record is done — never past the
    /// first chunk of an embedding still being assembled, never backwards — so a new owner
    /// starts no later than the first frame not yet answered (ReplayWindow).
    func storeEmbeddingPosition(_ record: ConsumedMessage) {
        let next = min(assembler.commitFloor(partition: record.partition) ?? (record.offset + 1), record.offset + 1)
        guard next > (embeddingStored[record.partition] ?? -1) else { return }
        embeddingStored[record.partition] = next
        consumer.storeLogging(TopicPartition(topic: record.topic, partition: record.partition), nextOffset: next, logger: service.logger)
    }
}
