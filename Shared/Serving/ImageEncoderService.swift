import Foundation
import Imaging
import Logging
import ServiceLifecycle
import Messaging
import Backends
import Pipeline

/// Consumes ImageRequests, computes each image's embedding once and publishes it keyed
/// by image id. Offsets are committed only after the embedding (or the error result) is
/// delivered: at-least-once.
public final class ImageEncoderService: Service, MonitoredService {
    public struct Options: Sendable {
        public var groupID = "segflow-image-encoder"
        public var topics = ServingTopics()
        public var embeddingDType: Messaging.DType = .f16
        public var maxPixels = PNG.defaultMaxPixels
        public var promptPairs = PromptPairStore.Options()
        /// Where the poison-record guard keeps what is in hand (nil: no guard).
        public var stateDirectory: String? = PoisonGuard.defaultDirectory()
        public init() {}
    }

    public let backends: BackendSet
    public let options: Options
    let client: KafkaClientConfig
    let logger: Logger
    public let health = ServiceHealth()
    let metrics = ServingMetrics(service: "image-encoder")

    /// Serves the encoder half of each backend; a request's `model` picks (empty = the first).
    public init(backends: BackendSet, client: KafkaClientConfig, options: Options = Options(), logger: Logger) {
        self.backends = backends; self.client = client; self.options = options; self.logger = logger
    }

    /// Runs until the task is cancelled, then drains: stops fetching, commits, flushes.
    public func run() async throws {
        // Every topic it answers on (the first record to a topic librdkafka has not seen waits up to 1 s).
        let producer = try Producer(config: ProducerConfig(client: client),
                                    knownTopics: [options.topics.embeddings, options.topics.masks, options.topics.deadLetter, options.topics.prompts])
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID, storedOffsetCommitIntervalMs: Consumer.commitIntervalMs), topics: [options.topics.images])
        let reporter = ErrorReporter(producer: producer, topics: options.topics, service: "image-encoder", logger: logger, metrics: metrics)
        // Example-prompted models need the registered examples: follow the prompt-pairs topic.
        let store = PromptPairStore(options: options.promptPairs)
        let follower = backends.backends.contains { $0.takesExamples }
            ? Task { [client, options, logger] in
                do { try await store.follow(client: client, topic: options.topics.promptPairs, logger: logger) } catch {
                    logger.error("prompt-pairs consumer failed: \(error)")
                }
            } : nil
        logger.info("image-encoder ready", metadata: [LogKey.model: "\(backends.names.joined(separator: ","))", LogKey.topic: "\(options.topics.images)"])
        let outcome: Result<Void, Error>
        do {
            try await ServiceLoop.run(name: "image-encoder", consumer: consumer, producer: producer, logger: logger, commitEach: true,
                                      metrics: metrics, health: health,
                                      poison: options.stateDirectory.flatMap { PoisonGuard(directory: $0, service: "image-encoder") },
                                      reject: { record, error in await reporter.report(error, record: record, ids: RequestIDs.ofImageRequest(record.value)) }) { record in
                await handle(record, producer: producer, reporter: reporter, store: store)
            }
            outcome = .success(())
        } catch { outcome = .failure(error) }
        follower?.cancel()
        await follower?.value
        try outcome.get()
    }

    func handle(_ record: ConsumedMessage, producer: Producer, reporter: ErrorReporter, store: PromptPairStore) async {
        let headerID = record.headers.string(named: KafkaHeader.requestIDName) ?? ""
        var requestID = headerID, imageID = record.keyString ?? "", reply = "", frame: VideoFrame?
        metrics.requestReceived()
        let started = Timing.nowMs()
        defer { metrics.record(.total, ms: Timing.nowMs() - started) }
        do {
            let request: ImageRequest
            do { request = try ImageRequest(bytes: record.value) } catch let e as MessagingError {
                let ids = RequestIDs.ofImageRequest(record.value).filling(from: record)
                (requestID, imageID, reply) = (ids.requestID, ids.imageID, ids.replyTopic)
                throw ServingError(e.errorCode, "\(e)")
            }
            requestID = request.requestID; imageID = request.imageID; reply = request.replyTopic; frame = request.frame
            _ = try options.topics.reply(to: request.replyTopic)  // before any compute
            let backend = try backends.resolve(request.model, role: "encoder")
            if let inContext = request.inContext {
                if backend.exampleEncoder != nil {
                    return try await forwardExamplePrompt(request, inContext, backend: backend, record: record, producer: producer, store: store)
                }
                return try await answerInContext(request, inContext, backend: backend, record: record, producer: producer, store: store)
            }
            if backend.inContext != nil {
                throw ServingError(.invalidPrompt, "\(backend.modelName) takes in-context prompts: set ImageRequest.in_context with registered prompt ids")
            }
            let image = try decodeImage(request.image)
            metrics.record(.decodeImage, ms: Timing.nowMs() - started)
            try await publishEmbedding(of: image, request, backend: backend, record: record, producer: producer)
        } catch let error as ServingError {
            try? await reporter.report(error, record: record, requestID: requestID, imageID: imageID, replyTopic: reply,
                                       frame: frame)
        } catch {
            try? await reporter.report(ServingError(.internal, "\(error)"), record: record, requestID: requestID, imageID: imageID,
                                       replyTopic: reply, frame: frame)
        }
    }

    /// The key the image's embedding records travel under (ImageEmbedding.partitionKey).
    func embeddingKey(_ request: ImageRequest) -> String {
        if let frame = request.frame, frame.track != nil { return frame.streamID }
        return request.imageID
    }

    /// Computes the image's embedding once and publishes it keyed by image id.
    func publishEmbedding(of image: RGBImage, _ request: ImageRequest, backend: any SegmentationBackend,
                          record: ConsumedMessage, producer: Producer) async throws {
        // Progress notice: decoders holding prompts for this image keep them waiting.
        _ = try await producer.send(ProducerRecord(topic: options.topics.embeddings, key: embeddingKey(request), value: [],
                                                   headers: [KafkaHeader(name: KafkaHeader.encodingName, string: request.imageID),
                                                             .requestID(request.requestID)]))
        let t0 = Timing.nowMs()
        StartupTrace.mark("image-encoder: encoding \(request.imageID)")
        let embedding = try backend.embed(image)
        let wire = try backend.wire(embedding, context: EmbeddingContext(
            requestID: request.requestID, imageID: request.imageID, dtype: options.embeddingDType,
            encoderMs: Timing.nowMs() - t0, frame: request.frame, createdAtMs: request.createdAtMs))
        let t1 = Timing.nowMs()
        metrics.record(.encode, ms: t1 - t0)
        let reports = try await producer.sendEmbedding(wire, topic: options.topics.embeddings, headers: record.traceHeaders)
        // Where the chunks are (not for a tracked stream's frames: they are work, not cache).
        if wire.frame?.track == nil {
            if let location = EmbeddingLocation(imageID: wire.imageID, requestID: wire.requestID, model: wire.model,
                                                reportedPartitions: reports.map(\.partition), offsets: reports.map(\.offset),
                                                producedAtMs: Timing.wallMs()) {
                do {
                    _ = try await producer.send(ProducerRecord(topic: options.topics.embeddingIndex, key: wire.imageID, value: location.encode(),
                                                               headers: [.contentType(protobuf: "EmbeddingLocation")]))
                } catch {
                    // The embedding is published; only on-demand fetches of it later are lost.
                    logger.warning("could not index embedding \(wire.imageID): \(error)")
                }
            } else {
                logger.warning("not indexing embedding \(wire.imageID): its delivery reports do not locate it (\(reports.map { "\($0.partition)/\($0.offset)" }.joined(separator: ", "))); decoders get it from the topic, only a later on-demand fetch of it is lost")
            }
        }
        metrics.record(.publish, ms: Timing.nowMs() - t1)
        StartupTrace.mark("image-encoder: embedding published")
        logger.info("encoded", metadata: [LogKey.requestID: "\(request.requestID)", LogKey.imageID: "\(request.imageID)",
                                          LogKey.encoderMs: "\(Int(wire.encoderMs))"])
    }

    /// An example-prompted request for a model that still splits (CLIPSeg one-shot): the
    /// examples' conditional embedding is computed here, where the vision tower runs; the
    /// query's embedding is published as usual and a PromptRequest carrying the conditional
    /// embedding goes to the prompts topic (keyed by image id, so the decoder that holds the
    /// embedding gets it), answered by the prompt-decoder to the request's reply topic.
    /// Bad examples fail before anything is published.
    func forwardExamplePrompt(_ request: ImageRequest, _ ic: InContextRequest, backend: any SegmentationBackend,
                              record: ConsumedMessage, producer: Producer, store: PromptPairStore) async throws {
        guard let encoder = backend.exampleEncoder else { throw ServingError(.internal, "\(backend.modelName) has no example encoder") }
        let t0 = Timing.nowMs()
        let pairs = try await store.pairs(ic.promptIDs)
        let examples = try pairs.map { (p) throws(ServingError) in try InContextExample.decode(p, maxPixels: options.maxPixels) }
        let conditional = try encoder.exampleEmbedding(examples, request: ic)
        let promptMs = Timing.nowMs() - t0
        try await publishEmbedding(of: try decodeImage(request.image), request, backend: backend, record: record, producer: producer)
        let prompt = PromptRequest.examplePrompt(requestID: request.requestID, imageID: request.imageID, model: backend.modelName,
                                                 inContext: ic, conditional: conditional, replyTopic: request.replyTopic,
                                                 createdAtMs: request.createdAtMs, frame: request.frame)
        _ = try await producer.send(ProducerRecord(topic: options.topics.prompts, key: request.imageID, value: prompt.encode(),
                                                   headers: [.contentType(protobuf: "PromptRequest"), .requestID(request.requestID)] + record.traceHeaders))
        logger.info("forwarded example prompt", metadata: [LogKey.requestID: "\(request.requestID)", LogKey.imageID: "\(request.imageID)",
                                                           LogKey.encoderMs: "\(Int(promptMs))"])
    }

    /// An in-context request: the examples from the store, the model's whole answer as a
    /// MaskResult to the reply topic (or the masks topic).
    func answerInContext(_ request: ImageRequest, _ ic: InContextRequest, backend: any SegmentationBackend,
                         record: ConsumedMessage, producer: Producer, store: PromptPairStore) async throws {
        guard let segmenter = backend.inContext else {
            throw ServingError(.unsupported, "\(backend.modelName) takes no in-context prompts (it serves: \(backend.promptKinds.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        let t0 = Timing.nowMs()
        let pairs = try await store.pairs(ic.promptIDs)
        let examples = try pairs.map { (p) throws(ServingError) in try InContextExample.decode(p, maxPixels: options.maxPixels) }
        let image = try decodeImage(request.image)
        let answer = try segmenter.segment(query: image, examples: examples, request: ic)
        let now = Timing.wallMs()
        let created = request.createdAtMs > 0 ? request.createdAtMs : now
        let result = MaskResult(requestID: request.requestID, imageID: request.imageID, masks: answer.masks,
                                timings: .init(queueMs: 0, decodeMs: Timing.nowMs() - t0, totalMs: Double(max(0, now - created))),
                                model: backend.modelName, frame: request.frame,
                                rawOutput: ic.returnRaw ? FloatTensor(shape: answer.raw.shape.map { UInt32($0) }, values: answer.raw.data) : nil)
        let topic = try options.topics.reply(to: request.replyTopic)
        metrics.record(.inContext, ms: Timing.nowMs() - t0)
        _ = try await producer.send(ProducerRecord(topic: topic, key: request.imageID, value: result.encode(),
                                                   headers: [.contentType(protobuf: "MaskResult"), .requestID(request.requestID)] + record.traceHeaders))
        logger.info("answered in-context", metadata: [LogKey.requestID: "\(request.requestID)", LogKey.imageID: "\(request.imageID)",
                                                      LogKey.encoderMs: "\(Int(Timing.nowMs() - t0))"])
    }

    func decodeImage(_ image: ImageRequest.Image) throws(ServingError) -> RGBImage {
        try WireImage.decode(image, maxPixels: options.maxPixels)
    }
}
