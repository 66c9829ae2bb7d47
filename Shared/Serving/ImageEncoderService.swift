import Foundation
import Imaging
import Logging
import Messaging
import SAM

/// Consumes ImageRequests, computes each image's embedding once and publishes it keyed
/// by image id. Offsets are committed only after the embedding (or the error result) is
/// delivered: at-least-once.
public final class ImageEncoderService: Sendable {
    public struct Options: Sendable {
        public var groupID = "segflow-image-encoder"
        public var topics = ServingTopics()
        public var embeddingDType: Messaging.DType = .f16
        public var maxPixels = PNG.defaultMaxPixels
        public init() {}
    }

    public let sam: Sam
    public let options: Options
    let client: KafkaClientConfig
    let logger: Logger

    public init(sam: Sam, client: KafkaClientConfig, options: Options = Options(), logger: Logger) {
        self.sam = sam; self.client = client; self.options = options; self.logger = logger
    }

    /// Runs until the task is cancelled, then drains: stops fetching, commits, flushes.
    public func run() async throws {
        let producer = try Producer(config: ProducerConfig(client: client))
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: options.groupID), topics: [options.topics.images])
        let reporter = ErrorReporter(producer: producer, topics: options.topics, service: "image-encoder", logger: logger)
        logger.info("image-encoder ready", metadata: ["seg.model": "\(sam.kind.rawValue)", "kafka.topic": "\(options.topics.images)"])
        do {
            try await withTaskCancellationHandler {
                for try await record in consumer.messages {
                    await handle(record, producer: producer, reporter: reporter)
                    try await consumer.commit(record)
                }
            } onCancel: {
                Task { await consumer.shutdown() }
            }
        } catch is CancellationError {}
        await consumer.shutdown()
        try? await producer.flush(timeout: .seconds(10))
        await producer.close()
        logger.info("image-encoder stopped")
    }

    func handle(_ record: ConsumedMessage, producer: Producer, reporter: ErrorReporter) async {
        let headerID = record.headers.first { $0.name == KafkaHeader.requestIDName }?.stringValue ?? ""
        var requestID = headerID, imageID = record.keyString ?? "", reply = "", frame: VideoFrame?
        do {
            let request: ImageRequest
            do { request = try ImageRequest(bytes: record.value) } catch let e as MessagingError {
                throw ServingError(e.errorCode, "\(e)")
            }
            requestID = request.requestID; imageID = request.imageID; reply = request.replyTopic; frame = request.frame
            if !request.model.isEmpty && request.model != sam.kind.rawValue {
                throw ServingError(.unknownModel, "this encoder serves '\(sam.kind.rawValue)', request asks for '\(request.model)'")
            }
            let image = try decodeImage(request.image)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            let wire = Conversions.wire(emb, requestID: request.requestID, imageID: request.imageID, dtype: options.embeddingDType,
                                        encoderMs: ms, frame: request.frame, createdAtMs: request.createdAtMs)
            _ = try await producer.sendEmbedding(wire, topic: options.topics.embeddings)
            logger.info("encoded", metadata: ["seg.request.id": "\(requestID)", "seg.image.id": "\(imageID)",
                                              "seg.encoder.ms": "\(Int(ms))"])
        } catch let error as ServingError {
            try? await reporter.report(error, record: record, requestID: requestID, imageID: imageID, replyTopic: reply,
                                       model: sam.kind.rawValue, frame: frame)
        } catch {
            try? await reporter.report(ServingError(.internal, "\(error)"), record: record, requestID: requestID, imageID: imageID,
                                       replyTopic: reply, model: sam.kind.rawValue, frame: frame)
        }
    }

    func decodeImage(_ image: ImageRequest.Image) throws(ServingError) -> RGBImage {
        switch image {
        case let .png(bytes):
            do { return try PNG.decodeRGB(bytes, options: .init(maxPixels: options.maxPixels)) } catch {
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
