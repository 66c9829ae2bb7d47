// Writes seed inputs (one valid encoding per message shape) into the directory given as
// the first argument. Compiled and run by ../run-proto-fuzz.sh with the Proto sources.
import Foundation

@main
enum MakeCorpus {
    static func main() throws {
        let dir = URL(fileURLWithPath: CommandLine.arguments[1])
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let frame = VideoFrame(streamID: "cam", frameIndex: 3)
        let tracked = VideoFrame(streamID: "cam", frameIndex: 4, track: StreamTrack(
            objects: [ObjectPrompt(objectID: 1, points: [.init(x: 1, y: 2, label: 1)], box: .init(x0: 0, y0: 0, x1: 3, y1: 3))],
            removeObjects: [2], endOfStream: true, replyTopic: "t", outputFormat: .png))
        let embedding = ImageEmbedding(requestID: "r", imageID: "i", model: "m", originalHeight: 4, originalWidth: 4,
                                       inputHeight: 4, inputWidth: 4, dtype: .f16, shape: [2, 2, 2],
                                       data: Array(0..<16), encoderMs: 1, frame: frame, createdAtMs: 5)
        let seeds: [String: [UInt8]] = [
            "image_tracked": ImageRequest(requestID: "r", imageID: "i", image: .png([0x89, 0x50]), frame: tracked).encode(),
            "stream_snapshot": StreamSnapshot(streamID: "cam", lastFrameIndex: 7, model: "m", trackerState: [1, 2, 3],
                                              updatedAtMs: 9, lastRequestID: "r").encode(),
            "embedding_location": EmbeddingLocation(imageID: "i", requestID: "r", model: "m", partition: 1, firstOffset: 10,
                                                    lastOffset: 14, chunkCount: 4, producedAtMs: 2).encode(),
            "image_png": ImageRequest(requestID: "r", imageID: "i", image: .png([0x89, 0x50, 0x4E, 0x47]), frame: frame,
                                      model: "m", replyTopic: "t", createdAtMs: 1).encode(),
            "image_raw": ImageRequest(requestID: "r", imageID: "i",
                                      image: .raw(RawImage(rgb8: Array(0..<6), width: 2, height: 1))).encode(),
            "embedding": embedding.encode(),
            "embedding_chunk": embedding.chunked(maxChunkBytes: 5)[1].encode(),
            "prompt": PromptRequest(requestID: "r", imageID: "i", points: [.init(x: 1, y: 2, label: 1)],
                                    boxes: [.init(x0: 0, y0: 0, x1: 3, y1: 3)],
                                    maskInput: FloatTensor(shape: [1, 1, 2], values: [1, -1]), multimask: true,
                                    outputFormat: .png, text: "cat", textEmbedding: FloatTensor(shape: [2], values: [0, 1]),
                                    returnLowResLogits: true, frame: frame).encode(),
            "masks": MaskResult(requestID: "r", imageID: "i",
                                masks: [.init(encoding: .rle(counts: "02", height: 2, width: 1), predictedIoU: 0.5,
                                              stabilityScore: 0.5, bbox: .init(x: 0, y: 0, w: 1, h: 1), area: 1,
                                              lowResLogits: FloatTensor(shape: [1], values: [3])),
                                        .init(encoding: .png([1]), predictedIoU: 0, stabilityScore: 0,
                                              bbox: .init(x: 0, y: 0, w: 0, h: 0), area: 0)]).encode(),
            "mask_error": MaskResult(requestID: "r", imageID: "i", error: .init(code: .invalidPrompt, message: "x")).encode(),
            "report": ErrorReport(sourceTopic: "t", partition: 1, offset: 2, key: [1], code: .internal, message: "m",
                                  service: "s", fullPayload: [1, 2, 3], payloadLimit: 2).encode(),
        ]
        for (name, bytes) in seeds { try Data(bytes).write(to: dir.appendingPathComponent(name)) }
    }
}
