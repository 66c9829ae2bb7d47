import Imaging
import Messaging
import Pipeline
import Tensor

extension SegmentationBackend {
    /// An in-process request: the encoder half, then the decoder half, with the same
    /// conversions the services apply — so in-process and Kafka answers are one format.
    /// `embedding` skips the encoder (e.g. one saved by `segflow embed`).
    public func segment(_ image: RGBImage, request: PromptRequest,
                        embedding: (any BackendEmbedding)? = nil) throws -> (result: MaskResult, encodeMs: Double, decodeMs: Double) {
        let t0 = Timing.nowMs()
        let e = try embedding ?? embed(image)
        let t1 = Timing.nowMs()
        let masks = try answer(request, embedding: e)
        let t2 = Timing.nowMs()
        let result = MaskResult(requestID: request.requestID, imageID: request.imageID, masks: masks,
                                timings: .init(queueMs: 0, decodeMs: t2 - t1, totalMs: t2 - t0), model: modelName, frame: request.frame)
        return (result, t1 - t0, t2 - t1)
    }
}

extension PromptRequest {
    /// The prompt an image-encoder forwards for an example-prompted image request
    /// (`ExamplePromptEncoder`): the request's ids, reply topic, timing and frame, and the
    /// examples' conditional embedding. In-process runs build the same prompt.
    public static func examplePrompt(requestID: String, imageID: String, model: String, inContext: InContextRequest,
                                     conditional: [Float], replyTopic: String = "", createdAtMs: Int64 = 0,
                                     frame: VideoFrame? = nil) -> PromptRequest {
        PromptRequest(requestID: requestID, imageID: imageID, outputFormat: inContext.outputFormat, replyTopic: replyTopic,
                      textEmbedding: FloatTensor(shape: [1, UInt32(conditional.count)], values: conditional),
                      model: model, createdAtMs: createdAtMs, frame: frame)
    }
}

extension SegmentationBackend {
    /// An example-prompted request in this process, through the calls the services make: an
    /// in-context model answers whole; an example encoder's embedding becomes the prompt the
    /// image-encoder would forward, answered by `embed` + `answer` (its `raw` is empty).
    public func segment(_ query: RGBImage, examples: [InContextExample], request: InContextRequest) throws -> InContextAnswer {
        if let inContext { return try inContext.segment(query: query, examples: examples, request: request) }
        guard let exampleEncoder else {
            throw ServingError(.unsupported, "\(modelName) takes no example prompts (it takes: \(promptKinds.map(\.rawValue).sorted().joined(separator: ", ")))")
        }
        let t0 = Timing.nowMs()
        let conditional = try exampleEncoder.exampleEmbedding(examples, request: request)
        let t1 = Timing.nowMs()
        let r = try segment(query, request: .examplePrompt(requestID: "local", imageID: "local", model: modelName,
                                                           inContext: request, conditional: conditional))
        return InContextAnswer(masks: r.result.masks, raw: Tensor(shape: [0], data: []),
                               timingsMs: ["prompt_encode": t1 - t0, "encode": r.encodeMs, "decode": r.decodeMs])
    }
}
