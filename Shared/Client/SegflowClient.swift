import Backends
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM

/// Sends an image and its prompts through Kafka and waits for the mask results.
///
/// Results come back on the masks topic (or `replyTopic`). The client reads it with a
/// private consumer group from the latest offset, and only after its partitions are
/// assigned does it send anything, so no answer can slip past it. Answers are matched
/// by request id; duplicates (at-least-once redelivery) are dropped.
public final class SegflowClient: Sendable {
    public let client: KafkaClientConfig
    public let topics: ServingTopics
    public let replyTopic: String
    let logger: Logger

    public init(client: KafkaClientConfig, topics: ServingTopics = ServingTopics(), replyTopic: String? = nil, logger: Logger) {
        self.client = client; self.topics = topics; self.replyTopic = replyTopic ?? topics.masks; self.logger = logger
    }

    public struct Outcome: Sendable {
        public var results: [String: MaskResult]   // by request id
        public var duplicatesDropped: Int
    }

    /// Opens the reply consumer, positioned: it reads every partition of the reply topic
    /// from the end offsets queried now (exact offsets, outside any consumer group), so no
    /// answer to a request sent after this returns can slip past it, and no group join
    /// (3 s on the embedded broker) stands before the first request.
    public func openReplies(timeout: Duration = .seconds(30)) async throws -> Consumer {
        let partitions = try await Admin(config: client).waitForTopics([replyTopic], timeout: timeout)[replyTopic] ?? 0
        guard partitions > 0 else { throw ServingError(.timeout, "reply topic \(replyTopic) has no partitions") }
        return try await Consumer(config: ConsumerConfig(client: client, groupID: "segflow-client-\(UUID().uuidString)",
                                                         autoOffsetReset: .latest, fetchWaitMaxMs: 1),
                                  readingFromEndOf: replyTopic, partitions: partitions)
    }

    /// Writes a marker record (key "segflow-marker-…", value "segflow-client-marker", not a
    /// MaskResult, so result readers skip it) to every partition the consumer owns and
    /// reads until all markers came back.
    public static func waitUntilPositioned(_ consumer: Consumer, topic: String, client: KafkaClientConfig,
                                           timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var partitions: [TopicPartition] = []
        while partitions.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw ServingError(.timeout, "reply consumer on \(topic) got no partitions within \(timeout)")
            }
            partitions = try await consumer.assignment().filter { $0.topic == topic }
            if partitions.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        let marker = "segflow-marker-" + UUID().uuidString
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        var pending = Set(partitions.map(\.partition))
        let timer = Task { try? await Task.sleep(until: deadline); if !Task.isCancelled { await consumer.shutdown() } }
        defer { timer.cancel() }
        // Resend until seen: a marker written before the position was resolved is skipped.
        let sender = Task {
            while !Task.isCancelled {
                for p in partitions {
                    _ = try? await producer.send(ProducerRecord(topic: topic, key: marker, value: Array("segflow-client-marker".utf8),
                                                                partition: p.partition))
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        defer { sender.cancel() }
        for try await m in consumer.messages {
            if m.keyString == marker { pending.remove(m.partition) }
            if pending.isEmpty { break }
        }
        sender.cancel()
        await sender.value
        await producer.close()
        guard pending.isEmpty else { throw ServingError(.timeout, "reply consumer on \(topic) was not positioned within \(timeout)") }
    }

    /// Waits for one result per id in `requestIDs`; an error result for `failFast` ids
    /// (e.g. the image request) ends the wait early.
    public func collect(_ consumer: Consumer, requestIDs: Set<String>, failFast: Set<String> = [],
                        timeout: Duration) async throws -> Outcome {
        var results: [String: MaskResult] = [:]
        var duplicates = 0
        let deadline = ContinuousClock.now + timeout
        let timer = Task {
            try? await Task.sleep(until: deadline)
            if !Task.isCancelled { await consumer.shutdown() }
        }
        defer { timer.cancel() }
        for try await record in consumer.messages {
            guard let result = try reply(record, waitingFor: { requestIDs.contains($0) || failFast.contains($0) }) else { continue }
            let id = result.requestID
            guard requestIDs.contains(id) || failFast.contains(id) else { continue }
            if results[id] != nil { duplicates += 1; continue }
            results[id] = result
            if failFast.contains(id), result.error != nil { break }
            if requestIDs.isSubset(of: Set(results.keys)) { break }
        }
        if !requestIDs.isSubset(of: Set(results.keys)) && results.values.allSatisfy({ $0.error == nil }) {
            let missing = requestIDs.subtracting(results.keys).sorted()
            throw ServingError(.timeout, "no answer within \(timeout) for request(s) \(missing.joined(separator: ", "))")
        }
        return Outcome(results: results, duplicatesDropped: duplicates)
    }

    /// A record of the reply topic as a MaskResult, or nil for one to skip. Never drops a
    /// reply silently: an unreadable one for a request we wait on fails the wait; anything
    /// else on the topic (markers, other clients' junk) is logged.
    func reply(_ record: ConsumedMessage, waitingFor: (String) -> Bool) throws -> MaskResult? {
        do { return try MaskResult(bytes: record.value) } catch {
            let rid = record.headers.string(named: KafkaHeader.requestIDName) ?? ""
            if waitingFor(rid) {
                throw ServingError((error as? MessagingError)?.errorCode ?? .invalidProtobuf,
                                   "the reply to request \(rid) cannot be read: \(error)")
            }
            if record.keyString?.hasPrefix("segflow-marker-") != true {
                logger.warning("skipping an unreadable record on \(record.topic) (partition \(record.partition), offset \(record.offset)): \(error)")
            }
            return nil
        }
    }

    /// One image, one prompt request (with possibly many boxes): the `segflow segment` path.
    /// Text prompts go to the text topic (`promptTopic: topics… text`), the rest to prompts.
    public func segment(image: ImageRequest.Image, prompts: PromptRequest, promptTopic: String? = nil,
                        timeout: Duration = .seconds(300)) async throws -> MaskResult {
        let producer = try Producer(config: ProducerConfig(client: client), knownTopics: [topics.images, promptTopic ?? topics.prompts])
        let replies = try await openReplies()
        StartupTrace.mark("client: replies consumer positioned")
        let imageRequestID = "img-" + UUID().uuidString
        let now = Timing.wallMs()
        var prompt = prompts
        prompt.createdAtMs = now
        let request = ImageRequest(requestID: imageRequestID, imageID: prompts.imageID, image: image, model: prompt.model,
                                   replyTopic: replyTopic == topics.masks ? "" : replyTopic, createdAtMs: now)
        _ = try await producer.send(RecordChunking.split(ProducerRecord(topic: topics.images, key: request.imageID, value: request.encode(),
                                                   headers: [.contentType(protobuf: "ImageRequest"), .requestID(imageRequestID)])))
        _ = try await producer.send(ProducerRecord(topic: promptTopic ?? topics.prompts, key: prompt.imageID, value: prompt.encode(),
                                                   headers: [.contentType(protobuf: "PromptRequest"), .requestID(prompt.requestID)]))
        StartupTrace.mark("client: image and prompt sent")
        logger.debug("sent image and prompt", metadata: [LogKey.imageID: "\(prompt.imageID)", LogKey.requestID: "\(prompt.requestID)"])
        let collected: Result<Outcome, Error>
        do {
            collected = .success(try await collect(replies, requestIDs: [prompt.requestID], failFast: [imageRequestID], timeout: timeout))
        } catch { collected = .failure(error) }
        StartupTrace.mark("client: answer received")
        // Close before returning so an embedded broker can stop after us without noise.
        await replies.shutdown()
        await producer.close()
        StartupTrace.mark("client: closed")
        let outcome = try collected.get()
        if let failed = outcome.results[imageRequestID], let e = failed.error {
            throw ServingError(e.code, "image request failed: \(e.message)")
        }
        guard let result = outcome.results[prompt.requestID] else { throw ServingError(.timeout, "no result") }
        if let e = result.error { throw ServingError(e.code, e.message) }
        return result
    }
}

extension SegmentationResult {
    /// The command-line result from a wire MaskResult (prompt-major mask order, see
    /// Conversions.masks).
    public init(maskResult r: MaskResult, prompts: [SamPrompt], width: Int, height: Int, timingsMs: [String: Double]) throws {
        let perPrompt = max(1, r.masks.count / max(1, prompts.count))
        var out: [PromptResult] = []
        for (i, p) in prompts.enumerated() {
            let slice = r.masks[(i * perPrompt)..<min(r.masks.count, (i + 1) * perPrompt)]
            var masks: [Mask] = []
            for m in slice {
                let (h, w, counts) = try WireMask.rle(m)
                let rle = RLE(size: [h, w], counts: counts)
                masks.append(Mask(predictedIoU: m.predictedIoU, stabilityScore: m.stabilityScore, area: Int(m.area),
                                  bbox: [Int(m.bbox.x), Int(m.bbox.y), Int(m.bbox.w), Int(m.bbox.h)], segmentation: rle))
            }
            let best = masks.indices.max { masks[$0].predictedIoU < masks[$1].predictedIoU } ?? 0
            out.append(PromptResult(points: p.points.map { [$0.x, $0.y, Float($0.label)] },
                                    box: p.box.map { [$0.x0, $0.y0, $0.x1, $0.y1] }, masks: masks, best: best))
        }
        self.init(model: r.model, width: width, height: height, prompts: out, timingsMs: timingsMs)
    }
}

extension SegflowClient {
    /// Tracks an object through video frames over Kafka: every frame is sent at once as an
    /// ImageRequest keyed by `streamID` (per-stream order on the images topic; the encoder
    /// works ahead), and each frame's prompt — the previous frame's low-res logits and mask
    /// box, as VideoTracker does in-process — is sent when the previous answer is back.
    /// `onFrame(i)` runs as frame i's answer arrives (progress).
    public func track(streamID: String, frames: [[UInt8]], initial: PromptRequest, model: String,
                      timeout: Duration = .seconds(300), onFrame: (Int) -> Void = { _ in }) async throws -> [MaskResult] {
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0), knownTopics: [topics.images, topics.prompts])
        let replies = try await openReplies()
        var results: [MaskResult] = []
        let outcome: Result<Void, Error>
        do {
            let imageIDs = frames.indices.map { "\(streamID)-frame-\($0)" }
            for (i, png) in frames.enumerated() {
                let req = ImageRequest(requestID: "img-\(imageIDs[i])-\(UUID().uuidString)", imageID: imageIDs[i], image: .png(png),
                                       frame: VideoFrame(streamID: streamID, frameIndex: UInt64(i)), model: model,
                                       createdAtMs: Timing.wallMs())
                _ = try await producer.send(RecordChunking.split(ProducerRecord(topic: topics.images, key: streamID, value: req.encode(),
                                                           headers: [.contentType(protobuf: "ImageRequest"), .requestID(req.requestID)])))
            }
            var prompt = initial
            for i in frames.indices {
                prompt.requestID = "trk-\(imageIDs[i])-\(UUID().uuidString)"
                prompt.imageID = imageIDs[i]
                prompt.frame = VideoFrame(streamID: streamID, frameIndex: UInt64(i))
                prompt.returnLowResLogits = true
                prompt.multimask = false
                prompt.model = model
                prompt.createdAtMs = Timing.wallMs()
                _ = try await producer.send(ProducerRecord(topic: topics.prompts, key: prompt.imageID, value: prompt.encode(),
                                                           headers: [.contentType(protobuf: "PromptRequest"), .requestID(prompt.requestID)]))
                let got = try await collect(replies, requestIDs: [prompt.requestID], timeout: timeout)
                guard let r = got.results[prompt.requestID] else { throw ServingError(.timeout, "no answer for frame \(i)") }
                if let e = r.error { throw ServingError(e.code, "frame \(i): \(e.message)") }
                results.append(r)
                onFrame(i)
                guard let m = r.masks.first, let logits = m.lowResLogits else { break }
                let mask = try WireMask.decode(m)
                guard mask.area > 0 else { break }  // object lost
                let b = mask.boundingBox
                prompt = PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: Float(b.x), y0: Float(b.y),
                                                                                 x1: Float(b.x + b.width - 1), y1: Float(b.y + b.height - 1))],
                                       maskInput: logits)
            }
            outcome = .success(())
        } catch { outcome = .failure(error) }
        await replies.shutdown()
        await producer.close()
        try outcome.get()
        return results
    }
}

extension SegflowClient {
    /// Registers example pairs on the prompt-pairs topic (keyed by prompt id; compacted,
    /// so re-registering an id replaces it). Register once, reference by id from every
    /// in-context request (and every frame of a stream).
    public func register(_ pairs: [PromptPair]) async throws {
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let outcome: Result<Void, Error>
        do {
            for p in pairs {
                _ = try await producer.send(ProducerRecord(topic: topics.promptPairs, key: p.promptID, value: p.encode(),
                                                           headers: [.contentType(protobuf: "PromptPair")]))
            }
            outcome = .success(())
        } catch { outcome = .failure(error) }
        await producer.close()
        try outcome.get()
    }

    /// One in-context query (SegGPT, Painter): the image-encoder answers it whole from the
    /// registered examples `inContext.promptIDs`. Errors (unknown prompt ids, mismatched
    /// sizes, bad masks) come back with their stable codes.
    public func segmentInContext(image: ImageRequest.Image, imageID: String, model: String, inContext: InContextRequest,
                                 frame: VideoFrame? = nil, timeout: Duration = .seconds(300)) async throws -> MaskResult {
        try await segmentInContext([(image, imageID, frame)], model: model, inContext: { _ in inContext }, timeout: timeout)[0]
    }

    /// Several in-context queries sent at once (e.g. video frames keyed by stream id, so the
    /// encoder works through them in order), answers returned in the same order.
    public func segmentInContext(_ images: [(image: ImageRequest.Image, imageID: String, frame: VideoFrame?)], model: String,
                                 inContext: (Int) -> InContextRequest, timeout: Duration = .seconds(300)) async throws -> [MaskResult] {
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0), knownTopics: [topics.images])
        let replies = try await openReplies()
        let outcome: Result<[MaskResult], Error>
        do {
            var ids: [String] = []
            for (i, item) in images.enumerated() {
                let id = "ctx-" + UUID().uuidString
                ids.append(id)
                let req = ImageRequest(requestID: id, imageID: item.imageID, image: item.image, frame: item.frame, model: model,
                                       replyTopic: replyTopic == topics.masks ? "" : replyTopic, createdAtMs: Timing.wallMs(),
                                       inContext: inContext(i))
                _ = try await producer.send(RecordChunking.split(ProducerRecord(topic: topics.images, key: item.frame?.streamID ?? item.imageID,
                                                           value: req.encode(),
                                                           headers: [.contentType(protobuf: "ImageRequest"), .requestID(id)])))
            }
            let got = try await collect(replies, requestIDs: Set(ids), timeout: timeout)
            outcome = .success(try ids.map { id in
                guard let r = got.results[id] else { throw ServingError(.timeout, "no answer for \(id)") }
                if let e = r.error { throw ServingError(e.code, e.message) }
                return r
            })
        } catch { outcome = .failure(error) }
        await replies.shutdown()
        await producer.close()
        return try outcome.get()
    }
}

extension StageTimings {
    /// The model stages the services report in a result (encode: the image encoder's run,
    /// when the decoder knew it; decode: prompt encoder + mask decoder).
    public init(wire t: MaskResult.Timings) {
        self.init(["decode": t.decodeMs])
        if t.encodeMs > 0 { self["encode"] = t.encodeMs }
    }
}
