import Foundation
import Logging
import ServiceLifecycle
import Messaging
import Backends
import Imaging
import Pipeline

/// Joins embeddings and prompts by image id and answers every prompt exactly once per
/// delivery (at-least-once overall; duplicates carry the same request id).
///
/// One consumer-group member subscribes to both topics. Topics share a partition count
/// and are keyed by image id, so the range assignor hands a member the same partition
/// numbers of both: the two halves of a join meet in one process (Kafka Streams'
/// co-partitioning). Embedding offsets are never committed: a decoder that joins or
/// restarts replays the tail of the embeddings partitions it gets — a window sized from
/// its cache (`Options.replayRecords`), not the whole topic — and rebuilds its cache
/// without asking for re-encoding. Prompt offsets are committed only after the result
/// (or error result) is delivered, and never past a prompt still waiting for its embedding.
public final class PromptDecoderService: Service, MonitoredService {
    public struct Options: Sendable {
        public var groupID = "segflow-prompt-decoder"
        /// Where the poison-record guard keeps what is in hand (nil: no guard).
        public var stateDirectory: String? = PoisonGuard.defaultDirectory()
        public var topics = ServingTopics()
        /// Embedding LRU budget: 64 LiteMedSAM/SAM embeddings at f32.
        public var cacheBytes = 256 * 1024 * 1024
        /// How long a prompt waits for an embedding that has not arrived — counted from the
        /// later of its arrival and the last embedding this decoder received, so prompts
        /// behind a burst of images wait while the encoders work through it
        /// (PendingPrompts), up to `maxParkMs`.
        public var maxWaitMs: Double = 30_000
        public var maxParkMs: Double = 120_000
        public var maxParked = 10_000
        /// See ConsumerConfig.fetchWaitMaxMs: the embedded broker holds a fetch this long
        /// even when data arrives, so this bounds the added latency per hop. 1 ms costs an
        /// idle decoder a few percent of one core (measured with `segflow up`).
        public var fetchWaitMaxMs = 1
        /// Embedding records replayed per assigned partition (restart, rebalance): enough
        /// chunk records to fill the cache even if every recent image is on one partition
        /// (a chunk carries at most `ImageEmbedding.defaultMaxChunkBytes` of tensor bytes,
        /// which decode to at least as many cache bytes). Older embeddings are not read:
        /// restart cost follows `--cache-mb`, not the topic's retention.
        /// A tracked stream with no frame for this long is ended (state freed, tombstoned).
        public var streamIdleMs: Double = 300_000
        /// Live streams held in memory; beyond it the least recently active is dropped
        /// from memory (its snapshot stays on the stream-state topic and is restored if
        /// it sends again).
        public var maxLiveStreams = 4096
        public var streamState = StreamStateStore.Options()
        /// Tracker states larger than this travel as parts of at most this many bytes
        /// (SnapshotParts): every stream-state record stays under a stock broker's 1 MiB.
        public var snapshotPartBytes = 512 * 1024
        /// Image locations kept for on-demand fetches (EmbeddingIndex; ~200 bytes each).
        public var indexEntries = 200_000
        /// How long one on-demand fetch of an indexed embedding may take.
        public var fetchTimeoutMs = 15_000
        public var replayRecords: Int64 {
            Int64((cacheBytes + ImageEmbedding.defaultMaxChunkBytes - 1) / ImageEmbedding.defaultMaxChunkBytes)
        }
        public init() {}
    }

    public let backends: BackendSet
    public let options: Options
    let client: KafkaClientConfig
    let logger: Logger
    public let health = ServiceHealth()
    let metrics = ServingMetrics(service: "prompt-decoder")

    public init(backends: BackendSet, client: KafkaClientConfig, options: Options = Options(), logger: Logger) {
        self.backends = backends; self.client = client; self.options = options; self.logger = logger
    }

    /// The decoder's consumer buffer: enough prompts (~0.1–7 KB each) to interleave a few
    /// partitions' backlogs, bounded in bytes because embedding chunks are up to ~1 MB.
    static let prefetchRecords = 256
    static let prefetchBytes = 8 << 20

    public func run() async throws {
        // Results are latency-bound, one record at a time: no linger.
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0),
                                    knownTopics: [options.topics.masks, options.topics.deadLetter, options.topics.prompts])
        // Oldest first across partitions (ConsumerConfig.oldestFirst): after a rebalance
        // hands this decoder several partitions' backlogs, prompts are answered in the
        // order they were sent, not one partition's backlog after another's.
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID, prefetchCount: Self.prefetchRecords,
                                                           fetchWaitMaxMs: options.fetchWaitMaxMs,
                                                           storedOffsetCommitIntervalMs: Consumer.commitIntervalMs,
                                                           oldestFirst: true, prefetchBytes: Self.prefetchBytes),
                                    topics: [options.topics.embeddings, options.topics.prompts],
                                    replay: [ReplayWindow(topic: options.topics.embeddings, records: options.replayRecords)])
        let state = DecoderState(service: self, producer: producer, consumer: consumer,
                                 reporter: ErrorReporter(producer: producer, topics: options.topics, service: "prompt-decoder", logger: logger,
                                                         metrics: metrics),
                                 promptPartitions: await promptPartitionCount())
        let streamStore = StreamStateStore(options: options.streamState)
        await state.attach(streamStore)
        let index = EmbeddingIndex(maxEntries: options.indexEntries)
        await state.attach(index)
        let indexFollower = Task { [client, logger, options] in
            do { try await index.follow(client: client, topic: options.topics.embeddingIndex, logger: logger) } catch {
                logger.error("stopped following \(options.topics.embeddingIndex): \(error); embeddings older than the replay window cannot be fetched")
            }
        }
        defer { indexFollower.cancel() }
        let follower = Task { [client, logger, options] in
            do { try await streamStore.follow(client: client, topic: options.topics.streamState, logger: logger) } catch {
                logger.error("stopped following \(options.topics.streamState): \(error); tracked streams cannot fail over to this decoder")
            }
        }
        defer { follower.cancel() }
        logger.info("prompt-decoder ready", metadata: [LogKey.model: "\(backends.names.joined(separator: ","))"])
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                await state.expire()
            }
        }
        // Commits are the state's business: never past a prompt that is still waiting.
        defer { ticker.cancel() }
        let poison = options.stateDirectory.flatMap { PoisonGuard(directory: $0, service: "prompt-decoder") }
        await state.attach(poison)
        try await ServiceLoop.run(name: "prompt-decoder", consumer: consumer, producer: producer, logger: logger, commitEach: false,
                                  metrics: metrics, health: health,
                                  poison: poison,
                                  reject: { record, error in await state.reject(record, error) }) { record in
            await state.handle(record)
        }
    }
}

extension PromptDecoderService {
    /// The prompts topic's partition count, for re-routing prompts a non-murmur2 producer
    /// put on the wrong partition; nil (no re-routing, logged) if metadata is unavailable.
    func promptPartitionCount() async -> Int? {
        do {
            let admin = try Admin(config: client)
            let counts = try await admin.waitForTopics([options.topics.prompts], timeout: .seconds(15))
            return counts[options.topics.prompts]
        } catch {
            logger.warning("no partition count for \(options.topics.prompts) (\(error)); prompts from producers that do not partition by murmur2 will not be re-routed")
            return nil
        }
    }
}

actor DecoderState {
    struct Parked: Sendable {
        var record: ConsumedMessage
        var request: PromptRequest
        var arrivedMs: Double
    }

    let service: PromptDecoderService
    let producer: Producer
    let consumer: Consumer
    let reporter: ErrorReporter
    var cache: EmbeddingCache
    var assembler = EmbeddingAssembler()
    var pending: PendingPrompts<Parked>
    var trackers: [TopicPartition: OffsetTracker] = [:]
    let metrics: ServingMetrics
    let cacheMetrics: CacheMetrics
    /// Embeddings produced before this instant were replayed from the topic (restored).
    let startedAtMs = Timing.wallMs()

    let promptPartitions: Int?

    // Tracked streams (DecoderStreams.swift).
    var streams: [String: LiveStream] = [:]
    var streamStore: StreamStateStore?
    /// Per embeddings partition: the high watermark at assignment (records below it are
    /// replayed, not new) and the position stored for commit (never moved backwards).
    var replayHigh: [Int32: Int64] = [:]
    var embeddingStored: [Int32: Int64] = [:]

    func attach(_ store: StreamStateStore) { streamStore = store }

    /// The poison-record guard (ServiceLoop guards each record it hands over; a parked
    /// prompt answered later, when its embedding arrives, is guarded here).
    var poison: PoisonGuard?
    func attach(_ guardian: PoisonGuard?) { poison = guardian }

    /// A parked prompt answered now: it is the record in hand (a crash in its decoding is
    /// the prompt's, not the embedding's), refused when it crashed the decoder twice.
    func answerParked(_ parked: Parked) async {
        if let poison, !poison.begin(parked.record) {
            service.logger.error("dead-lettering a prompt that crashed prompt-decoder \(PoisonGuard.maxCrashes) times",
                                 metadata: [LogKey.partition: "\(parked.record.partition)", LogKey.offset: "\(parked.record.offset)"])
            await fail(parked, ServingError(.internal, "this record crashed prompt-decoder \(PoisonGuard.maxCrashes) times; dead-lettered instead of retried"))
            return
        }
        await answer(parked.record, parked.request, arrivedMs: parked.arrivedMs)
        poison?.end(parked.record)
    }

    // On-demand fetches of indexed embeddings.
    var embeddingIndex: EmbeddingIndex?
    var fetching: Set<String> = []
    func attach(_ index: EmbeddingIndex) { embeddingIndex = index }

    init(service: PromptDecoderService, producer: Producer, consumer: Consumer, reporter: ErrorReporter, promptPartitions: Int?) {
        self.service = service; self.producer = producer; self.consumer = consumer; self.reporter = reporter
        self.promptPartitions = promptPartitions
        metrics = service.metrics
        cacheMetrics = metrics.cache("embeddings")
        cache = EmbeddingCache(capacityBytes: service.options.cacheBytes, metrics: cacheMetrics)
        pending = PendingPrompts(maxWaitMs: service.options.maxWaitMs, maxItems: service.options.maxParked,
                                 maxParkMs: service.options.maxParkMs, parkedGauge: metrics.parked)
    }

    /// Per embeddings partition being restored: the high watermark at assignment, the
    /// embeddings restored so far and when the restore began.
    var restoring: [Int32: (high: Int64, restored: Int, startedMs: Double)] = [:]

    /// Prompts parked for partitions a rebalance took away are dropped, not expired: the
    /// new owner gets them redelivered (they were never committed) and holds the
    /// embeddings; expiring them here answered EMBEDDING_NOT_FOUND while the new owner
    /// answered with masks (found by the soak).
    func dropRevoked() {
        let revoked = Set(consumer.takeRevoked())
        guard !revoked.isEmpty else { return }
        let dropped = pending.removeAll { revoked.contains(TopicPartition(topic: $0.record.topic, partition: $0.record.partition)) }
        for tp in revoked { trackers[tp] = nil }
        dropStreams(revoked: revoked)
        if !dropped.isEmpty {
            service.logger.info("dropped prompts parked for revoked partitions (their new owner answers them)", metadata: ["prompts": "\(dropped.count)"])
        }
    }

    func handle(_ record: ConsumedMessage) async {
        dropRevoked()
        for start in consumer.takeAssignedStarts() {
            guard let offset = start.offset else {
                service.logger.warning("no watermarks for \(start.partition.topic) [\(start.partition.partition)]; replaying from the committed offset")
                continue
            }
            service.logger.info(start.resumed ? "resuming embeddings where this decoder was before the rebalance" : "restoring embeddings", metadata: [
                LogKey.partition: "\(start.partition.partition)", LogKey.offset: "\(offset)",
                "skipped": "\(offset - start.lowWatermark)", "high": "\(start.highWatermark)"])
            if offset < start.highWatermark { restoring[start.partition.partition] = (start.highWatermark, 0, Timing.nowMs()) }
            if let committed = start.committed, committed < start.lowWatermark {
                service.logger.warning("records of \(start.partition.topic) [\(start.partition.partition)] were deleted (retention) before this group read them: offsets \(committed)..<\(start.lowWatermark) are lost (tracked streams skip those frames)")
            }
            if start.partition.topic == service.options.topics.embeddings {
                replayHigh[start.partition.partition] = start.highWatermark
                embeddingStored[start.partition.partition] = start.committed
            }
        }
        if record.topic == service.options.topics.embeddings {
            await handleEmbedding(record)
            finishRestore(record)
            storeEmbeddingPosition(record)
        } else {
            await handlePrompt(record)
        }
    }

    func handleEmbedding(_ record: ConsumedMessage) async {
        pending.noteProgress(nowMs: Timing.nowMs())
        if let imageID = record.headers.string(named: KafkaHeader.encodingName) {
            // An encoder's progress notice (empty value): the image is being encoded.
            pending.noteEncoding(imageID: imageID, nowMs: Timing.nowMs())
            return
        }
        do {
            let chunk = try Messaging.ImageEmbedding(bytes: record.value)
            guard case let .complete(whole) = try assembler.add(chunk, partition: record.partition, offset: record.offset) else { return }
            guard service.backends.names.contains(whole.model) else {
                throw ServingError(.unknownModel, "embedding \(whole.imageID) is for '\(whole.model)'; this decoder serves \(service.backends.names.joined(separator: ", "))")
            }
            let entry = try service.backends.resolve(whole.model, role: "decoder").embedding(fromWire: whole)
            if let frame = whole.frame, let track = frame.track {
                // A tracked stream's frame is work, not a cache entry (its prompts come with it).
                noteRestored(record)
                await trackFrame(whole, entry: entry, frame: frame, track: track, record: record)
                return
            }
            cache.insert(entry, imageID: whole.imageID)
            StartupTrace.mark("prompt-decoder: embedding \(whole.imageID) cached")
            noteEncodeMs(whole.encoderMs, imageID: whole.imageID)
            noteRestored(record)
            metrics.embeddingCached(producedAtMs: record.timestampMs, startedAtMs: startedAtMs)
            for parked in pending.release(imageID: whole.imageID) { await answerParked(parked) }
        } catch {
            // A bad embedding record cannot be answered to a requester (prompts carry the
            // reply topic); it goes to the dead-letter topic and prompts for the image
            // time out with EMBEDDING_NOT_FOUND.
            let e = (error as? ServingError) ?? ServingError((error as? MessagingError)?.errorCode ?? .invalidEmbedding, "\(error)")
            service.logger.warning("bad embedding record: \(e.message)", metadata: [LogKey.offset: "\(record.offset)"])
            try? await reporter.deadLetter(e, record: record, requestID: "")
        }
    }

    /// Each cached image's encoder time, reported in its answers' timings (pruned to the
    /// cache's images whenever it outgrows them).
    var encodeMs: [String: Double] = [:]

    func noteEncodeMs(_ ms: Double, imageID: String) {
        encodeMs[imageID] = ms
        if encodeMs.count > 2 * cache.count + 64 { encodeMs = encodeMs.filter { cache.contains($0.key) } }
    }

    func noteRestored(_ record: ConsumedMessage) {
        guard var r = restoring[record.partition], record.offset < r.high else { return }
        r.restored += 1
        restoring[record.partition] = r
    }

    /// Logs a partition's restore as done once its records up to the assignment's high
    /// watermark have been read.
    func finishRestore(_ record: ConsumedMessage) {
        guard record.topic == service.options.topics.embeddings, let r = restoring[record.partition], record.offset >= r.high - 1 else { return }
        restoring[record.partition] = nil
        service.logger.info("restored embeddings", metadata: [LogKey.partition: "\(record.partition)", "embeddings": "\(r.restored)",
                                                              "ms": "\(Int(Timing.nowMs() - r.startedMs))"])
    }

    func handlePrompt(_ record: ConsumedMessage) async {
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        trackers[tp, default: OffsetTracker()].begin(record.offset)
        if await reroute(record) { return }
        metrics.requestReceived()
        let request: PromptRequest
        do {
            request = try PromptRequest(bytes: record.value)
            _ = try service.options.topics.reply(to: request.replyTopic)
        } catch {
            let code = (error as? ServingError)?.code ?? (error as? MessagingError)?.errorCode ?? .invalidProtobuf
            let ids = RequestIDs.ofPromptRequest(record.value).filling(from: record)
            let message = (error as? ServingError)?.message ?? "\(error)"
            try? await reporter.report(ServingError(code, message), record: record, requestID: ids.requestID,
                                       imageID: ids.imageID, replyTopic: ids.replyTopic)
            await finished(record)
            return
        }
        let now = Timing.nowMs()
        cacheMetrics.lookup(hit: cache.contains(request.imageID))
        if cache.contains(request.imageID) {
            await answer(record, request, arrivedMs: now)
        } else {
            for pushed in pending.park(Parked(record: record, request: request, arrivedMs: now), imageID: request.imageID, nowMs: now) {
                await fail(pushed, ServingError(.embeddingNotFound, "too many prompts waiting for embeddings; image \(pushed.request.imageID) not seen"))
            }
            await startFetch(request.imageID)
        }
    }

    /// A prompt on another partition than murmur2(image id) picks (its producer ignored
    /// the wire's partitioning rule) would wait here for an embedding that lives with
    /// another decoder: forward it, unchanged, to its image's partition, then commit it.
    /// Forwarding names the partition explicitly, so a forwarded prompt is never forwarded again.
    func reroute(_ record: ConsumedMessage) async -> Bool {
        guard let partitions = promptPartitions, let key = record.key else { return false }
        let home = KafkaPartitioner.murmur2Partition(key: key, partitions: partitions)
        guard home != record.partition else { return false }
        do {
            _ = try await producer.send(ProducerRecord(topic: record.topic, key: key, value: record.value,
                                                       headers: record.headers, partition: home))
        } catch {
            service.logger.warning("could not re-route a misplaced prompt (answering it here): \(error)",
                                   metadata: [LogKey.partition: "\(record.partition)", LogKey.offset: "\(record.offset)"])
            return false
        }
        service.logger.info("re-routed a prompt to its image's partition (its producer does not partition by murmur2)",
                            metadata: [LogKey.imageID: "\(record.keyString ?? "")", LogKey.partition: "\(record.partition)→\(home)"])
        await finished(record)
        return true
    }

    /// A record the loop will not hand over (it crashed the decoder twice): an error answer
    /// for a prompt, a dead letter for an embedding; committed like any answered prompt.
    func reject(_ record: ConsumedMessage, _ error: ServingError) async {
        if record.topic == service.options.topics.embeddings {
            try? await reporter.deadLetter(error, record: record, requestID: record.headers.string(named: KafkaHeader.requestIDName) ?? "")
            return
        }
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        trackers[tp, default: OffsetTracker()].begin(record.offset)
        await reporter.report(error, record: record, ids: RequestIDs.ofPromptRequest(record.value))
        await finished(record)
    }

    func expire() async {
        dropRevoked()
        await expireStreams()
        for p in pending.expire(nowMs: Timing.nowMs()) {
            await fail(p, ServingError(.embeddingNotFound, "no embedding for image '\(p.request.imageID)' arrived within \(Int(service.options.maxWaitMs)) ms of the prompt or of the last embedding received (at most \(Int(service.options.maxParkMs)) ms in all); send an ImageRequest for it first"))
        }
    }

    func fail(_ p: Parked, _ error: ServingError) async {
        try? await reporter.report(error, record: p.record, requestID: p.request.requestID, imageID: p.request.imageID,
                                   replyTopic: p.request.replyTopic, model: p.request.model, frame: p.request.frame)
        metrics.record(.total, ms: Timing.nowMs() - p.arrivedMs)
        await finished(p.record)
    }

    func answer(_ record: ConsumedMessage, _ request: PromptRequest, arrivedMs: Double) async {
        do {
            // An unknown model is UNKNOWN_MODEL even before the embedding is looked at.
            if !request.model.isEmpty { _ = try service.backends.resolve(request.model, role: "decoder") }
            guard let cached = cache.get(request.imageID) else { throw ServingError(.embeddingNotFound, "embedding for '\(request.imageID)' was evicted") }
            if !request.model.isEmpty && request.model != cached.modelName {
                throw ServingError(.shapeMismatch, "prompt is for '\(request.model)' but image '\(request.imageID)' was encoded with '\(cached.modelName)'")
            }
            let t0 = Timing.nowMs()
            metrics.record(.wait, ms: t0 - arrivedMs)
            let modelName = cached.modelName
            let masks = try service.backends.resolve(modelName, role: "decoder").answer(request, embedding: cached)
            let t1 = Timing.nowMs()
            let nowWall = Timing.wallMs()
            let created = request.createdAtMs > 0 ? Double(request.createdAtMs) : Double(nowWall)
            let result = MaskResult(requestID: request.requestID, imageID: request.imageID, masks: masks,
                                    timings: .init(queueMs: max(0, Double(nowWall) - created - (t1 - t0)), decodeMs: t1 - t0,
                                                   totalMs: max(0, Double(nowWall) - created), encodeMs: encodeMs[request.imageID] ?? 0),
                                    model: modelName, frame: request.frame)
            let topic = try service.options.topics.reply(to: request.replyTopic)
            let encoded = result.encode()
            guard encoded.count <= RequestLimits.maxResultBytes else {
                throw ServingError(.invalidPrompt, "the answer to \(request.requestID) is \(encoded.count) bytes, over the \(RequestLimits.maxResultBytes)-byte result bound (\(masks.count) masks): ask for fewer boxes, RLE instead of PNG, or no low-res logits")
            }
            _ = try await producer.send(ProducerRecord(topic: topic, key: request.imageID, value: encoded,
                                                       headers: [.contentType(protobuf: "MaskResult"), .requestID(request.requestID)] + record.traceHeaders))
            let t2 = Timing.nowMs()
            StartupTrace.mark("prompt-decoder: answered \(request.requestID) (decode \(Int(t1 - t0)) ms)")
            metrics.record(.decode, ms: t1 - t0)
            metrics.record(.publish, ms: t2 - t1)
            metrics.record(.total, ms: t2 - arrivedMs)
            await finished(record)
        } catch {
            let e = (error as? ServingError) ?? ServingError(.internal, "\(error)")
            await fail(Parked(record: record, request: request, arrivedMs: arrivedMs), e)
        }
    }

    /// A prompt for an image not in the cache: if the index knows where its embedding is
    /// (older than the replay window, or evicted), read it there — once per image at a time;
    /// the prompts wait meanwhile as for an image being encoded.
    func startFetch(_ imageID: String) async {
        guard let index = embeddingIndex, !fetching.contains(imageID), let location = await index.location(imageID) else { return }
        guard !cache.contains(imageID), pending.isWaiting(imageID: imageID) else { return }
        fetching.insert(imageID)
        pending.noteEncoding(imageID: imageID, nowMs: Timing.nowMs())
        let (client, topic, timeout) = (service.client, service.options.topics.embeddings, Duration.milliseconds(service.options.fetchTimeoutMs))
        service.logger.info("fetching an indexed embedding", metadata: [LogKey.imageID: "\(imageID)", LogKey.partition: "\(location.partition)",
                                                                       LogKey.offset: "\(location.firstOffset)"])
        Task {
            let t0 = Timing.nowMs()
            let result: Result<Messaging.ImageEmbedding, Error>
            do { result = .success(try await EmbeddingFetcher.fetch(location, client: client, topic: topic, timeout: timeout)) } catch {
                result = .failure(error)
            }
            await self.fetched(imageID, result, ms: Timing.nowMs() - t0)
        }
    }

    func fetched(_ imageID: String, _ result: Result<Messaging.ImageEmbedding, Error>, ms: Double) async {
        fetching.remove(imageID)
        do {
            let whole = try result.get()
            let entry = try service.backends.resolve(whole.model, role: "decoder").embedding(fromWire: whole)
            cache.insert(entry, imageID: imageID)
            noteEncodeMs(whole.encoderMs, imageID: imageID)
            service.logger.info("fetched an indexed embedding", metadata: [LogKey.imageID: "\(imageID)", "ms": "\(Int(ms))"])
            for parked in pending.release(imageID: imageID) { await answerParked(parked) }
        } catch {
            let e = (error as? ServingError) ?? ServingError(.embeddingNotFound, "fetching the embedding of '\(imageID)' failed: \(error)")
            service.logger.warning("\(e.message)", metadata: [LogKey.imageID: "\(imageID)"])
            for parked in pending.release(imageID: imageID) { await fail(parked, ServingError(.embeddingNotFound, e.message + "; send an ImageRequest for it again")) }
        }
    }

    /// Advances the committed position of the record's partition when it can.
    func finished(_ record: ConsumedMessage) async {
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        guard let next = trackers[tp, default: OffsetTracker()].finish(record.offset) else { return }
        consumer.storeLogging(tp, nextOffset: next, logger: service.logger)
    }
}
