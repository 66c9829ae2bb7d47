import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import Client
import Embedded

/// `segflow segment IMAGE --text "a cat" --model clipseg --checkpoint … [--refine sam …]`:
/// the text model's mask for the phrase; with --refine, SAM's mask from a box and a point
/// derived from it. In-process and over Kafka run the same backend calls.
struct TextSegmentRun {
    /// The query: its bytes travel as-is over Kafka, its pixels serve in-process runs.
    var input: ImageInput
    var image: RGBImage { input.image }
    var text: String
    var model: String
    var checkpoint: String
    var config: String?
    /// The SAM-family model that refines the text model's mask (`--refine sam`).
    var refine: ModelLoadRequest?
    var route: Route

    struct Outcome: Codable {
        var text: String
        var clipsegScore: Float
        var clipsegArea: Int
        var samPredictedIoU: Float?
        var samStabilityScore: Float?
        var refinedWith: SegmentationResult?
        enum CodingKeys: String, CodingKey {
            case text, clipsegScore = "clipseg_score", clipsegArea = "clipseg_area"
            case samPredictedIoU = "sam_predicted_iou", samStabilityScore = "sam_stability_score", refinedWith = "sam"
        }
    }

    /// Answers `request` (for the text prompt: to the text topic) in-process or over Kafka.
    typealias Answer = (_ backend: any SegmentationBackend, _ request: PromptRequest, _ text: Bool) async throws -> MaskResult

    func run() async throws -> (mask: BinaryMask, outcome: Outcome) {
        let backend = try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config))
        let sam = try refine.map { try ModelRegistry.load($0) }
        if route.inProcess {
            return try await pipeline(text: backend, sam: sam) { b, request, isText in
                var r = request
                if isText, let encoder = b.textEncoder {
                    let values = try encoder.textEmbedding(text)
                    r.textEmbedding = FloatTensor(shape: [1, UInt32(values.count)], values: values)
                }
                return try b.segment(image, request: r).result
            }
        }
        let served = BackendSet([backend] + (sam.map { [$0] } ?? []))
        return try await EmbeddedStack.withKafka(brokers: route.brokers, logger: route.logger, backends: { served }) { client in
            let sc = SegflowClient(client: client, logger: route.logger)
            return try await pipeline(text: backend, sam: sam) { _, request, isText in
                try await sc.segment(image: .png(input.bytes), prompts: request, promptTopic: isText ? sc.topics.text : nil,
                                     timeout: .seconds(route.timeout))
            }
        }
    }

    func pipeline(text backend: any SegmentationBackend, sam: (any SegmentationBackend)?,
                  answer: Answer) async throws -> (mask: BinaryMask, outcome: Outcome) {
        var textPrompt = PromptRequest(requestID: "txt-" + UUID().uuidString, imageID: "text-" + UUID().uuidString,
                                       model: backend.modelName)
        textPrompt.text = text
        let clip = try await answer(backend, textPrompt, true)
        guard let m = clip.masks.first else { throw ServingError(.internal, "\(backend.modelName) result has no mask") }
        let mask = try WireMask.decode(m)
        var outcome = Outcome(text: text, clipsegScore: m.predictedIoU, clipsegArea: Int(m.area))
        guard let sam, let refined = try await SAMRefinement.refine(mask, sam: sam, answer: { try await answer(sam, $0, false) }) else {
            return (mask, outcome)
        }
        outcome.samPredictedIoU = refined.predictedIoU
        outcome.samStabilityScore = refined.stabilityScore
        outcome.refinedWith = refined.result
        return (refined.mask, outcome)
    }
}

/// `--refine sam`: SAM's mask from a coarse mask's bounding box and centre point
/// (`CLIPSegBackend.refinementPrompt`), answered in-process or over Kafka by `answer`.
enum SAMRefinement {
    struct Refined {
        var mask: BinaryMask
        var result: SegmentationResult
        var predictedIoU: Float?
        var stabilityScore: Float?
    }

    /// nil when the coarse mask is empty (nothing to refine).
    static func refine(_ mask: BinaryMask, sam: any SegmentationBackend,
                       answer: (PromptRequest) async throws -> MaskResult) async throws -> Refined? {
        guard let prompt = CLIPSegBackend.refinementPrompt(mask) else { return nil }
        let request = PromptRequest(requestID: "prm-" + UUID().uuidString, imageID: "sam-" + UUID().uuidString,
                                    points: prompt.points.map { .init(x: $0.x, y: $0.y, label: Int32($0.label)) },
                                    boxes: [.init(x0: prompt.box!.x0, y0: prompt.box!.y0, x1: prompt.box!.x1, y1: prompt.box!.y1)],
                                    model: sam.modelName)
        let refined = try await answer(request)
        let result = try SegmentationResult(maskResult: refined, prompts: [prompt], width: mask.width, height: mask.height, timingsMs: [:])
        return Refined(mask: try result.unionMask().asMask(), result: result,
                       predictedIoU: refined.masks.first?.predictedIoU, stabilityScore: refined.masks.first?.stabilityScore)
    }
}

extension GrayImage {
    func asMask() -> BinaryMask { BinaryMask(self, threshold: 0) }
}

/// Where a command's request runs: in this process, or through Kafka (the running
/// services at `brokers`, else an embedded stack), and how long it may take.
struct Route {
    var brokers: String?
    var inProcess: Bool
    var timeout: Int
    var logger: Logger
}
