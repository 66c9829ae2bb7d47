import Foundation
import Logging
import ServiceLifecycle
import Messaging
import Backends
import Pipeline

/// Consumes text prompts (PromptRequests with `text`, on the text topic), turns each
/// phrase into CLIPSeg's conditional embedding with CLIP's tokenizer and text tower, and
/// forwards the enriched prompt to the prompts topic keyed by image id — where the
/// decoder that owns the image's CLIPSeg embedding picks it up.
public final class TextEncoderService: Service, MonitoredService {
    public struct Options: Sendable {
        public var groupID = "segflow-text-encoder"
        /// Where the poison-record guard keeps what is in hand (nil: no guard).
        public var stateDirectory: String? = PoisonGuard.defaultDirectory()
        public var topics = ServingTopics()
        /// Phrases are few and repeat (video, many images, one query): cache them.
        public var cacheEntries = 4096
        public init() {}
    }

    public let backend: any SegmentationBackend
    let encoder: any TextPromptEncoder
    public let options: Options
    let client: KafkaClientConfig
    let logger: Logger
    public let health = ServiceHealth()
    let metrics = ServingMetrics(service: "text-encoder")

    /// `backend` must take text (`textEncoder` non-nil).
    public init(backend: any SegmentationBackend, client: KafkaClientConfig, options: Options = Options(), logger: Logger) {
        guard let encoder = backend.textEncoder else { preconditionFailure("\(backend.modelName) has no text encoder") }
        self.backend = backend; self.encoder = encoder; self.client = client; self.options = options; self.logger = logger
    }

    public func run() async throws {
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0),
                                    knownTopics: [options.topics.prompts, options.topics.masks, options.topics.deadLetter])
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID, fetchWaitMaxMs: 1, storedOffsetCommitIntervalMs: Consumer.commitIntervalMs),
                                    topics: [options.topics.text])
        let reporter = ErrorReporter(producer: producer, topics: options.topics, service: "text-encoder", logger: logger, metrics: metrics)
        let cache = PhraseCache(capacity: options.cacheEntries, metrics: metrics.cache("phrases"))
        logger.info("text-encoder ready", metadata: [LogKey.topic: "\(options.topics.text)"])
        try await ServiceLoop.run(name: "text-encoder", consumer: consumer, producer: producer, logger: logger, commitEach: true,
                                  metrics: metrics, health: health,
                                  poison: options.stateDirectory.flatMap { PoisonGuard(directory: $0, service: "text-encoder") },
                                  reject: { record, error in await reporter.report(error, record: record, ids: RequestIDs.ofPromptRequest(record.value)) }) { record in
            await handle(record, producer: producer, reporter: reporter, cache: cache)
        }
    }

    func handle(_ record: ConsumedMessage, producer: Producer, reporter: ErrorReporter, cache: PhraseCache) async {
        var requestID = record.headers.string(named: KafkaHeader.requestIDName) ?? ""
        var imageID = record.keyString ?? "", reply = ""
        metrics.requestReceived()
        let started = Timing.nowMs()
        defer { metrics.record(.total, ms: Timing.nowMs() - started) }
        do {
            var request: PromptRequest
            do { request = try PromptRequest(bytes: record.value) } catch let e as MessagingError {
                let ids = RequestIDs.ofPromptRequest(record.value).filling(from: record)
                (requestID, imageID, reply) = (ids.requestID, ids.imageID, ids.replyTopic)
                throw ServingError(e.errorCode, "\(e)")
            }
            requestID = request.requestID; imageID = request.imageID; reply = request.replyTopic
            _ = try options.topics.reply(to: request.replyTopic)
            guard let text = request.text else { throw ServingError(.invalidPrompt, "prompt on the text topic has no text") }
            if !request.model.isEmpty && request.model != backend.modelName {
                throw ServingError(.unknownModel, "text prompts are answered by '\(backend.modelName)'; request asks for '\(request.model)'")
            }
            let values: [Float]
            if let hit = await cache.get(text) {
                values = hit
            } else {
                let t0 = Timing.nowMs()
                values = try encoder.textEmbedding(text)
                metrics.record(.encodeText, ms: Timing.nowMs() - t0)
                await cache.put(text, values)
            }
            request.textEmbedding = FloatTensor(shape: [1, UInt32(values.count)], values: values)
            request.model = backend.modelName
            let t1 = Timing.nowMs()
            _ = try await producer.send(ProducerRecord(topic: options.topics.prompts, key: request.imageID, value: request.encode(),
                                                       headers: [.contentType(protobuf: "PromptRequest"), .requestID(request.requestID)] + record.traceHeaders))
            metrics.record(.publish, ms: Timing.nowMs() - t1)
            logger.info("encoded text", metadata: [LogKey.requestID: "\(requestID)", LogKey.imageID: "\(imageID)"])
        } catch let e as ServingError {
            try? await reporter.report(e, record: record, requestID: requestID, imageID: imageID, replyTopic: reply, model: backend.modelName)
        } catch {
            try? await reporter.report(ServingError(.internal, "\(error)"), record: record, requestID: requestID, imageID: imageID,
                                       replyTopic: reply, model: backend.modelName)
        }
    }
}

/// Bounded phrase → embedding LRU.
actor PhraseCache {
    let capacity: Int
    var entries: [String: (values: [Float], tick: Int)] = [:]
    var tick = 0
    let metrics: CacheMetrics?
    var bytes = 0

    init(capacity: Int, metrics: CacheMetrics? = nil) { self.capacity = max(1, capacity); self.metrics = metrics }

    func get(_ phrase: String) -> [Float]? {
        metrics?.lookup(hit: entries[phrase] != nil)
        guard var e = entries[phrase] else { return nil }
        tick += 1; e.tick = tick; entries[phrase] = e
        return e.values
    }

    func put(_ phrase: String, _ values: [Float]) {
        tick += 1
        bytes -= (entries[phrase]?.values.count ?? 0) * MemoryLayout<Float>.size
        entries[phrase] = (values, tick)
        bytes += values.count * MemoryLayout<Float>.size
        if entries.count > capacity, let oldest = entries.min(by: { $0.value.tick < $1.value.tick })?.key {
            bytes -= (entries[oldest]?.values.count ?? 0) * MemoryLayout<Float>.size
            entries[oldest] = nil
            metrics?.evicted()
        }
        metrics?.size(bytes: bytes, entries: entries.count)
    }
}
