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
        let producer = try Producer(config: ProducerConfig(client: client))
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID), topics: [options.topics.images])
        let reporter = ErrorReporter(producer: producer, topics: options.topics, service: "image-encoder", logger: logger, metrics: metrics)
        // In-context models need the registered examples: follow the prompt-pairs topic.
        let store = PromptPairStore(options: options.promptPairs)
        let follower = backends.backends.contains { $0.inContext != nil }
            ? Task { [client, options, logger] in
                do { try await store.follow(client: client, topic: options.topics.promptPairs, logger: logger) } catch {
                    logger.error("prompt-pairs consumer failed: \(error)")
                }
            } : nil
        logger.info("image-encoder ready", metadata: [LogKey.model: "\(backends.names.joined(separator: ","))", LogKey.topic: "\(options.topics.images)"])
        let outcome: Result<Void, Error>
        do {
            try await ServiceLoop.run(name: "image-encoder", consumer: consumer, producer: producer, logger: logger, commitEach: true,
                                     metrics: metrics, health: health) { record in
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
                throw ServingError(e.errorCode, "\(e)")
            }
            requestID = request.requestID; imageID = request.imageID; reply = request.replyTopic; frame = request.frame
            let backend = try backends.resolve(request.model, role: "encoder")
            if let inContext = request.inContext {
                return try await answerInContext(request, inContext, backend: backend, record: record, producer: producer, store: store)
            }
            if backend.inContext != nil {
                throw ServingError(.invalidPrompt, "\(backend.modelName) takes in-context prompts: set ImageRequest.in_context with registered prompt ids")
            }
            let image = try decodeImage(request.image)
            let t0 = Timing.nowMs()
            metrics.record(.decodeImage, ms: t0 - started)
            let embedding = try backend.embed(image)
            let wire = try backend.wire(embedding, context: EmbeddingContext(
                requestID: request.requestID, imageID: request.imageID, dtype: options.embeddingDType,
                encoderMs: Timing.nowMs() - t0, frame: request.frame, createdAtMs: request.createdAtMs))
            let ms = wire.encoderMs
            let t1 = Timing.nowMs()
            metrics.record(.encode, ms: t1 - t0)
            _ = try await producer.sendEmbedding(wire, topic: options.topics.embeddings, headers: record.traceHeaders)
            metrics.record(.publish, ms: Timing.nowMs() - t1)
            logger.info("encoded", metadata: [LogKey.requestID: "\(requestID)", LogKey.imageID: "\(imageID)",
                                              LogKey.encoderMs: "\(Int(ms))"])
        } catch let error as ServingError {
            try? await reporter.report(error, record: record, requestID: requestID, imageID: imageID, replyTopic: reply,
                                       frame: frame)
        } catch {
            try? await reporter.report(ServingError(.internal, "\(error)"), record: record, requestID: requestID, imageID: imageID,
                                       replyTopic: reply, frame: frame)
        }
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
        let topic = request.replyTopic.isEmpty ? options.topics.masks : request.replyTopic
        metrics.record(.inContext, ms: Timing.nowMs() - t0)
        _ = try await producer.send(ProducerRecord(topic: topic, key: request.imageID, value: result.encode(),
                                                   headers: [.contentType(protobuf: "MaskResult"), .requestID(request.requestID)] + record.traceHeaders))
        logger.info("answered in-context", metadata: [LogKey.requestID: "\(request.requestID)", LogKey.imageID: "\(request.imageID)",
                                                      LogKey.encoderMs: "\(Int(Timing.nowMs() - t0))"])
    }

    func decodeImage(_ image: ImageRequest.Image) throws(ServingError) -> RGBImage {
        switch image {
        case let .png(bytes):
            // PNG, JPEG or WebP, detected by content (the field predates JPEG and WebP).
            do { return try ImageDecoder.decodeRGB(bytes, options: .init(maxPixels: options.maxPixels)) } catch {
                if case .tooManyPixels = error { throw ServingError(.imageTooLarge, "\(error)") }
                throw ServingError(.invalidImage, "\(error)")
            }
        case let .raw(raw):
            let (w, h) = (Int(raw.width), Int(raw.height))
            guard w > 0, h > 0 else { throw ServingError(.invalidImage, "raw image has zero size \(w)x\(h)") }
            guard w * h <= options.maxPixels else {
                throw ServingError(.imageTooLarge, "raw image \(w)x\(h) exceeds the limit of \(options.maxPixels) pixels")
            }
            guard raw.rgb8.count == w * h * 3 else {
                throw ServingError(.invalidImage, "raw image \(w)x\(h) needs \(w * h * 3) RGB bytes, got \(raw.rgb8.count)")
            }
            do { return try RGBImage(width: w, height: h, pixels: raw.rgb8) } catch { throw ServingError(.invalidImage, "\(error)") }
        }
    }
}
