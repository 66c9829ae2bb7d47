import Checkpoint
import Foundation
import NN
import Tensor

/// Text prompts → CLIP text embeddings: the BPE tokenizer and the projected text tower.
///
/// ```swift
/// let enc = try CLIPTextEncoder.load(checkpoint: url, config: .openAIViTB16)
/// let vectors = try enc.encode(texts: ["a photo of a cat"], normalize: true)   // [[Float]] (512)
/// ```
/// Weights by transformers' names, from either layout:
/// - CLIPTextModelWithProjection: `text_model.*` + `text_projection.weight`;
/// - CLIPModel: the same plus the image half (`vision_model.*`, `visual_projection.weight`,
///   `logit_scale`), which is skipped by name; any other unknown tensor is an error.
public struct CLIPTextEncoder: Sendable {
    public let model: CLIPTextModelWithProjection
    public let tokenizer: CLIPTokenizer
    /// Which layout the checkpoint had.
    public let layout: Layout
    public var config: CLIPTextConfig { model.config }
    /// Positions per text, start and end token included (the position table's size).
    public var contextLength: Int { config.maxPositionEmbeddings }

    public enum Layout: String, Sendable {
        case textModelWithProjection
        case clipModel
    }

    /// What to do with a text longer than `contextLength`.
    public enum Overlength: Sendable {
        /// Keep the first `contextLength - 1` tokens and the end token, as open_clip does; the
        /// result's `droppedTokens` says how many were cut.
        case truncate
        /// Throw `CLIPError.textTooLong`.
        case reject
    }

    /// One text's result.
    public struct TextEmbedding: Sendable, Equatable {
        /// `text_embeds` (`projection_dim` values), L2-normalised if asked.
        public var vector: [Float]
        /// The ids the model saw: start, text, end (no padding).
        public var tokens: [Int]
        /// Text tokens cut by truncation (0 if the text fit).
        public var droppedTokens: Int
        public var wasTruncated: Bool { droppedTokens > 0 }
    }

    public init(model: CLIPTextModelWithProjection, tokenizer: CLIPTokenizer, layout: Layout) {
        self.model = model
        self.tokenizer = tokenizer
        self.layout = layout
    }

    /// Loads a safetensors or PyTorch checkpoint with transformers' CLIP names.
    /// - Parameters:
    ///   - config: the tower's hyper-parameters (a preset such as `.openAIViTB16`, or read
    ///     from the model's config.json with `CLIPTextConfig(huggingFaceConfigJSON:)`); every
    ///     tensor's shape is checked against it.
    ///   - skipVisionTower: skip CLIPModel's image-half tensors by name (default). With
    ///     `false` a CLIPModel checkpoint fails with `unusedTensors`.
    ///   - tokenizer: defaults to the bundled OpenAI vocabulary.
    public static func load(checkpoint url: URL, config: CLIPTextConfig, skipVisionTower: Bool = true,
                            tokenizer: CLIPTokenizer? = nil) throws(CLIPError) -> CLIPTextEncoder {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .checkpointNotFound(path: url.path) }
        let tok: CLIPTokenizer
        if let tokenizer { tok = tokenizer } else { tok = try CLIPTokenizer() }
        do {
            let dict = try StateDict(contentsOf: url)
            guard dict.contains("text_model.embeddings.token_embedding.weight") else {
                let reason = dict.contains("embeddings.token_embedding.weight")
                    ? "a bare CLIPTextModel (no text_model. prefix, no text_projection); save CLIPTextModelWithProjection or CLIPModel"
                    : "no text_model.embeddings.token_embedding.weight"
                throw CLIPError.unrecognisedCheckpoint(path: url.path, reason: reason)
            }
            guard dict.contains("text_projection.weight") else {
                throw CLIPError.unrecognisedCheckpoint(path: url.path, reason: "no text_projection.weight (CLIPTextModel without projection)")
            }
            let vb = try WeightLoader(dict)
            let model = try CLIPTextModelWithProjection(vb, config: config)
            let hasVision = dict.names.contains(where: CLIPTextModelWithProjection.isVisionTensor)
            if skipVisionTower { CLIPTextModelWithProjection.skipVisionTensors(vb, stateDict: dict) }
            try vb.finish()
            return CLIPTextEncoder(model: model, tokenizer: tok, layout: hasVision ? .clipModel : .textModelWithProjection)
        } catch let error as CLIPError {
            throw error
        } catch let error as CheckpointError {
            throw .checkpoint(error)
        } catch {
            throw .unrecognisedCheckpoint(path: url.path, reason: "\(error)")
        }
    }

    /// Projected embeddings, one per text. Over-long texts are truncated (see `embed` to
    /// learn which, or to reject them instead).
    /// - Parameter normalize: divide each vector by its L2 norm (what CLIPModel does before
    ///   the logit product), as `F.normalize(dim=-1)` with eps 1e-12.
    public func encode(texts: [String], normalize: Bool = false) throws(CLIPError) -> [[Float]] {
        try embed(texts: texts, normalize: normalize).map(\.vector)
    }

    /// Projected embeddings with the ids used and what truncation dropped.
    ///
    /// Each text runs alone over its positions up to the pooled one: with the causal mask,
    /// later positions (padding) cannot change earlier states, so this equals the padded
    /// 77-position batch transformers runs (checked by the parity tests) at a fraction of
    /// the cost for short prompts.
    public func embed(texts: [String], normalize: Bool = false,
                      overlength: Overlength = .truncate) throws(CLIPError) -> [TextEmbedding] {
        var results: [TextEmbedding] = []
        results.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() {
            let framed = tokenizer.tokenized(text, contextLength: contextLength)
            if framed.textTokens == 0 { throw .emptyText(index: index) }
            let body = framed.ids[1..<(framed.length - 1)]
            if body.allSatisfy({ $0 == tokenizer.startTokenID || $0 == tokenizer.endTokenID }) {
                throw .onlySpecialTokens(index: index, text: text)
            }
            if framed.droppedTokens > 0, overlength == .reject {
                throw .textTooLong(index: index, tokens: framed.textTokens + 2, limit: contextLength)
            }
            let pooled = try CLIPTextTransformer.pooledIndex(framed.ids, eosTokenID: config.eosTokenID, row: index)
            let out: CLIPTextModelWithProjection.Output
            do { out = try model([Array(framed.ids[...pooled])]) } catch { throw error.inRow(index) }
            var vector = out.textEmbeds.data
            if normalize {
                // ref: torch.nn.functional.normalize(p=2, dim=-1, eps=1e-12)
                let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                let scale = 1 / max(norm, 1e-12)
                for i in vector.indices { vector[i] *= scale }
            }
            results.append(TextEmbedding(vector: vector, tokens: Array(framed.ids[..<framed.length]),
                                         droppedTokens: framed.droppedTokens))
        }
        return results
    }
}
