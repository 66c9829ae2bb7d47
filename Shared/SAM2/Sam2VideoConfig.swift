import Foundation

/// The video half of a transformers `Sam2VideoConfig` (`model_type` "sam2_video"): memory
/// encoder, memory attention, memory bank and object-pointer settings. Defaults are the
/// released sam2.1 values. ref: transformers/models/sam2_video/configuration_sam2_video.py
public struct Sam2VideoConfig: Sendable, Equatable {
    public var numMaskmem = 7
    public var sigmoidScaleForMemEnc: Float = 20, sigmoidBiasForMemEnc: Float = -10
    public var enableOcclusionSpatialEmbedding = true
    public var multimaskOutputInSam = true, multimaskMinPtNum = 0, multimaskMaxPtNum = 1, multimaskOutputForTracking = true
    public var maxObjectPointersInEncoder = 16
    public var maxCondFrameNum = -1
    public var enableTemporalPosEncodingForObjectPointers = true
    public var memoryAttentionHiddenSize = 256, memoryAttentionLayers = 4, memoryAttentionHeads = 1
    public var memoryAttentionDownsampleRate = 1, memoryAttentionFeedForward = 2048
    public var ropeFeatSizes = [64, 64]
    public var ropeTheta: Float = 10000
    public var memoryEncoderHiddenSize = 256, memoryEncoderOutputChannels = 64
    public var maskDownsamplerEmbedDim = 256, maskDownsamplerKernel = 3, maskDownsamplerStride = 2
    public var maskDownsamplerPadding = 1, maskDownsamplerTotalStride = 16
    public var memoryFuserLayers = 2, memoryFuserEmbedDim = 256, memoryFuserIntermediateDim = 1024
    public var memoryFuserKernel = 7, memoryFuserPadding = 3

    public init() {}

    /// Reads the video keys of a `sam2_video` config.json (absent keys keep the sam2.1 defaults).
    public init(json data: Data, path: String) throws(Sam2Error) {
        let root: [String: Any]
        do {
            guard let r = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw Sam2Error.malformedConfig(path: path, reason: "not a JSON object")
            }
            root = r
        } catch let e as Sam2Error { throw e } catch { throw .malformedConfig(path: path, reason: "not JSON (\(error))") }
        guard (root["model_type"] as? String) == "sam2_video" else {
            throw .badConfigValue(path: path, key: "model_type", reason: "must be \"sam2_video\" for video tracking (a Sam2VideoModel config)")
        }
        func int(_ key: String, _ v: inout Int) throws(Sam2Error) {
            guard let x = root[key], !(x is NSNull) else { return }
            guard let n = x as? NSNumber, Double(n.intValue) == n.doubleValue else { throw .badConfigValue(path: path, key: key, reason: "expected an integer") }
            v = n.intValue
        }
        func float(_ key: String, _ v: inout Float) throws(Sam2Error) {
            guard let x = root[key], !(x is NSNull) else { return }
            guard let n = x as? NSNumber, n.doubleValue.isFinite else { throw .badConfigValue(path: path, key: key, reason: "expected a number") }
            v = n.floatValue
        }
        func bool(_ key: String, _ v: inout Bool) throws(Sam2Error) {
            guard let x = root[key], !(x is NSNull) else { return }
            guard let b = x as? Bool else { throw .badConfigValue(path: path, key: key, reason: "expected true or false") }
            v = b
        }
        func act(_ key: String, _ expected: String) throws(Sam2Error) {
            if let a = root[key] as? String, a != expected {
                throw .badConfigValue(path: path, key: key, reason: "\"\(a)\" is not supported (SAM 2 uses \(expected))")
            }
        }
        try int("num_maskmem", &numMaskmem)
        try float("sigmoid_scale_for_mem_enc", &sigmoidScaleForMemEnc); try float("sigmoid_bias_for_mem_enc", &sigmoidBiasForMemEnc)
        try bool("enable_occlusion_spatial_embedding", &enableOcclusionSpatialEmbedding)
        try bool("multimask_output_in_sam", &multimaskOutputInSam); try int("multimask_min_pt_num", &multimaskMinPtNum)
        try int("multimask_max_pt_num", &multimaskMaxPtNum); try bool("multimask_output_for_tracking", &multimaskOutputForTracking)
        try int("max_object_pointers_in_encoder", &maxObjectPointersInEncoder); try int("max_cond_frame_num", &maxCondFrameNum)
        try bool("enable_temporal_pos_encoding_for_object_pointers", &enableTemporalPosEncodingForObjectPointers)
        try int("memory_attention_hidden_size", &memoryAttentionHiddenSize); try int("memory_attention_num_layers", &memoryAttentionLayers)
        try int("memory_attention_num_attention_heads", &memoryAttentionHeads)
        try int("memory_attention_downsample_rate", &memoryAttentionDownsampleRate)
        try int("memory_attention_feed_forward_hidden_size", &memoryAttentionFeedForward)
        try act("memory_attention_feed_forward_hidden_act", "relu")
        if let r = root["memory_attention_rope_feat_sizes"] as? [NSNumber], r.count == 2 { ropeFeatSizes = r.map(\.intValue) }
        if let rp = root["rope_parameters"] as? [String: Any] {
            if let t = rp["rope_type"] as? String, t != "axial" {
                throw .badConfigValue(path: path, key: "rope_parameters.rope_type", reason: "\"\(t)\" is not supported (SAM 2 uses axial)")
            }
            if let th = rp["rope_theta"] as? NSNumber { ropeTheta = th.floatValue }
        }
        try int("memory_encoder_hidden_size", &memoryEncoderHiddenSize); try int("memory_encoder_output_channels", &memoryEncoderOutputChannels)
        try int("mask_downsampler_embed_dim", &maskDownsamplerEmbedDim); try int("mask_downsampler_kernel_size", &maskDownsamplerKernel)
        try int("mask_downsampler_stride", &maskDownsamplerStride); try int("mask_downsampler_padding", &maskDownsamplerPadding)
        try int("mask_downsampler_total_stride", &maskDownsamplerTotalStride)
        try act("mask_downsampler_hidden_act", "gelu"); try act("memory_fuser_hidden_act", "gelu")
        try int("memory_fuser_num_layers", &memoryFuserLayers); try int("memory_fuser_embed_dim", &memoryFuserEmbedDim)
        try int("memory_fuser_intermediate_dim", &memoryFuserIntermediateDim); try int("memory_fuser_kernel_size", &memoryFuserKernel)
        try int("memory_fuser_padding", &memoryFuserPadding)
        guard maxCondFrameNum == -1 else {
            throw .badConfigValue(path: path, key: "max_cond_frame_num", reason: "only -1 (every conditioning frame) is supported, as in every release")
        }
        guard numMaskmem >= 1, maxObjectPointersInEncoder >= 2 else {
            throw .badConfigValue(path: path, key: "num_maskmem", reason: "needs at least one memory and two object pointers")
        }
        guard memoryAttentionHeads >= 1, (memoryAttentionHiddenSize / memoryAttentionDownsampleRate) % (4 * memoryAttentionHeads) == 0 else {
            throw .badConfigValue(path: path, key: "memory_attention_num_attention_heads", reason: "head width must be a multiple of 4 (axial RoPE)")
        }
    }
}
