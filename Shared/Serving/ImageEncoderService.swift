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
public final class ImageEncoderService: Service {
    public struct Options: Sendable {
        public var groupID = "segflow-image-encoder"
        public var topics = ServingTopics()
        public var embeddingDType: Messaging.DType = .f16
        public var maxPixels = PNG.defaultMaxPixels
        public init() {}
    }

    public let backends: BackendSet
    public let options: Options
    let client: KafkaClientConfig
    let logger: Logger

    /// Serves the encoder half of each backend; a request's `model` picks (empty = the first).
    public init(backends: BackendSet, client: KafkaClientConfig, options: Options = Options(), logger: Logger) {
        self.backends = backends; self.client = client; self.options = options; self.logger = logger
    }

    var modelNames: [String] { backends.names }

    /// Runs until the task is cancelled, then drains: stops fetching, commits, flushes.
    public func run() async throws {
        let producer = try Producer(config: ProducerConfig(client: client))
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID), topics: [options.topics.images])
        let reporter = ErrorReporter(producer: producer, topics: options.topics, service: "image-encoder", logger: logger)
        logger.info("image-encoder ready", metadata: ["seg.model": "\(modelNames.joined(separator: ","))", "kafka.topic": "\(options.topics.images)"])
        try await ServiceLoop.run(name: "image-encoder", consumer: consumer, producer: producer, logger: logger, commitEach: true) { record in
            await handle(record, producer: producer, reporter: reporter)
        }
    }

    func handle(_ record: ConsumedMessage, producer: Producer, reporter: ErrorReporter) async {
        let headerID = record.headers.string(named: KafkaHeader.requestIDName) ?? ""
        var requestID = headerID, imageID = record.keyString ?? "", reply = "", frame: VideoFrame?
        do {
            let request: ImageRequest
            do { request = try ImageRequest(bytes: record.value) } catch let e as MessagingError {
                throw ServingError(e.errorCode, "\(e)")
            }
            requestID = request.requestID; imageID = request.imageID; reply = request.replyTopic; frame = request.frame
            let backend = try backends.resolve(request.model, role: "encoder")
            let image = try decodeImage(request.image)
            let t0 = Timing.nowMs()
            let embedding = try backend.embed(image)
            let wire = try backend.wire(embedding, context: EmbeddingContext(
                requestID: request.requestID, imageID: request.imageID, dtype: options.embeddingDType,
                encoderMs: Timing.nowMs() - t0, frame: request.frame, createdAtMs: request.createdAtMs))
            let ms = wire.encoderMs
            _ = try await producer.sendEmbedding(wire, topic: options.topics.embeddings, headers: record.traceHeaders)
            logger.info("encoded", metadata: ["seg.request.id": "\(requestID)", "seg.image.id": "\(imageID)",
                                              "seg.encoder.ms": "\(Int(ms))"])
        } catch let error as ServingError {
            try? await reporter.report(error, record: record, requestID: requestID, imageID: imageID, replyTopic: reply,
                                       frame: frame)
        } catch {
            try? await reporter.report(ServingError(.internal, "\(error)"), record: record, requestID: requestID, imageID: imageID,
                                       replyTopic: reply, frame: frame)
        }
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
