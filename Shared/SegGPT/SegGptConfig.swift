import Foundation

/// Hyper-parameters of SegGPT / Painter, named as transformers' `SegGptConfig` (JSON keys in
/// the doc comments). The canvas is the prompt stacked on top of the query:
/// `imageSize.h = 2 · half-image height`.
/// ref: transformers/models/seggpt/configuration_seggpt.py
public struct SegGptConfig: Sendable, Equatable {
    /// `hidden_size`
    public var hiddenSize: Int
    /// `num_hidden_layers`
    public var numHiddenLayers: Int
    /// `num_attention_heads`
    public var numAttentionHeads: Int
    /// `mlp_dim` (null → 4 · hidden_size)
    public var mlpDim: Int
    /// `layer_norm_eps` (every LayerNorm, including the decoder's channels-first one)
    public var layerNormEps: Float
    /// `image_size`: canvas [height, width] (an int means square)
    public var imageSize: (h: Int, w: Int)
    /// `patch_size`
    public var patchSize: Int
    /// `num_channels`
    public var numChannels: Int
    /// `qkv_bias`
    public var qkvBias: Bool
    /// `pretrain_image_size`: side of the trained absolute-position grid, in pixels
    public var pretrainImageSize: Int
    /// `decoder_hidden_size`
    public var decoderHiddenSize: Int
    /// `use_relative_position_embeddings`
    public var useRelativePositionEmbeddings: Bool
    /// `merge_index`: after this layer the image and mask streams are averaged
    public var mergeIndex: Int
    /// `intermediate_hidden_state_indices`: layers whose (layer-normed) outputs feed the decoder
    public var intermediateHiddenStateIndices: [Int]

    public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, mlpDim: Int? = nil,
                layerNormEps: Float = 1e-6, imageSize: (h: Int, w: Int), patchSize: Int, numChannels: Int = 3,
                qkvBias: Bool = true, pretrainImageSize: Int = 224, decoderHiddenSize: Int = 64,
                useRelativePositionEmbeddings: Bool = true, mergeIndex: Int = 2,
                intermediateHiddenStateIndices: [Int] = [5, 11, 17, 23]) {
        self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.mlpDim = mlpDim ?? 4 * hiddenSize; self.layerNormEps = layerNormEps; self.imageSize = imageSize
        self.patchSize = patchSize; self.numChannels = numChannels; self.qkvBias = qkvBias
        self.pretrainImageSize = pretrainImageSize; self.decoderHiddenSize = decoderHiddenSize
        self.useRelativePositionEmbeddings = useRelativePositionEmbeddings; self.mergeIndex = mergeIndex
        self.intermediateHiddenStateIndices = intermediateHiddenStateIndices
    }

    /// The official ViT-L geometry of both `seggpt_vit_large.pth` / BAAI/seggpt-vit-large and
    /// `painter_vit_large.pth`: 1024 wide, 24 layers, 16 heads, patch 16, canvas 896×448,
    /// position grid of 224/16 = 14, decoder 64, eps 1e-6, merge after layer 2, features of
    /// layers 5, 11, 17, 23.
    /// ref: configuration_seggpt.py defaults; models_seggpt.py seggpt_vit_large_patch16_input896x448;
    ///      models_painter.py painter_vit_large_patch16_input896x448_win_dec64_8glb_sl1
    public static let vitLarge = SegGptConfig(hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16,
                                              imageSize: (896, 448), patchSize: 16)

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Token grid of the whole canvas.
    public var gridSize: (h: Int, w: Int) { (imageSize.h / patchSize, imageSize.w / patchSize) }
    /// Side of the trained absolute-position grid (it has one extra cls row).
    public var pretrainGridSize: Int { pretrainImageSize / patchSize }
    /// One image of the stack (prompt or query): [height, width].
    public var halfImageSize: (h: Int, w: Int) { (imageSize.h / 2, imageSize.w) }

    public static func == (a: SegGptConfig, b: SegGptConfig) -> Bool {
        a.hiddenSize == b.hiddenSize && a.numHiddenLayers == b.numHiddenLayers && a.numAttentionHeads == b.numAttentionHeads
            && a.mlpDim == b.mlpDim && a.layerNormEps == b.layerNormEps && a.imageSize == b.imageSize
            && a.patchSize == b.patchSize && a.numChannels == b.numChannels && a.qkvBias == b.qkvBias
            && a.pretrainImageSize == b.pretrainImageSize && a.decoderHiddenSize == b.decoderHiddenSize
            && a.useRelativePositionEmbeddings == b.useRelativePositionEmbeddings && a.mergeIndex == b.mergeIndex
            && a.intermediateHiddenStateIndices == b.intermediateHiddenStateIndices
    }

    /// Checks the geometry the model code relies on; throws naming the key.
    public func validate() throws(SegGPTError) {
        func bad(_ key: String, _ value: Any, _ reason: String) -> SegGPTError {
            .badConfigValue(key: key, value: "\(value)", reason: reason)
        }
        for (key, v) in [("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                         ("num_attention_heads", numAttentionHeads), ("mlp_dim", mlpDim), ("patch_size", patchSize),
                         ("num_channels", numChannels), ("decoder_hidden_size", decoderHiddenSize),
                         ("pretrain_image_size", pretrainImageSize)] where v <= 0 {
            throw bad(key, v, "must be positive")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw bad("num_attention_heads", numAttentionHeads, "must divide hidden_size \(hiddenSize)")
        }
        guard imageSize.h > 0, imageSize.w > 0, imageSize.h % patchSize == 0, imageSize.w % patchSize == 0,
              (imageSize.h / patchSize) % 2 == 0 else {
            throw bad("image_size", [imageSize.h, imageSize.w],
                      "must be positive multiples of patch_size \(patchSize), with an even number of patch rows (prompt over query)")
        }
        guard pretrainImageSize % patchSize == 0 else {
            throw bad("pretrain_image_size", pretrainImageSize, "must be a multiple of patch_size \(patchSize)")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else { throw bad("layer_norm_eps", layerNormEps, "must be positive") }
        guard !intermediateHiddenStateIndices.isEmpty,
              intermediateHiddenStateIndices.allSatisfy({ $0 >= 0 && $0 < numHiddenLayers }),
              intermediateHiddenStateIndices == intermediateHiddenStateIndices.sorted(),
              Set(intermediateHiddenStateIndices).count == intermediateHiddenStateIndices.count else {
            throw bad("intermediate_hidden_state_indices", intermediateHiddenStateIndices,
                      "must be distinct increasing layer indices below num_hidden_layers \(numHiddenLayers)")
        }
        // ref: configuration_seggpt.py validate_architecture
        guard mergeIndex >= 0, mergeIndex < numHiddenLayers, mergeIndex <= intermediateHiddenStateIndices[0] else {
            throw bad("merge_index", mergeIndex, "must be a layer index not above the first feature layer \(intermediateHiddenStateIndices[0])")
        }
    }
}

extension SegGptConfig {
    /// Reads a transformers `SegGptConfig` JSON (a model directory's `config.json`). Keys that
    /// are absent take `base`'s value (transformers' defaults = `vitLarge`); keys that do not
    /// affect inference (dropouts, initializer_range, beta, ...) are ignored.
    /// `hidden_act` must be "gelu" (the only activation the original uses).
    public init(json data: Data, path: String = "config.json", base: SegGptConfig = .vitLarge) throws(SegGPTError) {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw .malformedConfig(path: path, reason: "not JSON (\(error))")
        }
        guard case .object(let dict) = root else { throw .malformedConfig(path: path, reason: "not a JSON object") }
        self = base
        func bad(_ key: String, _ reason: String) -> SegGPTError {
            .badConfigValue(key: key, value: dict[key].map { "\($0)" } ?? "nil", reason: reason)
        }
        func present(_ key: String) -> JSONValue? {
            guard let v = dict[key], v != .null else { return nil }
            return v
        }
        func intKey(_ key: String) throws(SegGPTError) -> Int? {
            guard let v = present(key) else { return nil }
            guard let i = v.int else { throw bad(key, "expected an integer") }
            return i
        }
        /// An int or a list of two ints (`image_size`, `patch_size`, `pretrain_image_size`).
        func pairKey(_ key: String) throws(SegGPTError) -> (Int, Int)? {
            guard let v = present(key) else { return nil }
            if let i = v.int { return (i, i) }
            guard case .array(let a) = v, a.count == 2, let h = a[0].int, let w = a[1].int else {
                throw bad(key, "expected an integer or a list of two integers")
            }
            return (h, w)
        }
        func boolKey(_ key: String) throws(SegGPTError) -> Bool? {
            guard let v = present(key) else { return nil }
            guard case .bool(let b) = v else { throw bad(key, "expected true or false") }
            return b
        }
        func stringKey(_ key: String) throws(SegGPTError) -> String? {
            guard let v = present(key) else { return nil }
            guard case .string(let s) = v else { throw bad(key, "expected a string") }
            return s
        }
        if let s = try stringKey("model_type"), s != "seggpt" { throw bad("model_type", "expected \"seggpt\"") }
        if let s = try stringKey("hidden_act"), s != "gelu" { throw bad("hidden_act", "only \"gelu\" (exact) is supported") }
        if let v = try intKey("hidden_size") { hiddenSize = v; mlpDim = 4 * v }
        if let v = try intKey("num_hidden_layers") { numHiddenLayers = v }
        if let v = try intKey("num_attention_heads") { numAttentionHeads = v }
        if let v = try intKey("mlp_dim") { mlpDim = v }
        if let v = try intKey("num_channels") { numChannels = v }
        if let v = try intKey("decoder_hidden_size") { decoderHiddenSize = v }
        if let v = try intKey("merge_index") { mergeIndex = v }
        if let v = try pairKey("image_size") { imageSize = (v.0, v.1) }
        if let v = try pairKey("patch_size") {
            guard v.0 == v.1 else { throw bad("patch_size", "only square patches are supported") }
            patchSize = v.0
        }
        if let v = try pairKey("pretrain_image_size") {
            guard v.0 == v.1 else { throw bad("pretrain_image_size", "the trained position grid is square") }
            pretrainImageSize = v.0
        }
        if let v = try boolKey("qkv_bias") { qkvBias = v }
        if let v = try boolKey("use_relative_position_embeddings") { useRelativePositionEmbeddings = v }
        if let v = present("layer_norm_eps") {
            guard case .number(let d) = v else { throw bad("layer_norm_eps", "expected a number") }
            layerNormEps = Float(d)
        }
        if let v = present("intermediate_hidden_state_indices") {
            guard case .array(let a) = v, case let ints = a.compactMap(\.int), ints.count == a.count else {
                throw bad("intermediate_hidden_state_indices", "expected a list of integers")
            }
            intermediateHiddenStateIndices = ints
        }
        try validate()
    }
}

/// A JSON value that keeps booleans and numbers apart (Foundation's JSONSerialization bridges
/// both to NSNumber), for config readers that must name a wrongly typed key.
enum JSONValue: Decodable, Equatable, Sendable, CustomStringConvertible {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// An integral number.
    var int: Int? {
        guard case .number(let d) = self, d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? "\(Int(d))" : "\(d)"
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\"\($0)\": \(o[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}
