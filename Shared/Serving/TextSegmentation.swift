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
public final class CLIPSegBackend: Sendable {
    public static let modelName = "clipseg"
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

    public func embed(_ image: RGBImage) throws -> CLIPSegImageEmbedding {
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
            throw ServingError(.shapeMismatch, "text embedding has \(conditional.count) values, this CLIPSeg expects \(config.projectionDim) finite values")
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

    /// SAM prompts from a CLIPSeg result: the mask's bounding box plus a foreground point
    /// at the most probable pixel. ref: the usual text→SAM recipe (e.g. LangSAM: box from
    /// a text detector, then SAM), with CLIPSeg's coarse mask in the detector's place.
    public static func refinementPrompt(_ r: Result) -> SamPrompt? {
        guard r.mask.area > 0 else { return nil }
        let b = r.mask.boundingBox
        var best = 0
        for i in 0..<r.probabilities.count where r.probabilities.data[i] > r.probabilities.data[best] { best = i }
        let w = r.probabilities.shape[1]
        return SamPrompt(points: [.init(x: Float(best % w), y: Float(best / w), label: 1)],
                         box: (Float(b.x), Float(b.y), Float(b.x + b.width - 1), Float(b.y + b.height - 1)))
    }
}

extension Conversions {
    /// CLIPSeg activations travel in the ImageEmbedding message as one opaque blob (the
    /// documented CLIPSegImageEmbedding format), shape [byte count], dtype f32 marker.
    public static func wire(clipseg e: CLIPSegImageEmbedding, requestID: String, imageID: String, f16: Bool,
                            encoderMs: Double, frame: VideoFrame?, createdAtMs: Int64) -> Messaging.ImageEmbedding {
        let blob = e.encoded(dtype: f16 ? .f16 : .f32)
        return Messaging.ImageEmbedding(requestID: requestID, imageID: imageID, model: CLIPSegBackend.modelName,
                                        originalHeight: UInt32(e.originalHeight), originalWidth: UInt32(e.originalWidth),
                                        inputHeight: UInt32(e.inputHeight), inputWidth: UInt32(e.inputWidth), dtype: .f32,
                                        shape: [UInt32(blob.count)], data: blob, encoderMs: encoderMs, frame: frame,
                                        createdAtMs: createdAtMs)
    }

    public static func clipseg(_ w: Messaging.ImageEmbedding) throws(ServingError) -> CLIPSegImageEmbedding {
        do { return try CLIPSegImageEmbedding.decode(w.data).embedding } catch {
            throw ServingError(.invalidEmbedding, "CLIPSeg embedding \(w.imageID): \(error)")
        }
    }
}
