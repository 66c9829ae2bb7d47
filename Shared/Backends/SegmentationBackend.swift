import Foundation
import Imaging
import Messaging

/// Wire-level failure with the stable code the requester sees.
public struct ServingError: Error, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code): \(message)" }
}

/// What a decoder caches per image: whatever the backend's image-encoder half produced
/// (SAM's image embedding, CLIPSeg's extract-layer activations, ...).
public protocol BackendEmbedding: Sendable {
    /// The model that produced it (a registry name).
    var modelName: String { get }
    /// Bytes held in memory (the decoder's cache budget counts these).
    var bytes: Int { get }
}

/// Which halves of a model a process needs: an image-encoder loads `.encoder`, a
/// prompt-decoder `.decoder`, a text-encoder `.text`; in-process runs load all.
public enum BackendPart: String, Sendable, Hashable, CaseIterable {
    case encoder, decoder, text
}

/// The prompt kinds a model accepts; the command line validates against them before any
/// compute (nothing outside the registry compares model names).
public enum PromptKind: String, Sendable, Hashable, CaseIterable {
    case points, boxes, maskInput = "mask-input", multimask, text, everything, tracking
    /// Example image + mask pairs (in-context models; CLIPSeg one-shot).
    case examples
}

/// Fields copied from the request onto the embedding record.
public struct EmbeddingContext: Sendable {
    public var requestID: String
    public var imageID: String
    public var dtype: Messaging.DType
    public var encoderMs: Double
    public var frame: VideoFrame?
    public var createdAtMs: Int64
    public init(requestID: String, imageID: String, dtype: Messaging.DType, encoderMs: Double, frame: VideoFrame?, createdAtMs: Int64) {
        self.requestID = requestID; self.imageID = imageID; self.dtype = dtype; self.encoderMs = encoderMs
        self.frame = frame; self.createdAtMs = createdAtMs
    }
}

/// One model family as Segflow serves it. The image-encoder calls `embed` + `wire`, the
/// prompt-decoder `embedding(fromWire:)` + `answer`; an in-process run calls `embed` +
/// `answer` directly, so every path computes the same masks through the same code.
public protocol SegmentationBackend: AnyObject, Sendable {
    /// The model name requests carry (e.g. "litemedsam").
    var modelName: String { get }
    /// What this model accepts.
    var promptKinds: Set<PromptKind> { get }
    /// Image-encoder half: one image → what decoders need.
    func embed(_ image: RGBImage) throws -> any BackendEmbedding
    /// The embedding as a wire record (dtype per context).
    func wire(_ embedding: any BackendEmbedding, context: EmbeddingContext) throws(ServingError) -> Messaging.ImageEmbedding
    /// Prompt-decoder half: a reassembled wire record → the cached form, validated.
    func embedding(fromWire record: Messaging.ImageEmbedding) throws(ServingError) -> any BackendEmbedding
    /// Answers one prompt request against a cached embedding (masks prompt-major).
    func answer(_ request: PromptRequest, embedding: any BackendEmbedding) throws(ServingError) -> [MaskResult.Mask]
    /// Text-encoder half (nil: the model takes no text): a phrase → the conditional
    /// embedding carried in `PromptRequest.text_embedding`.
    var textEncoder: (any TextPromptEncoder)? { get }
    /// In-context half (nil: the model takes no examples): answers whole in the image-encoder.
    var inContext: (any InContextSegmenter)? { get }
    /// Example-prompt half (nil: none): examples → a conditional embedding, computed in the
    /// image-encoder and forwarded as a prompt; the prompt-decoder answers it (CLIPSeg one-shot).
    var exampleEncoder: (any ExamplePromptEncoder)? { get }
    /// Stream half (nil: the model does not track): per-frame tracking of objects in a
    /// stream, driven by the prompt-decoder from each frame's cached embedding.
    var streamTracker: (any StreamTracker)? { get }
    /// Side of the low-res logits the model takes as a mask input (nil: it takes none).
    var maskInputSide: Int? { get }
}

public protocol TextPromptEncoder: Sendable {
    func textEmbedding(_ text: String) throws(ServingError) -> [Float]
}

/// A model prompted by examples (image + mask) whose prompt and query do not attend to each
/// other (CLIPSeg one-shot): the examples become one conditional embedding, so the query's
/// embedding is still computed once and decoded like any other prompt. The image-encoder
/// reads the registered pairs (as for in-context models), calls this, publishes the query's
/// embedding and forwards a `PromptRequest` carrying the result in `text_embedding` (the
/// field holds the model's conditional embedding, whichever prompt made it).
public protocol ExamplePromptEncoder: Sendable {
    /// `[projection_dim]` values for `examples` (several: combined as the model defines it).
    /// Bad examples or request fields are INVALID_PROMPT / UNSUPPORTED naming the pair.
    func exampleEmbedding(_ examples: [InContextExample], request: InContextRequest) throws(ServingError) -> [Float]
}

extension SegmentationBackend {
    public var textEncoder: (any TextPromptEncoder)? { nil }
    public var inContext: (any InContextSegmenter)? { nil }
    public var exampleEncoder: (any ExamplePromptEncoder)? { nil }
    public var streamTracker: (any StreamTracker)? { nil }
    public var maskInputSide: Int? { nil }
    /// Whether the model reads registered prompt pairs (the image-encoder then follows the topic).
    public var takesExamples: Bool { inContext != nil || exampleEncoder != nil }

    /// Refuses an embedding from another model with SHAPE_MISMATCH (a decoder must never
    /// run one model's head on another's features).
    public func checkOwnership(_ e: any BackendEmbedding, imageID: String) throws(ServingError) {
        guard e.modelName == modelName else {
            throw ServingError(.shapeMismatch, "prompt is for '\(modelName)' but image '\(imageID)' was encoded with '\(e.modelName)'")
        }
    }
}

/// The models one process serves; the first is the default for requests naming none.
public struct BackendSet: Sendable {
    public let backends: [any SegmentationBackend]

    public init(_ backends: [any SegmentationBackend]) {
        precondition(!backends.isEmpty, "a service needs at least one model")
        self.backends = backends
    }

    public var names: [String] { backends.map(\.modelName) }

    /// The backend for a request's model field (empty = the default).
    public func resolve(_ requested: String, role: String) throws(ServingError) -> any SegmentationBackend {
        if requested.isEmpty { return backends[0] }
        guard let b = backends.first(where: { $0.modelName == requested }) else {
            throw ServingError(.unknownModel, "this \(role) serves \(names.map { "'\($0)'" }.joined(separator: ", ")); request asks for '\(requested)'")
        }
        return b
    }

    /// The first backend that takes text prompts (a text-encoder serves it).
    public var textBackend: (any SegmentationBackend)? { backends.first { $0.textEncoder != nil } }
}
