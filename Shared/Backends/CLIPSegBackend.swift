import CLIP
import CLIPSeg
import Checkpoint
import Foundation
import Imaging
import Messaging
import SAM
import Tensor

/// CLIPSeg as Segflow serves it: the vision tower runs in the image-encoder (its
/// activations are the "embedding" shipped like SAM's), the FiLM decoder in the
/// prompt-decoder, and the text tower plus CLIP's BPE tokenizer in the text-encoder.
/// One-shot prompts (example image + mask) are engineered and encoded by the vision tower in
/// the image-encoder (`exampleEncoder`), then decoded like a text prompt.
public final class CLIPSegBackend: SegmentationBackend, TextPromptEncoder, ExamplePromptEncoder {
    /// The registry name of CLIPSeg (one place: `ModelRegistry` lists it).
    public static let modelName = "clipseg"
    public var modelName: String { Self.modelName }
    public static let promptKinds: Set<PromptKind> = [.text, .examples]
    public var promptKinds: Set<PromptKind> { Self.promptKinds }
    public let config: CLIPSegConfig
    public let model: CLIPSegForImageSegmentation
    let tokenizer: CLIPTokenizer?

    /// Loads the parts a service needs from one CLIPSeg checkpoint (transformers names).
    public init(checkpoint: URL, config: CLIPSegConfig, parts: Set<CLIPSegForImageSegmentation.Part>) throws {
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            throw ServingError(.unknownModel, "CLIPSeg checkpoint not found at \(checkpoint.path)")
        }
        self.config = config
        model = try CLIPSegForImageSegmentation(stateDict: try StateDict(contentsOf: checkpoint), config: config, parts: parts)
        tokenizer = parts.contains(.text) ? try CLIPTokenizer() : nil
    }

    public static func config(named name: String) throws -> CLIPSegConfig {
        guard let c = CLIPSegConfig.presets[name] else {
            throw ServingError(.unknownModel, "unknown CLIPSeg layout '\(name)'; choose \(CLIPSegConfig.presets.keys.sorted().joined(separator: ", "))")
        }
        return c
    }

    // MARK: image-encoder side

    public func visionEmbedding(_ image: RGBImage) throws -> CLIPSegImageEmbedding {
        guard let vision = model.visionEncoder else { throw ServingError(.internal, "CLIPSeg vision tower not loaded") }
        return try vision.embed(image)
    }

    // MARK: text-encoder side

    /// Phrase → conditional embedding [projection_dim]. Empty, special-token-only and
    /// over-long phrases are refused with INVALID_PROMPT (truncating would silently
    /// segment something else).
    public func textEmbedding(_ text: String) throws(ServingError) -> [Float] {
        guard let tokenizer, let textEncoder = model.textEncoder else { throw ServingError(.internal, "CLIPSeg text tower not loaded") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ServingError(.invalidPrompt, "text prompt is empty") }
        let context = config.text.maxPositionEmbeddings
        let t = tokenizer.tokenized(trimmed, contextLength: context)
        guard t.textTokens > 0 else { throw ServingError(.invalidPrompt, "text prompt '\(trimmed)' has no tokens besides special ones") }
        guard t.droppedTokens == 0 else {
            throw ServingError(.invalidPrompt, "text prompt is too long: \(t.textTokens) tokens, at most \(context - 2) fit")
        }
        // Unpadded ids: the causal mask makes the pooled output independent of padding.
        let ids = Array(t.ids.prefix(t.length))
        do { return try textEncoder.textFeatures([ids]).data } catch { throw ServingError(.invalidPrompt, "\(error)") }
    }

    // MARK: image-encoder side, one-shot prompts

    /// The examples' conditional embedding [projection_dim]: each pair engineered as the
    /// CLIPSeg authors' best visual prompt (`CLIPSegVisualPrompt`), encoded by the vision tower
    /// + visual_projection; several pairs are averaged. Binary masks only (nonzero =
    /// foreground); no task, no raw output.
    public func exampleEmbedding(_ examples: [InContextExample], request: InContextRequest) throws(ServingError) -> [Float] {
        guard let vision = model.visionEncoder else { throw ServingError(.internal, "CLIPSeg vision tower not loaded") }
        guard !examples.isEmpty else { throw ServingError(.invalidPrompt, "a CLIPSeg one-shot request needs at least one prompt pair") }
        guard request.task.isEmpty else {
            throw ServingError(.invalidPrompt, "clipseg takes no task (binary masks only); request asks for '\(request.task)'")
        }
        func pairName(_ i: Int) -> String { request.promptIDs.indices.contains(i) ? request.promptIDs[i] : "#\(i + 1)" }
        if request.numLabels != 0 || examples.contains(where: { $0.numLabels != 0 }) {
            let i = examples.firstIndex { $0.numLabels != 0 } ?? 0
            throw ServingError(.invalidPrompt, "prompt pair \(pairName(i)): clipseg takes binary masks (nonzero = foreground), not class-index masks (num_labels)")
        }
        guard !request.returnRaw else {
            throw ServingError(.unsupported, "clipseg one-shot answers with masks only; return_raw (--save-logits) is for seggpt and painter")
        }
        do {
            return try vision.visualPromptEmbedding(examples.map { ($0.image, $0.mask) }).data
        } catch let CLIPSegVisualPrompt.Error.example(i, reason) {
            let code: ErrorCode = if case .sizeMismatch = reason { .shapeMismatch } else { .invalidPrompt }
            throw ServingError(code, "prompt pair \(pairName(i)): \(reason)")
        } catch { throw ServingError(.internal, "\(error)") }
    }

    // MARK: prompt-decoder side

    public struct Result: Sendable {
        public var probabilities: Tensor   // [H, W] at the original size
        public var mask: BinaryMask
        /// Mean probability inside the mask (0 when empty): CLIPSeg has no IoU head.
        public var score: Float
    }

    public func segment(_ embedding: CLIPSegImageEmbedding, conditional: [Float]) throws(ServingError) -> Result {
        guard let decoder = model.decoder else { throw ServingError(.internal, "CLIPSeg decoder not loaded") }
        guard conditional.count == config.projectionDim, conditional.allSatisfy(\.isFinite) else {
            throw ServingError(.shapeMismatch, "conditional (text or visual prompt) embedding has \(conditional.count) values, this CLIPSeg expects \(config.projectionDim) finite values")
        }
        let logits: Tensor
        do {
            logits = try decoder(embedding, conditionalEmbeddings: Tensor(shape: [1, conditional.count], data: conditional))
        } catch { throw ServingError(.shapeMismatch, "\(error)") }
        let p = CLIPSegProcessor.probabilities(logits: logits, originalHeight: embedding.originalHeight, originalWidth: embedding.originalWidth)
        let mask: BinaryMask
        do { mask = try CLIPSegProcessor.mask(probabilities: p) } catch { throw ServingError(.internal, "\(error)") }
        var sum: Float = 0, n = 0
        for (i, v) in p.data.enumerated() where mask.bits[i] != 0 { sum += v; n += 1 }
        return Result(probabilities: p, mask: mask, score: n == 0 ? 0 : sum / Float(n))
    }

    /// SAM prompts from a CLIPSeg mask: its bounding box plus one foreground point, the
    /// mask pixel nearest the mask's centroid (inside the mask even for non-convex shapes).
    /// The usual text→SAM recipe (e.g. LangSAM: a box from a text-conditioned model, then
    /// SAM), with CLIPSeg's coarse mask in the detector's place. Works from the binary mask
    /// alone, so the in-process and the Kafka path derive the same prompt.
    public static func refinementPrompt(_ mask: BinaryMask) -> SamPrompt? {
        guard mask.area > 0 else { return nil }
        let b = mask.boundingBox
        var sx = 0.0, sy = 0.0, n = 0.0
        for y in 0..<mask.height { for x in 0..<mask.width where mask[x, y] { sx += Double(x); sy += Double(y); n += 1 } }
        let (cx, cy) = (sx / n, sy / n)
        var best = (x: 0, y: 0), bestD = Double.infinity
        for y in 0..<mask.height {
            for x in 0..<mask.width where mask[x, y] {
                let d = (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy)
                if d < bestD { bestD = d; best = (x, y) }
            }
        }
        return SamPrompt(points: [.init(x: Float(best.x), y: Float(best.y), label: 1)],
                         box: (Float(b.x), Float(b.y), Float(b.x + b.width - 1), Float(b.y + b.height - 1)))
    }
}

extension Conversions {
    /// CLIPSeg activations on the wire: the extract-layer activations stacked as one
    /// tensor [layers, 1 + grid², hidden] (f16 or f32), the image sizes in the message's
    /// size fields. The decoder restores the layer indices from its own config.
    public static func wire(clipseg e: CLIPSegImageEmbedding, requestID: String, imageID: String, f16: Bool,
                            encoderMs: Double, frame: VideoFrame?, createdAtMs: Int64) -> Messaging.ImageEmbedding {
        let values = e.activations.flatMap(\.data)
        let tokens = e.activations.first?.dim(-2) ?? 0, hidden = e.activations.first?.dim(-1) ?? 0
        let data = f16 ? LittleEndian.f16Bytes(values) : LittleEndian.f32Bytes(values)
        return Messaging.ImageEmbedding(requestID: requestID, imageID: imageID, model: CLIPSegBackend.modelName,
                                        originalHeight: UInt32(e.originalHeight), originalWidth: UInt32(e.originalWidth),
                                        inputHeight: UInt32(e.inputHeight), inputWidth: UInt32(e.inputWidth), dtype: f16 ? .f16 : .f32,
                                        shape: [UInt32(e.activations.count), UInt32(tokens), UInt32(hidden)], data: data,
                                        encoderMs: encoderMs, frame: frame, createdAtMs: createdAtMs)
    }

    public static func clipseg(_ w: Messaging.ImageEmbedding, config: CLIPSegConfig) throws(ServingError) -> CLIPSegImageEmbedding {
        let dims = w.shape.map(Int.init)
        guard dims.count == 3, dims[0] == config.extractLayers.count, dims[2] == config.vision.hiddenSize else {
            throw ServingError(.shapeMismatch, "CLIPSeg embedding \(w.imageID) has shape \(dims); this decoder expects [\(config.extractLayers.count), tokens, \(config.vision.hiddenSize)]")
        }
        let grid = Int(Double(dims[1] - 1).squareRoot())
        guard grid * grid == dims[1] - 1, grid > 0 else {
            throw ServingError(.shapeMismatch, "CLIPSeg embedding \(w.imageID): \(dims[1]) tokens is not 1 + a square grid")
        }
        let per = dims[1] * dims[2]
        let values = w.dtype == .f16 ? LittleEndian.floats(f16: w.data, count: dims[0] * per)
                                     : LittleEndian.floats(f32: w.data, count: dims[0] * per)
        let acts = (0..<dims[0]).map { Tensor(shape: [1, dims[1], dims[2]], data: Array(values[($0 * per)..<(($0 + 1) * per)])) }
        return CLIPSegImageEmbedding(activations: acts, extractLayers: config.extractLayers, gridHeight: grid, gridWidth: grid,
                                     originalHeight: Int(w.originalHeight), originalWidth: Int(w.originalWidth),
                                     inputHeight: Int(w.inputHeight), inputWidth: Int(w.inputWidth))
    }
}

extension CLIPSegImageEmbedding: BackendEmbedding {
    public var modelName: String { CLIPSegBackend.modelName }
    public var bytes: Int { activations.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size }
}

extension CLIPSegBackend {
    public var textEncoder: (any TextPromptEncoder)? { tokenizer == nil ? nil : self }
    public var exampleEncoder: (any ExamplePromptEncoder)? { model.visionEncoder == nil ? nil : self }

    public func embed(_ image: RGBImage) throws -> any BackendEmbedding { try visionEmbedding(image) }

    public func wire(_ embedding: any BackendEmbedding, context c: EmbeddingContext) throws(ServingError) -> Messaging.ImageEmbedding {
        guard let e = embedding as? CLIPSegImageEmbedding else { throw ServingError(.internal, "not a CLIPSeg embedding") }
        return Conversions.wire(clipseg: e, requestID: c.requestID, imageID: c.imageID, f16: c.dtype == .f16,
                                encoderMs: c.encoderMs, frame: c.frame, createdAtMs: c.createdAtMs)
    }

    public func embedding(fromWire record: Messaging.ImageEmbedding) throws(ServingError) -> any BackendEmbedding {
        try Conversions.clipseg(record, config: config)
    }

    /// The text-encoder (text) or the image-encoder (example pairs) filled `text_embedding`; decode to one mask.
    public func answer(_ request: PromptRequest, embedding: any BackendEmbedding) throws(ServingError) -> [MaskResult.Mask] {
        try checkOwnership(embedding, imageID: request.imageID)
        guard let e = embedding as? CLIPSegImageEmbedding else { throw ServingError(.internal, "not a CLIPSeg embedding") }
        guard let cond = request.textEmbedding else {
            throw ServingError(.invalidPrompt, request.text == nil
                ? "a CLIPSeg prompt needs text (send it to the text topic, segflow.text) or example pairs (ImageRequest.in_context)"
                : "text prompt '\(request.text!)' has no text_embedding: send it to the text topic, not the prompts topic")
        }
        let r = try segment(e, conditional: cond.values)
        do {
            return [try WireMask.encode(r.mask, format: request.outputFormat, predictedIoU: r.score, stabilityScore: 0)]
        } catch { throw ServingError(.internal, "\(error)") }
    }
}
