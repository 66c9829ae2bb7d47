import Foundation
import Imaging
import Messaging
import Pipeline
import SegGPT
import Tensor

/// SegGPT and Painter: in-context models. The prompt is example pairs (image + mask) and
/// prompt and query attend to each other from the first layer, so nothing is computed
/// once per image and reused: the image-encoder answers whole (`inContext`), and there
/// is no embedding for decoders.
public final class SegGPTBackend: SegmentationBackend, InContextSegmenter {
    public let model: SegGPT
    public init(_ model: SegGPT) { self.model = model }

    public var modelName: String { model.kind.rawValue }
    public var promptKinds: Set<PromptKind> { Self.promptKinds }
    public static let promptKinds: Set<PromptKind> = [.examples]
    public var inContext: (any InContextSegmenter)? { self }

    public var tasks: [String] {
        switch model.kind {
        case .seggpt: ["instance", "semantic"]
        case .painter: ["semantic", "depth", "restore"]
        }
    }

    func notSplit() -> ServingError {
        ServingError(.unsupported, "\(modelName) answers in the image-encoder from registered examples (ImageRequest.in_context); it has no embedding or prompt-decoder half")
    }

    public func embed(_ image: RGBImage) throws -> any BackendEmbedding { throw notSplit() }
    public func wire(_ embedding: any BackendEmbedding, context: EmbeddingContext) throws(ServingError) -> Messaging.ImageEmbedding { throw notSplit() }
    public func embedding(fromWire record: Messaging.ImageEmbedding) throws(ServingError) -> any BackendEmbedding { throw notSplit() }
    public func answer(_ request: PromptRequest, embedding: any BackendEmbedding) throws(ServingError) -> [MaskResult.Mask] { throw notSplit() }

    /// The target a registered example shows, for this request's task.
    func target(_ e: InContextExample, task: String) throws(ServingError) -> SegGPTTarget {
        if task == "depth" || task == "restore" { return .image(e.maskRGB, resample: .bicubic) }
        if e.numLabels > 0 {
            do { return .classMap(try SegGPTClassMap(gray: e.mask, numLabels: e.numLabels)) } catch {
                throw ServingError(.invalidPrompt, "\(error)")
            }
        }
        return .binaryMask(BinaryMask(e.mask, threshold: 0))
    }

    public func segment(query: RGBImage, examples: [InContextExample], request: InContextRequest) throws(ServingError) -> InContextAnswer {
        let task = request.task.isEmpty ? tasks[0] : request.task
        guard tasks.contains(task) else {
            throw ServingError(.invalidPrompt, "\(modelName) tasks are \(tasks.joined(separator: ", ")); request asks for '\(request.task)'")
        }
        guard !examples.isEmpty else { throw ServingError(.invalidPrompt, "an in-context request needs at least one prompt pair") }
        let labels = Set(examples.map(\.numLabels))
        guard labels.count == 1 else {
            throw ServingError(.invalidPrompt, "prompt pairs disagree on num_labels (\(labels.sorted().map(String.init).joined(separator: ", ")))")
        }
        if request.numLabels != 0, Int(request.numLabels) != examples[0].numLabels {
            throw ServingError(.invalidPrompt, "request num_labels \(request.numLabels) differs from the prompt pairs' \(examples[0].numLabels)")
        }
        let prompts = try examples.map { (e) throws(ServingError) in SegGPTPrompt(image: e.image, target: try target(e, task: task)) }
        do {
            switch model.kind {
            case .seggpt:
                let out = try model.segment(query: query, prompts: prompts,
                                            embeddingType: task == "semantic" ? .semantic : .instance)
                return try answer(raw: out.raw, mask: out.mask, classMap: out.classMap, image: nil, format: request.outputFormat,
                                  timings: out.timings)
            case .painter:
                guard prompts.count == 1 else {
                    throw ServingError(.invalidPrompt, "painter takes exactly one prompt pair (no feature ensemble); got \(prompts.count)")
                }
                let painterTask: PainterTask
                switch task {
                case "depth": painterTask = .depth
                case "restore": painterTask = .restore
                default:
                    let n = examples[0].numLabels
                    let palette = n > 0 ? SegGPTProcessor.palette(numLabels: n) : [(r: 0, g: 0, b: 0), (r: 255, g: 255, b: 255)]
                    painterTask = .semantic(palette: palette.flatMap { [$0.r, $0.g, $0.b] })
                }
                let out = try model.paint(query: query, prompt: prompts[0], task: painterTask)
                var image = out.image
                if let depth = out.depthMetres { image = Self.depthImage(depth, width: query.width, height: query.height) }
                var classMap = out.classMap
                var mask: BinaryMask?
                if examples[0].numLabels == 0, let c = classMap, task == "semantic" {
                    mask = try BinaryMask(width: c.width, height: c.height, values: c.labels.map { $0 == 1 ? 1 : 0 })
                    classMap = nil
                }
                return try answer(raw: out.raw, mask: mask, classMap: classMap, image: image, format: request.outputFormat,
                                  timings: out.timings)
            }
        } catch let e as ServingError {
            throw e
        } catch let e as SegGPTError {
            throw ServingError(.invalidPrompt, e.description)
        } catch {
            throw ServingError(.internal, "\(error)")
        }
    }

    func answer(raw: Tensor, mask: BinaryMask?, classMap: SegGPTClassMap?, image: RGBImage?, format: OutputFormat,
                timings: SegGPTTimings) throws -> InContextAnswer {
        var masks: [MaskResult.Mask] = []
        // SegGPT has no score head: predicted_iou is 1 for a non-empty mask, 0 for an empty one.
        if let mask { masks.append(try WireMask.encode(mask, format: format, predictedIoU: mask.area > 0 ? 1 : 0, stabilityScore: 0)) }
        var gray: GrayImage?
        if let classMap {
            gray = classMap.grayImage
            for label in Set(classMap.labels).sorted() where label > 0 {
                let m = try BinaryMask(width: classMap.width, height: classMap.height, values: classMap.labels.map { $0 == label ? 1 : 0 })
                var wire = try WireMask.encode(m, format: format, predictedIoU: 1, stabilityScore: 0)
                wire.label = UInt32(label)
                masks.append(wire)
            }
        }
        return InContextAnswer(masks: masks, raw: raw, image: image, classMap: gray,
                               timingsMs: ["preprocess": timings.preprocess * 1000, "encode": timings.forward * 1000,
                                           "postprocess": timings.postprocess * 1000])
    }

    /// Depth in metres as an 8-bit grey image on Painter's scale (grey level 255 = 10 m), the
    /// same encoding a depth prompt's target uses.
    static func depthImage(_ metres: Tensor, width: Int, height: Int) -> RGBImage? {
        try? SegGPTProcessor.depthTarget(metres: metres.data, width: width, height: height)
    }
}

extension SegGPTBackend {
    public static let family = ModelFamily(
        name: "seggpt",
        models: SegGPT.Kind.allCases.map {
            ModelInfo(name: $0.rawValue, family: "seggpt", promptKinds: promptKinds,
                      weights: $0 == .seggpt
                        ? "--checkpoint BAAI/seggpt-vit-large (a Hugging Face directory) or seggpt_vit_large.pth"
                        : "--checkpoint painter_vit_large.pth")
        },
        load: { r in
            guard let path = r.checkpoint else { throw PipelineError.missingCheckpoint(model: r.model, path: nil) }
            let kind = SegGPT.Kind(rawValue: r.model)
            return SegGPTBackend(try SegGPT.load(url: URL(fileURLWithPath: (path as NSString).expandingTildeInPath),
                                                 config: r.config.map { URL(fileURLWithPath: $0) }, kind: kind))
        })
}

extension SegGPTBackend {
    /// The image a Painter depth / restore answer shows, from its raw output (what travels
    /// on the wire as `raw_output`), un-normalised with the default ImageNet mean/std.
    public static func imageOutput(raw: Tensor, task: String, width: Int, height: Int) -> RGBImage? {
        guard raw.rank == 3 else { return nil }
        let processor = SegGPTProcessor(size: (raw.shape[1], raw.shape[2]))
        switch task {
        case "depth": return depthImage(processor.depthMetres(raw, width: width, height: height), width: width, height: height)
        case "restore": return processor.restoredImage(raw, width: width, height: height)
        default: return nil
        }
    }
}
