import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import Serving
import Client
import Embedded
import Tensor

/// `segflow segment QUERY --model seggpt|painter|clipseg --checkpoint C --prompt-image P --prompt-mask M [...]`:
/// segmentation from examples. Over Kafka the pairs are registered once on the prompt-pairs
/// topic and the query names them (SegGPT/Painter answer in the image-encoder, CLIPSeg
/// one-shot in the prompt-decoder); in-process the same backend calls run here.
struct InContextRun {
    var query: ImageInput
    var promptImages: [String]
    var promptMasks: [String]
    var model: String
    var checkpoint: String?
    var config: String?
    var task: String?
    var numLabels: Int
    var returnRaw: Bool
    /// The SAM-family model that refines the example-prompted mask (`--refine sam`).
    var refine: ModelLoadRequest? = nil
    var route: Route

    struct Outcome {
        var result: MaskResult
        var image: RGBImage?       // depth / restore outputs
        var classMap: GrayImage?   // class-map answers
        var timingsMs: [String: Double]
        var refined: SAMRefinement.Refined? = nil
    }

    /// The pairs as the wire carries them; each is decoded and checked here first, so a bad
    /// mask or a size mismatch fails before any model is loaded or any compute runs.
    func pairs() throws -> (wire: [PromptPair], decoded: [InContextExample]) {
        var wire: [PromptPair] = [], decoded: [InContextExample] = []
        for (imagePath, maskPath) in zip(promptImages, promptMasks) {
            guard let image = FileManager.default.contents(atPath: imagePath) else {
                throw PipelineError.unreadableFile(path: imagePath, reason: "no such file or not readable")
            }
            guard let mask = FileManager.default.contents(atPath: maskPath) else {
                throw PipelineError.unreadableFile(path: maskPath, reason: "no such file or not readable")
            }
            // Content-addressed ids: registering the same pair twice is harmless (compacted topic).
            let id = "pair-" + Self.fingerprint([UInt8](image) + [UInt8](mask) + Array("\(numLabels)".utf8))
            let pair = PromptPair(promptID: id, image: [UInt8](image), mask: [UInt8](mask), numLabels: UInt32(numLabels),
                                  createdAtMs: Timing.wallMs())
            do { decoded.append(try InContextExample.decode(pair, maxPixels: ImageDecoder.defaultMaxPixels)) } catch {
                throw PipelineError.badArgument("prompt pair \(imagePath) + \(maskPath): \(error.message)")
            }
            wire.append(pair)
        }
        return (wire, decoded)
    }

    /// FNV-1a 64-bit, hex: a stable id for identical pair bytes.
    static func fingerprint(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    func run() async throws -> Outcome {
        let (wire, decoded) = try pairs()
        let request = InContextRequest(promptIDs: wire.map(\.promptID), task: task ?? "", numLabels: UInt32(numLabels),
                                       returnRaw: returnRaw)
        let t0 = Timing.nowMs()
        // Encoder and decoder halves: example encoders (CLIPSeg one-shot) decode in the prompt-decoder.
        let backend = (route.inProcess || route.brokers == nil)
            ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config, parts: [.encoder, .decoder])) : nil
        let sam = try refine.map { try ModelRegistry.load($0) }
        let loadMs = Timing.nowMs() - t0
        if route.inProcess, let backend {
            let answer = try backend.segment(query.image, examples: decoded, request: request)
            let result = MaskResult(requestID: "local", imageID: query.path, masks: answer.masks, model: backend.modelName,
                                    rawOutput: returnRaw ? FloatTensor(shape: answer.raw.shape.map { UInt32($0) }, values: answer.raw.data) : nil)
            let refined = try await refinement(result, sam: sam) { sam, r in try sam.segment(query.image, request: r).result }
            return Outcome(result: result, image: answer.image, classMap: answer.classMap,
                           timingsMs: answer.timingsMs.merging(["load": loadMs]) { a, _ in a }, refined: refined)
        }
        let t1 = Timing.nowMs()
        let served = { BackendSet([backend!] + (sam.map { [$0] } ?? [])) }
        let (result, refined) = try await EmbeddedStack.withKafka(brokers: route.brokers, logger: route.logger, backends: served) { client in
            let sc = SegflowClient(client: client, logger: route.logger)
            try await sc.register(wire)
            let result = try await sc.segmentInContext(image: .png(query.bytes), imageID: "ctx-" + UUID().uuidString, model: model,
                                                       inContext: request, timeout: .seconds(route.timeout))
            let refined = try await refinement(result, sam: sam) { _, r in
                try await sc.segment(image: .png(query.bytes), prompts: r, timeout: .seconds(route.timeout))
            }
            return (result, refined)
        }
        return Outcome(result: result, image: nil, classMap: Self.classMap(result, width: query.image.width, height: query.image.height),
                       timingsMs: ["load": loadMs, "round_trip": Timing.nowMs() - t1, "decode": result.timings.decodeMs], refined: refined)
    }

    /// `--refine`: SAM's mask from the union of the answer's masks (nil without --refine or
    /// for an empty answer).
    func refinement(_ result: MaskResult, sam: (any SegmentationBackend)?,
                    answer: (any SegmentationBackend, PromptRequest) async throws -> MaskResult) async throws -> SAMRefinement.Refined? {
        guard let sam else { return nil }
        let (w, h) = (query.image.width, query.image.height)
        let mask = try BinaryMask.union(try result.masks.map { try WireMask.decode($0) }, width: w, height: h)
        return try await SAMRefinement.refine(mask, sam: sam) { try await answer(sam, $0) }
    }

    /// The class map a class-map answer's per-label masks describe (nil for binary answers).
    static func classMap(_ r: MaskResult, width: Int, height: Int) -> GrayImage? {
        guard r.masks.contains(where: { $0.label > 0 }) else { return nil }
        var pixels = [UInt8](repeating: 0, count: width * height)
        for m in r.masks where m.label > 0 {
            guard let mask = try? WireMask.decode(m), mask.width == width, mask.height == height else { continue }
            for i in pixels.indices where mask.bits[i] != 0 { pixels[i] = UInt8(min(255, m.label)) }
        }
        return try? GrayImage(width: width, height: height, pixels: pixels)
    }
}
