import Foundation
import Imaging
import Messaging
import Pipeline
import SAM

extension SAM.ImageEmbedding: BackendEmbedding {
    public var modelName: String { model.rawValue }
    public var bytes: Int { embedding.count * MemoryLayout<Float>.size }
}

/// The SAM family (SAM ViT-B/L/H, MobileSAM, LiteMedSAM): the ViT/TinyViT image encoder
/// in the image-encoder, prompt encoder + mask decoder (and the automatic mask
/// generator) in the prompt-decoder.
public final class SAMBackend: SegmentationBackend {
    public let sam: Sam
    public init(_ sam: Sam) { self.sam = sam }

    public var modelName: String { sam.kind.rawValue }
    public var promptKinds: Set<PromptKind> { Self.promptKinds }
    /// Side of the low-res logits SAM takes as mask input (4 × the embedding grid).
    public var maskSide: Int { sam.promptEncoder.imageEmbeddingSize * 4 }
    public var maskInputSide: Int? { maskSide }

    public func embed(_ image: RGBImage) throws -> any BackendEmbedding {
        try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
    }

    public func wire(_ embedding: any BackendEmbedding, context c: EmbeddingContext) throws(ServingError) -> Messaging.ImageEmbedding {
        guard let e = embedding as? SAM.ImageEmbedding else { throw ServingError(.internal, "not a SAM embedding") }
        return Conversions.wire(e, requestID: c.requestID, imageID: c.imageID, dtype: c.dtype, encoderMs: c.encoderMs,
                                frame: c.frame, createdAtMs: c.createdAtMs)
    }

    public func embedding(fromWire record: Messaging.ImageEmbedding) throws(ServingError) -> any BackendEmbedding {
        let e = try Conversions.model(record)
        try checkOwnership(e, imageID: record.imageID)
        return e
    }

    public func answer(_ request: PromptRequest, embedding: any BackendEmbedding) throws(ServingError) -> [MaskResult.Mask] {
        try checkOwnership(embedding, imageID: request.imageID)
        guard let emb = embedding as? SAM.ImageEmbedding else { throw ServingError(.internal, "not a SAM embedding") }
        if request.text != nil || request.textEmbedding != nil {
            throw ServingError(.invalidPrompt, "text prompts need a model that takes text; image '\(request.imageID)' was encoded with '\(emb.model.rawValue)'")
        }
        do {
            if let params = request.everything {
                guard request.points.isEmpty, request.boxes.isEmpty, request.maskInput == nil else {
                    throw ServingError(.invalidPrompt, "an 'everything' request takes no points, boxes or mask input")
                }
                let generator = try AutomaticMaskGenerator(sam, parameters: try Conversions.amgParameters(params))
                return try Conversions.masks(try generator.generate(embedding: emb), width: emb.originalSize.width,
                                             height: emb.originalSize.height, format: request.outputFormat)
            }
            let prompts = try Conversions.prompts(request, maskSide: maskSide)
            // A few prompts at a time, each group's masks encoded before the next is decoded:
            // memory stays bounded by RequestLimits.decodeGroup, not by the request.
            var masks: [MaskResult.Mask] = []
            for start in stride(from: 0, to: prompts.count, by: RequestLimits.decodeGroup) {
                let group = Array(prompts[start..<min(start + RequestLimits.decodeGroup, prompts.count)])
                masks += try Conversions.masks(try sam.predict(emb, group), width: emb.originalSize.width,
                                               height: emb.originalSize.height, format: request.outputFormat,
                                               lowResLogits: request.returnLowResLogits)
            }
            return masks
        } catch let e as ServingError {
            throw e
        } catch let e as SamError {
            throw ServingError(e.isShapeProblem ? .shapeMismatch : .invalidPrompt, e.description)
        } catch let e as AutomaticMaskGeneratorError {
            throw ServingError(.invalidPrompt, e.description)
        } catch {
            throw ServingError(.internal, "\(error)")
        }
    }
}

extension SamError {
    var isShapeProblem: Bool {
        switch self {
        case .maskInputShape, .embeddingShape: true
        default: false
        }
    }
}
