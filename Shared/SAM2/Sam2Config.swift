import Foundation

/// Geometry of a SAM 2 image model, named as transformers' `Sam2Config` sub-configs (JSON
/// keys in the doc comments). The presets are the official `sam2.1_hiera_*` configs.
/// ref: transformers/models/sam2/configuration_sam2.py; sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml
public struct Sam2Config: Sendable, Equatable {
    /// `vision_config.backbone_config` (Hiera).
    public struct Hiera: Sendable, Equatable {
        /// `hidden_size`: the patch embedding's width (stage 0's width).
        public var hiddenSize: Int
        /// `image_size` (square)
        public var imageSize: Int
        /// `patch_kernel_size`, `patch_stride`, `patch_padding`
        public var patchKernel = 7, patchStride = 4, patchPadding = 3
        /// `query_stride` (square)
        public var queryStride = 2
        /// `num_query_pool_stages`
        public var numQueryPoolStages = 3
        /// `window_positional_embedding_background_size`
        public var backgroundSize: [Int]
        public var blocksPerStage: [Int]
        public var embedDimPerStage: [Int]
        public var headsPerStage: [Int]
        public var windowPerStage: [Int]
        /// `global_attention_blocks`: block indices (over all stages) with global attention
        public var globalAttentionBlocks: [Int]
        public var mlpRatio: Double = 4
        public var layerNormEps: Float = 1e-6

        public init(hiddenSize: Int, imageSize: Int = 1024, backgroundSize: [Int], blocksPerStage: [Int],
                    embedDimPerStage: [Int], headsPerStage: [Int], windowPerStage: [Int], globalAttentionBlocks: [Int]) {
            self.hiddenSize = hiddenSize; self.imageSize = imageSize; self.backgroundSize = backgroundSize
            self.blocksPerStage = blocksPerStage; self.embedDimPerStage = embedDimPerStage; self.headsPerStage = headsPerStage
            self.windowPerStage = windowPerStage; self.globalAttentionBlocks = globalAttentionBlocks
        }

        /// Official geometry: width doubles and heads double per stage.
        static func official(embedDim: Int, heads: Int, stages: [Int], global: [Int], background: [Int], windows: [Int]) -> Hiera {
            Hiera(hiddenSize: embedDim, backgroundSize: background, blocksPerStage: stages,
                  embedDimPerStage: (0..<4).map { embedDim << $0 }, headsPerStage: (0..<4).map { heads << $0 },
                  windowPerStage: windows, globalAttentionBlocks: global)
        }
    }

    public var hiera: Hiera
    /// `vision_config.backbone_channel_list` (deepest stage first)
    public var backboneChannelList: [Int]
    /// `vision_config.fpn_hidden_size`
    public var fpnHiddenSize = 256
    /// `vision_config.fpn_top_down_levels`
    public var fpnTopDownLevels = [2, 3]
    /// `vision_config.num_feature_levels`
    public var numFeatureLevels = 3
    /// `prompt_encoder_config.hidden_size` = `mask_decoder_config.hidden_size`
    public var promptHiddenSize = 256
    /// `prompt_encoder_config.patch_size`: image pixels per cell of the embedding grid
    public var promptPatchSize = 16
    /// `prompt_encoder_config.mask_input_channels`
    public var maskInputChannels = 16
    /// `prompt_encoder_config.layer_norm_eps` (mask embedding's channels-first norms)
    public var promptLayerNormEps: Float = 1e-6
    /// `mask_decoder_config.mlp_dim`, `num_hidden_layers`, `num_attention_heads`, `attention_downsample_rate`
    public var decoderMLPDim = 2048, decoderLayers = 2, decoderHeads = 8, attentionDownsampleRate = 2
    /// `mask_decoder_config.num_multimask_outputs`, `iou_head_depth`, `iou_head_hidden_dim`
    public var numMultimaskOutputs = 3, iouHeadDepth = 3, iouHeadHiddenDim = 256
    /// `mask_decoder_config.dynamic_multimask_via_stability` and its delta / threshold
    public var dynamicMultimaskViaStability = true
    public var dynamicMultimaskStabilityDelta: Float = 0.05
    public var dynamicMultimaskStabilityThresh: Float = 0.98

    public init(hiera: Hiera, backboneChannelList: [Int]) {
        self.hiera = hiera; self.backboneChannelList = backboneChannelList
    }

    public var imageSize: Int { hiera.imageSize }
    /// Side of the image-embedding grid (64 at 1024²).
    public var embeddingGrid: Int { imageSize / promptPatchSize }

    // ref: sam2/configs/sam2.1/sam2.1_hiera_t.yaml, _s.yaml, _b+.yaml, _l.yaml
    public static let hieraTiny = Sam2Config(
        hiera: .official(embedDim: 96, heads: 1, stages: [1, 2, 7, 2], global: [5, 7, 9], background: [7, 7], windows: [8, 4, 14, 7]),
        backboneChannelList: [768, 384, 192, 96])
    public static let hieraSmall = Sam2Config(
        hiera: .official(embedDim: 96, heads: 1, stages: [1, 2, 11, 2], global: [7, 10, 13], background: [7, 7], windows: [8, 4, 14, 7]),
        backboneChannelList: [768, 384, 192, 96])
    public static let hieraBasePlus = Sam2Config(
        hiera: .official(embedDim: 112, heads: 2, stages: [2, 3, 16, 3], global: [12, 16, 20], background: [14, 14], windows: [8, 4, 14, 7]),
        backboneChannelList: [896, 448, 224, 112])
    public static let hieraLarge = Sam2Config(
        hiera: .official(embedDim: 144, heads: 2, stages: [2, 6, 36, 4], global: [23, 33, 43], background: [7, 7], windows: [8, 4, 16, 8]),
        backboneChannelList: [1152, 576, 288, 144])

    /// Checks the geometry is one the model can be built with; throws naming the key.
    public func validate(path: String) throws(Sam2Error) {
        func bad(_ key: String, _ reason: String) -> Sam2Error { .badConfigValue(path: path, key: key, reason: reason) }
        let h = hiera
        let stages = h.blocksPerStage.count
        guard stages >= 1 else { throw bad("blocks_per_stage", "needs at least one stage") }
        guard h.blocksPerStage.allSatisfy({ $0 >= 1 }) else { throw bad("blocks_per_stage", "every stage needs a block") }
        for (key, list) in [("embed_dim_per_stage", h.embedDimPerStage), ("num_attention_heads_per_stage", h.headsPerStage),
                            ("window_size_per_stage", h.windowPerStage)] {
            guard list.count == stages else { throw bad(key, "has \(list.count) entries for \(stages) stages") }
        }
        guard h.embedDimPerStage.first == h.hiddenSize else { throw bad("hidden_size", "must equal embed_dim_per_stage[0]") }
        for (d, n) in zip(h.embedDimPerStage, h.headsPerStage) where n < 1 || d % n != 0 {
            throw bad("num_attention_heads_per_stage", "\(n) heads do not divide width \(d)")
        }
        guard h.queryStride >= 1, h.patchStride >= 1, h.imageSize >= h.patchStride else { throw bad("query_stride", "must be positive") }
        guard h.windowPerStage.allSatisfy({ $0 >= 0 }) else { throw bad("window_size_per_stage", "must not be negative") }
        for s in 1..<max(1, stages) where s <= h.numQueryPoolStages && h.windowPerStage[s - 1] > 0 && h.windowPerStage[s - 1] / h.queryStride == 0 {
            throw bad("window_size_per_stage", "stage \(s - 1)'s window \(h.windowPerStage[s - 1]) is smaller than the query stride")
        }
        guard h.backgroundSize.count == 2, h.backgroundSize.allSatisfy({ $0 >= 1 }) else {
            throw bad("window_positional_embedding_background_size", "expected [h, w]")
        }
        guard backboneChannelList == h.embedDimPerStage.reversed() else {
            throw bad("backbone_channel_list", "must be embed_dim_per_stage reversed (\(Array(h.embedDimPerStage.reversed())))")
        }
        guard numFeatureLevels == 3, stages >= 3 else { throw bad("num_feature_levels", "SAM 2's decoder reads exactly 3 levels") }
        guard promptHiddenSize == fpnHiddenSize else { throw bad("prompt_encoder_config.hidden_size", "must equal fpn_hidden_size") }
        guard promptHiddenSize % 8 == 0, promptHiddenSize % (decoderHeads * attentionDownsampleRate) == 0 else {
            throw bad("mask_decoder_config.hidden_size", "must be a multiple of 8 and of heads × downsample rate")
        }
        guard maskInputChannels % 4 == 0, maskInputChannels > 0 else { throw bad("mask_input_channels", "must be a positive multiple of 4") }
        guard imageSize % promptPatchSize == 0 else { throw bad("patch_size", "must divide image_size \(imageSize)") }
        // The decoder's two high-resolution levels are 4× and 2× the embedding grid.
        let s0 = imageSize / h.patchStride
        guard s0 == 4 * embeddingGrid else {
            throw bad("patch_size", "stage 0's grid \(s0) must be 4 × the embedding grid \(embeddingGrid)")
        }
        guard decoderLayers >= 1, numMultimaskOutputs >= 1, iouHeadDepth >= 2 else { throw bad("mask_decoder_config", "depths must be positive") }
    }
}

extension Sam2Config {
    /// Reads a transformers `config.json` of `Sam2Model` (`model_type` "sam2") or
    /// `Sam2VideoModel` ("sam2_video"): the vision, prompt-encoder and mask-decoder parts.
    public init(json data: Data, path: String) throws(Sam2Error) {
        let root: [String: Any]
        do {
            guard let r = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Sam2Error.malformedConfig(path: path, reason: "not a JSON object")
            }
            root = r
        } catch let e as Sam2Error { throw e } catch { throw .malformedConfig(path: path, reason: "not JSON (\(error))") }
        if let t = root["model_type"] as? String, t != "sam2", t != "sam2_video" {
            throw .badConfigValue(path: path, key: "model_type", reason: "\"\(t)\" is not a SAM 2 config (sam2 or sam2_video)")
        }
        func object(_ d: [String: Any], _ key: String) throws(Sam2Error) -> [String: Any] {
            guard let v = d[key] as? [String: Any] else { throw .badConfigValue(path: path, key: key, reason: "missing or not an object") }
            return v
        }
        func int(_ d: [String: Any], _ key: String, _ def: Int? = nil) throws(Sam2Error) -> Int {
            guard let v = d[key], !(v is NSNull) else {
                if let def { return def }
                throw .badConfigValue(path: path, key: key, reason: "missing")
            }
            if let n = v as? NSNumber, Double(n.intValue) == n.doubleValue { return n.intValue }
            if let a = v as? [Any], a.count == 2, let x = a[0] as? NSNumber, let y = a[1] as? NSNumber, x == y { return x.intValue }
            throw .badConfigValue(path: path, key: key, reason: "expected an integer (or a square [n, n]), got \(v)")
        }
        func ints(_ d: [String: Any], _ key: String, _ def: [Int]? = nil) throws(Sam2Error) -> [Int] {
            guard let v = d[key], !(v is NSNull) else {
                if let def { return def }
                throw .badConfigValue(path: path, key: key, reason: "missing")
            }
            guard let a = v as? [Any] else { throw .badConfigValue(path: path, key: key, reason: "expected a list of integers") }
            var out: [Int] = []
            for e in a {
                guard let n = e as? NSNumber, Double(n.intValue) == n.doubleValue else {
                    throw .badConfigValue(path: path, key: key, reason: "expected a list of integers, got \(v)")
                }
                out.append(n.intValue)
            }
            return out
        }
        func float(_ d: [String: Any], _ key: String, _ def: Float) throws(Sam2Error) -> Float {
            guard let v = d[key], !(v is NSNull) else { return def }
            guard let n = v as? NSNumber, n.doubleValue.isFinite else { throw .badConfigValue(path: path, key: key, reason: "expected a number") }
            return n.floatValue
        }
        func bool(_ d: [String: Any], _ key: String, _ def: Bool) throws(Sam2Error) -> Bool {
            guard let v = d[key], !(v is NSNull) else { return def }
            guard let b = v as? Bool else { throw .badConfigValue(path: path, key: key, reason: "expected true or false") }
            return b
        }
        func act(_ d: [String: Any]) throws(Sam2Error) {
            if let a = d["hidden_act"] as? String, a != "gelu" {
                throw .badConfigValue(path: path, key: "hidden_act", reason: "\"\(a)\" is not supported (SAM 2 uses gelu)")
            }
        }
        let vision = try object(root, "vision_config")
        let bb = try object(vision, "backbone_config")
        try act(vision); try act(bb)
        var h = Hiera(hiddenSize: try int(bb, "hidden_size", 96), imageSize: try int(bb, "image_size", 1024),
                      backgroundSize: try ints(bb, "window_positional_embedding_background_size", [7, 7]),
                      blocksPerStage: try ints(bb, "blocks_per_stage", [1, 2, 7, 2]),
                      embedDimPerStage: try ints(bb, "embed_dim_per_stage", [96, 192, 384, 768]),
                      headsPerStage: try ints(bb, "num_attention_heads_per_stage", [1, 2, 4, 8]),
                      windowPerStage: try ints(bb, "window_size_per_stage", [8, 4, 14, 7]),
                      globalAttentionBlocks: try ints(bb, "global_attention_blocks", [5, 7, 9]))
        h.patchKernel = try int(bb, "patch_kernel_size", 7)
        h.patchStride = try int(bb, "patch_stride", 4)
        h.patchPadding = try int(bb, "patch_padding", 3)
        h.queryStride = try int(bb, "query_stride", 2)
        h.numQueryPoolStages = try int(bb, "num_query_pool_stages", 3)
        h.mlpRatio = Double(try float(bb, "mlp_ratio", 4))
        h.layerNormEps = try float(bb, "layer_norm_eps", 1e-6)
        if (bb["num_channels"] as? NSNumber).map({ $0.intValue != 3 }) ?? false {
            throw .badConfigValue(path: path, key: "num_channels", reason: "only RGB (3) is supported")
        }
        self.init(hiera: h, backboneChannelList: try ints(vision, "backbone_channel_list", Array(h.embedDimPerStage.reversed())))
        fpnHiddenSize = try int(vision, "fpn_hidden_size", 256)
        guard try int(vision, "fpn_kernel_size", 1) == 1, try int(vision, "fpn_stride", 1) == 1, try int(vision, "fpn_padding", 0) == 0 else {
            throw .badConfigValue(path: path, key: "fpn_kernel_size", reason: "only the 1×1 lateral convs of every released SAM 2 are supported")
        }
        fpnTopDownLevels = try ints(vision, "fpn_top_down_levels", [2, 3])
        numFeatureLevels = try int(vision, "num_feature_levels", 3)
        let pe = try object(root, "prompt_encoder_config")
        try act(pe)
        promptHiddenSize = try int(pe, "hidden_size", 256)
        promptPatchSize = try int(pe, "patch_size", 16)
        maskInputChannels = try int(pe, "mask_input_channels", 16)
        promptLayerNormEps = try float(pe, "layer_norm_eps", 1e-6)
        guard try int(pe, "image_size", imageSize) == imageSize else {
            throw .badConfigValue(path: path, key: "prompt_encoder_config.image_size", reason: "must equal the backbone's image_size \(imageSize)")
        }
        guard try int(pe, "num_point_embeddings", 4) == 4 else {
            throw .badConfigValue(path: path, key: "num_point_embeddings", reason: "SAM 2 has 4 (negative, positive, box corners)")
        }
        let md = try object(root, "mask_decoder_config")
        try act(md)
        guard try int(md, "hidden_size", promptHiddenSize) == promptHiddenSize else {
            throw .badConfigValue(path: path, key: "mask_decoder_config.hidden_size", reason: "must equal prompt_encoder_config.hidden_size")
        }
        decoderMLPDim = try int(md, "mlp_dim", 2048)
        decoderLayers = try int(md, "num_hidden_layers", 2)
        decoderHeads = try int(md, "num_attention_heads", 8)
        attentionDownsampleRate = try int(md, "attention_downsample_rate", 2)
        numMultimaskOutputs = try int(md, "num_multimask_outputs", 3)
        iouHeadDepth = try int(md, "iou_head_depth", 3)
        iouHeadHiddenDim = try int(md, "iou_head_hidden_dim", 256)
        dynamicMultimaskViaStability = try bool(md, "dynamic_multimask_via_stability", true)
        dynamicMultimaskStabilityDelta = try float(md, "dynamic_multimask_stability_delta", 0.05)
        dynamicMultimaskStabilityThresh = try float(md, "dynamic_multimask_stability_thresh", 0.98)
        try validate(path: path)
    }
}
