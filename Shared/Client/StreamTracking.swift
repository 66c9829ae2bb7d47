import Backends
import Foundation
import Messaging
import Pipeline

/// One frame for `SegflowClient.trackStream`: the image and any object prompts that
/// start on it (new objects, or corrections re-anchoring an id).
public struct StreamFrame: Sendable {
    public var image: ImageRequest.Image
    public var objects: [ObjectPrompt]
    public var removeObjects: [UInt32]
    public init(image: ImageRequest.Image, objects: [ObjectPrompt] = [], removeObjects: [UInt32] = []) {
        self.image = image; self.objects = objects; self.removeObjects = removeObjects
    }
}

extension SegflowClient {
    /// Tracks objects through a stream on the services (README, Streams): every frame is
    /// an ImageRequest keyed by the stream id carrying `VideoFrame.track`, so the
    /// image-encoder encodes frames in order (working up to `window` frames ahead) and the
    /// prompt-decoder that owns the stream answers each with one mask per object, holding
    /// the stream's state (and snapshotting it, so a failover continues it). Frames are
    /// pulled from `next` one at a time (nil = no more; the last one sent carries
    /// `end_of_stream`), so a long video never sits in memory. `onResult` gets each frame's
    /// answer in order; an error answer ends the stream with that error.
    /// `timeout` bounds the wait for each answer.
    @discardableResult
    public func trackStream(streamID: String, model: String, window: Int = 8, outputFormat: OutputFormat = .rle,
                            timeout: Duration = .seconds(120), next: () throws -> StreamFrame?,
                            onResult: (Int, MaskResult) throws -> Void) async throws -> Int {
        precondition(window >= 1)
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let replies = try await openReplies()
        var answered = 0
        let outcome: Result<Void, Error>
        do {
            var inFlight: [(index: Int, requestID: String)] = []
            var stash: [String: MaskResult] = [:]
            var upcoming = try next()
            var index = 0
            let run = UUID().uuidString.prefix(8)
            while upcoming != nil || !inFlight.isEmpty {
                while let frame = upcoming, inFlight.count < window {
                    upcoming = try next()
                    let imageID = "\(streamID)-frame-\(index)"
                    let requestID = "frm-\(streamID)-\(index)-\(run)"
                    let track = StreamTrack(objects: frame.objects, removeObjects: frame.removeObjects, endOfStream: upcoming == nil,
                                            replyTopic: replyTopic == topics.masks ? "" : replyTopic, outputFormat: outputFormat)
                    let req = ImageRequest(requestID: requestID, imageID: imageID, image: frame.image,
                                           frame: VideoFrame(streamID: streamID, frameIndex: UInt64(index), track: track),
                                           model: model, createdAtMs: Timing.wallMs())
                    _ = try await producer.send(RecordChunking.split(ProducerRecord(topic: topics.images, key: streamID, value: req.encode(),
                                                                                    headers: [.contentType(protobuf: "ImageRequest"), .requestID(requestID)])))
                    inFlight.append((index, requestID))
                    index += 1
                }
                let (i, requestID) = inFlight.removeFirst()
                let waiting = Set(inFlight.map(\.requestID) + [requestID])
                if stash[requestID] == nil {
                    try await readReplies(replies, into: &stash, until: requestID, waitingFor: waiting, timeout: timeout)
                }
                guard let r = stash.removeValue(forKey: requestID) else { throw ServingError(.timeout, "no answer within \(timeout) for frame \(i) of stream \(streamID)") }
                if let e = r.error { throw ServingError(e.code, "stream \(streamID), frame \(i): \(e.message)") }
                try onResult(i, r)
                answered += 1
            }
            outcome = .success(())
        } catch { outcome = .failure(error) }
        await replies.shutdown()
        await producer.close()
        try outcome.get()
        return answered
    }

    /// Reads replies into `stash` (answers to `waitingFor` only; first answer per id wins)
    /// until `target` is there or `timeout` passes.
    func readReplies(_ consumer: Consumer, into stash: inout [String: MaskResult], until target: String,
                     waitingFor: Set<String>, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let timer = Task {
            try? await Task.sleep(until: deadline)
            if !Task.isCancelled { await consumer.shutdown() }
        }
        defer { timer.cancel() }
        for try await record in consumer.messages {
            guard let result = try reply(record, waitingFor: { waitingFor.contains($0) }), waitingFor.contains(result.requestID) else { continue }
            if stash[result.requestID] == nil { stash[result.requestID] = result }
            if result.requestID == target { return }
        }
    }
}
