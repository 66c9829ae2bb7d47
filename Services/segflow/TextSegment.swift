import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving

/// `segflow segment IMAGE --text "a cat" --model clipseg --checkpoint … [--refine sam …]`:
/// CLIPSeg's mask for the phrase; with --refine, SAM's mask from a box and a point
/// derived from it.
struct TextSegmentRun {
    var imagePath: String
    var png: [UInt8]
    var image: RGBImage
    var text: String
    var clipsegCheckpoint: String
    var clipsegConfig: String
    var refineModel: SamModelKind?
    var refineCheckpoint: String?
    var brokers: String?
    var inProcess: Bool
    var timeout: Int
    var logger: Logger

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

    func run() async throws -> (mask: BinaryMask, outcome: Outcome) {
        let backend = try CLIPSegBackend(checkpoint: URL(fileURLWithPath: clipsegCheckpoint),
                                         config: try CLIPSegBackend.config(named: clipsegConfig), parts: [.vision, .text, .decoder])
        let sam = try refineModel.map { try ModelStore.load($0, checkpoint: refineCheckpoint) }
        if inProcess {
            let emb = try backend.embed(image)
            let r = try backend.segment(emb, conditional: try backend.textEmbedding(text))
            var outcome = Outcome(text: text, clipsegScore: r.score, clipsegArea: r.mask.area)
            guard let sam, let prompt = CLIPSegBackend.refinementPrompt(r.mask) else { return (r.mask, outcome) }
            let samEmb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            let pred = try sam.predict(samEmb, prompt)
            let result = try SegmentationResult(model: sam.kind, width: image.width, height: image.height, prompts: [prompt],
                                                predictions: [pred], timingsMs: [:])
            outcome.samPredictedIoU = pred.iouPredictions[0]; outcome.samStabilityScore = pred.stabilityScore(0)
            outcome.refinedWith = result
            return (try result.unionMask().asMask(), outcome)
        }
        let (client, stack) = try await EmbeddedStack.connect(brokers: brokers, logger: logger) { (sam, backend) }
        let outcome: Result<(mask: BinaryMask, outcome: Outcome), Error>
        do { outcome = .success(try await overKafka(SegflowClient(client: client, logger: logger), sam: sam)) } catch {
            outcome = .failure(error)
        }
        await stack?.stop()  // on success and on failure
        return try outcome.get()
    }

    func overKafka(_ sc: SegflowClient, sam: Sam?) async throws -> (mask: BinaryMask, outcome: Outcome) {
        var textPrompt = PromptRequest(requestID: "txt-" + UUID().uuidString, imageID: "clipseg-" + UUID().uuidString,
                                       model: CLIPSegBackend.modelName)
        textPrompt.text = text
        let clip = try await sc.segment(image: .png(png), prompts: textPrompt, promptTopic: SegflowTopics.text, timeout: .seconds(timeout))
        guard let m = clip.masks.first, case let .rle(counts, h, w) = m.encoding else {
            throw ServingError(.internal, "CLIPSeg result has no mask")
        }
        let mask = try COCORLE(height: Int(h), width: Int(w), compressedCounts: counts).decode()
        var outcome = Outcome(text: text, clipsegScore: m.predictedIoU, clipsegArea: Int(m.area))
        guard let sam, let prompt = CLIPSegBackend.refinementPrompt(mask) else { return (mask, outcome) }
        let request = PromptRequest(requestID: "prm-" + UUID().uuidString, imageID: "sam-" + UUID().uuidString,
                                    points: prompt.points.map { .init(x: $0.x, y: $0.y, label: Int32($0.label)) },
                                    boxes: [.init(x0: prompt.box!.x0, y0: prompt.box!.y0, x1: prompt.box!.x1, y1: prompt.box!.y1)],
                                    model: sam.kind.rawValue)
        let refined = try await sc.segment(image: .png(png), prompts: request, timeout: .seconds(timeout))
        let result = try SegmentationResult(maskResult: refined, prompts: [prompt], width: image.width, height: image.height, timingsMs: [:])
        outcome.samPredictedIoU = refined.masks.first?.predictedIoU
        outcome.samStabilityScore = refined.masks.first?.stabilityScore
        outcome.refinedWith = result
        return (try result.unionMask().asMask(), outcome)
    }
}

extension GrayImage {
    func asMask() -> BinaryMask { BinaryMask(self, threshold: 0) }
}
