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
/// restarts replays the embeddings of the partitions it gets and rebuilds its cache
/// without asking for re-encoding. Prompt offsets are committed only after the result
/// (or error result) is delivered, and never past a prompt still waiting for its embedding.
public final class PromptDecoderService: Service, MonitoredService {
    public struct Options: Sendable {
        public var groupID = "segflow-prompt-decoder"
        public var topics = ServingTopics()
        /// Embedding LRU budget: 64 LiteMedSAM/SAM embeddings at f32.
        public var cacheBytes = 256 * 1024 * 1024
        /// How long a prompt waits for an embedding that has not arrived.
        public var maxWaitMs: Double = 30_000
        public var maxParked = 10_000
        /// See ConsumerConfig.fetchWaitMaxMs: the embedded broker holds a fetch this long
        /// even when data arrives, so this bounds the added latency per hop. 1 ms costs an
        /// idle decoder a few percent of one core (measured with `segflow up`).
        public var fetchWaitMaxMs = 1
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

    public func run() async throws {
        // Results are latency-bound, one record at a time: no linger.
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID, fetchWaitMaxMs: options.fetchWaitMaxMs),
                                    topics: [options.topics.embeddings, options.topics.prompts])
        let state = DecoderState(service: self, producer: producer, consumer: consumer,
                                 reporter: ErrorReporter(producer: producer, topics: options.topics, service: "prompt-decoder", logger: logger,
                                                         metrics: metrics))
        logger.info("prompt-decoder ready", metadata: [LogKey.model: "\(backends.names.joined(separator: ","))"])
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                await state.expire()
            }
        }
        // Commits are the state's business: never past a prompt that is still waiting.
        defer { ticker.cancel() }
        try await ServiceLoop.run(name: "prompt-decoder", consumer: consumer, producer: producer, logger: logger, commitEach: false,
                                 metrics: metrics, health: health) { record in
            await state.handle(record)
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

    init(service: PromptDecoderService, producer: Producer, consumer: Consumer, reporter: ErrorReporter) {
        self.service = service; self.producer = producer; self.consumer = consumer; self.reporter = reporter
        metrics = service.metrics
        cacheMetrics = metrics.cache("embeddings")
        cache = EmbeddingCache(capacityBytes: service.options.cacheBytes, metrics: cacheMetrics)
        pending = PendingPrompts(maxWaitMs: service.options.maxWaitMs, maxItems: service.options.maxParked, parkedGauge: metrics.parked)
    }

    func handle(_ record: ConsumedMessage) async {
        if record.topic == service.options.topics.embeddings {
            await handleEmbedding(record)
        } else {
            await handlePrompt(record)
        }
    }

    func handleEmbedding(_ record: ConsumedMessage) async {
        do {
            let chunk = try Messaging.ImageEmbedding(bytes: record.value)
            guard case let .complete(whole) = try assembler.add(chunk, partition: record.partition, offset: record.offset) else { return }
            guard service.backends.names.contains(whole.model) else {
                throw ServingError(.unknownModel, "embedding \(whole.imageID) is for '\(whole.model)'; this decoder serves \(service.backends.names.joined(separator: ", "))")
            }
            let entry = try service.backends.resolve(whole.model, role: "decoder").embedding(fromWire: whole)
            cache.insert(entry, imageID: whole.imageID)
            metrics.embeddingCached(producedAtMs: record.timestampMs, startedAtMs: startedAtMs)
            for parked in pending.release(imageID: whole.imageID) { await answer(parked.record, parked.request, arrivedMs: parked.arrivedMs) }
        } catch {
            // A bad embedding record cannot be answered to a requester (prompts carry the
            // reply topic); it goes to the dead-letter topic and prompts for the image
            // time out with EMBEDDING_NOT_FOUND.
            let e = (error as? ServingError) ?? ServingError((error as? MessagingError)?.errorCode ?? .invalidEmbedding, "\(error)")
            service.logger.warning("bad embedding record: \(e.message)", metadata: [LogKey.offset: "\(record.offset)"])
            try? await reporter.deadLetter(e, record: record, requestID: "")
        }
    }

    func handlePrompt(_ record: ConsumedMessage) async {
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        trackers[tp, default: OffsetTracker()].begin(record.offset)
        metrics.requestReceived()
        let request: PromptRequest
        do { request = try PromptRequest(bytes: record.value) } catch {
            let code = (error as? MessagingError)?.errorCode ?? .invalidProtobuf
            let rid = record.headers.string(named: KafkaHeader.requestIDName) ?? ""
            try? await reporter.report(ServingError(code, "\(error)"), record: record, requestID: rid,
                                       imageID: record.keyString ?? "", replyTopic: "")
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
        }
    }

    func expire() async {
        for p in pending.expire(nowMs: Timing.nowMs()) {
            await fail(p, ServingError(.embeddingNotFound, "no embedding for image '\(p.request.imageID)' arrived within \(Int(service.options.maxWaitMs)) ms; send an ImageRequest for it first"))
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
                                                   totalMs: max(0, Double(nowWall) - created)),
                                    model: modelName, frame: request.frame)
            let topic = request.replyTopic.isEmpty ? service.options.topics.masks : request.replyTopic
            _ = try await producer.send(ProducerRecord(topic: topic, key: request.imageID, value: result.encode(),
                                                       headers: [.contentType(protobuf: "MaskResult"), .requestID(request.requestID)] + record.traceHeaders))
            let t2 = Timing.nowMs()
            metrics.record(.decode, ms: t1 - t0)
            metrics.record(.publish, ms: t2 - t1)
            metrics.record(.total, ms: t2 - arrivedMs)
            await finished(record)
        } catch {
            let e = (error as? ServingError) ?? ServingError(.internal, "\(error)")
            await fail(Parked(record: record, request: request, arrivedMs: arrivedMs), e)
        }
    }

    /// Advances the committed position of the record's partition when it can.
    func finished(_ record: ConsumedMessage) async {
        let tp = TopicPartition(topic: record.topic, partition: record.partition)
        guard let next = trackers[tp, default: OffsetTracker()].finish(record.offset) else { return }
        do { try await consumer.commit(tp, nextOffset: next) } catch {
            service.logger.warning("commit failed (the record will be redelivered): \(error)")
        }
    }
}
