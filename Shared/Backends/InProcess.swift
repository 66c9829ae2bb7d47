import Imaging
import Messaging
import Pipeline

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
