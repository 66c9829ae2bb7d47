import Backends
import Foundation
import Messaging
import Pipeline

extension SegflowClient {
    /// One image of a batch and its prompt request (points/boxes or `everything`).
    public struct BatchItem: Sendable {
        public var image: ImageRequest.Image
        public var prompt: PromptRequest
        public init(image: ImageRequest.Image, prompt: PromptRequest) { self.image = image; self.prompt = prompt }
    }

    /// Many images through the services, streamed so the encoder works ahead: every
    /// ImageRequest is sent at once (the encoder computes the embeddings back to back),
    /// and the prompt for image i + 1 goes out as soon as image i's answer is back — one
    /// prompt ahead of the answers, so no prompt waits on the decoder longer than one
    /// encoder run (a prompt parked past the decoder's `--max-wait-ms` would fail). Each
    /// answer is passed to `onAnswer(index, result)` as it arrives (progress, writing
    /// outputs); an error answer for an item's image or prompt is that item's result and
    /// the others go on; no answer within `timeout` of a prompt ends the batch (thrown).
    public func segmentBatch(_ items: [BatchItem], timeout: Duration = .seconds(300),
                             onAnswer: (Int, Result<MaskResult, ServingError>) throws -> Void) async throws {
        guard !items.isEmpty else { return }
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let replies = try await openReplies()
        let outcome: Result<Void, Error>
        do {
            var imageRequestIDs: [String] = []
            for item in items {
                let id = "img-" + UUID().uuidString
                imageRequestIDs.append(id)
                let request = ImageRequest(requestID: id, imageID: item.prompt.imageID, image: item.image, model: item.prompt.model,
                                           replyTopic: replyTopic == topics.masks ? "" : replyTopic, createdAtMs: Timing.wallMs())
                // Images over the broker's record limit travel as slices, as on every client path.
                _ = try await producer.send(RecordChunking.split(ProducerRecord(topic: topics.images, key: request.imageID, value: request.encode(),
                                                                                headers: [.contentType(protobuf: "ImageRequest"), .requestID(id)])))
            }
            let promptIDs = items.map(\.prompt.requestID)
            let known = Set(imageRequestIDs).union(promptIDs)
            var received: [String: MaskResult] = [:]
            for (i, item) in items.enumerated() {
                let imageID = imageRequestIDs[i]
                // An image the encoder already refused gets no prompt (it would only park on
                // the decoder until EMBEDDING_NOT_FOUND).
                if let failed = received[imageID], let e = failed.error {
                    try onAnswer(i, .failure(ServingError(e.code, "image request failed: \(e.message)")))
                    continue
                }
                var prompt = item.prompt
                prompt.replyTopic = replyTopic == topics.masks ? "" : replyTopic
                prompt.createdAtMs = Timing.wallMs()
                _ = try await producer.send(ProducerRecord(topic: topics.prompts, key: prompt.imageID, value: prompt.encode(),
                                                           headers: [.contentType(protobuf: "PromptRequest"), .requestID(prompt.requestID)]))
                let promptID = prompt.requestID
                let answered = { (r: [String: MaskResult]) in r[promptID] != nil || r[imageID]?.error != nil }
                if !answered(received) {
                    try await receive(replies, known: known, into: &received, timeout: timeout, until: answered)
                }
                if let failed = received[imageID], let e = failed.error {
                    try onAnswer(i, .failure(ServingError(e.code, "image request failed: \(e.message)")))
                } else if let r = received[prompt.requestID] {
                    try onAnswer(i, r.error.map { .failure(ServingError($0.code, $0.message)) } ?? .success(r))
                } else {
                    // The reply consumer was closed at the deadline: the batch ends here.
                    throw ServingError(.timeout, "no answer within \(timeout) for image \(i + 1) of \(items.count) (request \(prompt.requestID))")
                }
            }
            outcome = .success(())
        } catch { outcome = .failure(error) }
        await replies.shutdown()
        await producer.close()
        try outcome.get()
    }

    /// Reads replies into `received` (the first answer per known request id; redelivered
    /// duplicates are dropped) until `until()` holds or `timeout` passes (then returns,
    /// leaving the caller to report what is missing). The consumer stays usable: only
    /// the iteration ends.
    func receive(_ consumer: Consumer, known: Set<String>, into received: inout [String: MaskResult],
                 timeout: Duration, until done: ([String: MaskResult]) -> Bool) async throws {
        let expired = ManagedFlag()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { expired.set(); await consumer.shutdown() }
        }
        defer { timer.cancel() }
        do {
            for try await record in consumer.messages {
                guard let result = try reply(record, waitingFor: { known.contains($0) }) else { continue }
                guard known.contains(result.requestID), received[result.requestID] == nil else { continue }
                received[result.requestID] = result
                if done(received) { return }
            }
        } catch where expired.isSet {
            return
        }
    }
}

/// A flag set once from another task.
final class ManagedFlag: @unchecked Sendable {
    let lock = NSLock()
    var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
