import Checkpoint
import Foundation
import NN
import SAM
import Tensor

/// What one tracked frame leaves in an object's memory bank. Only what memory attention
/// reads later is kept: the spatial memory and its position encoding, the object pointer,
/// and the low-res mask (returned again when a conditioning frame is asked for twice).
public struct Sam2FrameMemory: Sendable, Equatable {
    /// [1, 4g, 4g] low-resolution logits of the chosen mask.
    public var lowResMask: Tensor
    /// [C] object pointer.
    public var objectPointer: [Float]
    public var objectScore: Float
    /// [g·g, memDim] spatial memory (bf16-rounded, as upstream stores it) and [g·g, memDim] its position encoding.
    public var features: Tensor?
    public var position: Tensor?
}

/// One object's tracking state: its conditioning frames (prompted, never evicted) and the
/// recent non-conditioning frames memory attention can still read. `prune` drops frames
/// older than the memory window, so the state is constant in size however long the stream.
public struct Sam2ObjectState: Sendable, Equatable {
    /// Conditioning frames in the order they were added.
    public var conditioning: [(frame: Int, memory: Sam2FrameMemory)] = []
    public var recent: [Int: Sam2FrameMemory] = [:]
    /// Frames tracked (decoded with memory) at least once.
    public var tracked: Set<Int> = []
    public init() {}

    public func conditioningMemory(_ t: Int) -> Sam2FrameMemory? { conditioning.first { $0.frame == t }?.memory }

    /// After frame `frame`, keeps what a later frame can still read: object pointers of the
    /// last `window − 1` frames, spatial memories of the last `featureWindow − 1`.
    public mutating func prune(before frame: Int, window: Int, featureWindow: Int) {
        recent = recent.filter { $0.key > frame - window }
        for (f, _) in recent where f <= frame - featureWindow {
            recent[f]!.features = nil; recent[f]!.position = nil
        }
        tracked = tracked.filter { $0 > frame - window }
    }

    public static func == (a: Sam2ObjectState, b: Sam2ObjectState) -> Bool {
        a.conditioning.map(\.frame) == b.conditioning.map(\.frame) && a.conditioning.map(\.memory) == b.conditioning.map(\.memory)
            && a.recent == b.recent && a.tracked == b.tracked
    }
}

/// The result for one object on one frame.
public struct Sam2TrackResult: Sendable {
    /// [1, 4g, 4g] low-res logits (−1024 everywhere when the object is judged absent).
    public var lowResMask: Tensor
    public var objectScore: Float
    /// [H, W] logits at the frame's original size.
    public var logits: Tensor
}

/// SAM 2 for video: the image model plus memory encoder, memory attention, object pointers
/// and the memory-bank rules, stepping one frame at a time over per-object states.
/// ref: transformers/models/sam2_video/modeling_sam2_video.py Sam2VideoModel; sam2/modeling/sam2_base.py
public final class Sam2Video: Sendable {
    /// Logit written over every low-res pixel of a frame where the object is judged absent.
    /// ref: modeling_sam2_video.py NO_OBJ_SCORE
    public static let noObjectScore: Float = -1024
    public let image: Sam2
    public let video: Sam2VideoConfig
    let memoryEncoder: Sam2MemoryEncoder
    let memoryAttention: Sam2MemoryAttention
    let memoryTemporalPE: Tensor   // [numMaskmem, memDim]
    let noObjectPointer: [Float]   // [C]
    let objectPointerProj: Sam2FeedForward
    let pointerTemporalProj: Linear?
    let occlusion: [Float]?        // [memDim]
    /// [g·g, C]: sine position encoding of the coarsest level as tokens.
    let visionPosition: Tensor
    /// [g·g, memDim]: the spatial memories' position encoding (the same for every frame).
    public let memoryPosition: Tensor

    /// `names`: transformers' `Sam2VideoModel` or the sam2 package's `SAM2Base`
    /// (`maskmem_tpos_enc`, `no_obj_ptr`, `obj_ptr_proj`, `obj_ptr_tpos_proj`, `no_obj_embed_spatial`, …).
    public init(_ vb: WeightLoader, config c: Sam2Config, video v: Sam2VideoConfig, names: Sam2WeightNames = .transformers) throws {
        let t = names == .transformers
        image = try Sam2(vb, config: c, names: names)
        video = v
        let h = c.promptHiddenSize, mem = v.memoryEncoderOutputChannels
        memoryEncoder = try Sam2MemoryEncoder(vb.pp("memory_encoder"), config: v, names: names)
        memoryAttention = try Sam2MemoryAttention(vb.pp("memory_attention"), config: v, memoryDim: mem, names: names)
        // Row k − 1 is the encoding of a memory k frames back (the same order in both layouts:
        // sam2_base.py indexes maskmem_tpos_enc[num_maskmem − t_pos − 1] with t_pos = num_maskmem − k).
        memoryTemporalPE = try vb.tensor(t ? "memory_temporal_positional_encoding" : "maskmem_tpos_enc", shape: [v.numMaskmem, 1, 1, mem])
            .reshaped([v.numMaskmem, mem])
        noObjectPointer = try vb.tensor(t ? "no_object_pointer" : "no_obj_ptr", shape: [1, h]).data
        // Declared upstream but never read by the forward.
        _ = try vb.tensor(t ? "no_memory_positional_encoding" : "no_mem_pos_enc", shape: [1, 1, h])
        // Used only for mask prompts on video frames (not supported here); bound so the checkpoint is strict.
        _ = try Conv2d(vb.pp("mask_downsample"), in: 1, out: 1, kernel: 4, stride: 4)
        objectPointerProj = try Sam2FeedForward(vb.pp(t ? "object_pointer_proj" : "obj_ptr_proj"), in: h, hidden: h, out: h, layers: 3,
                                                names: names)
        pointerTemporalProj = v.enableTemporalPosEncodingForObjectPointers
            ? try Linear(vb.pp(t ? "temporal_positional_encoding_projection_layer" : "obj_ptr_tpos_proj"), in: h, out: mem) : nil
        occlusion = v.enableOcclusionSpatialEmbedding
            ? try vb.tensor(t ? "occlusion_spatial_embedding_parameter" : "no_obj_embed_spatial", shape: [1, mem]).data : nil
        let g = c.embeddingGrid
        guard v.ropeFeatSizes == [g, g], v.memoryAttentionHiddenSize == h, v.memoryEncoderHiddenSize == h,
              v.maskDownsamplerEmbedDim == h, v.memoryFuserEmbedDim == h, h % mem == 0,
              c.imageSize / v.maskDownsamplerTotalStride == g else {
            throw Sam2Error.badConfigValue(path: "config", key: "memory_attention_rope_feat_sizes",
                                           reason: "memory sizes must match the \(g)×\(g) grid of width \(h) (and divide by memory_encoder_output_channels)")
        }
        visionPosition = Ops.permute(Sam2.sinePositionEncoding(channels: h, height: g, width: g), [0, 2, 3, 1]).reshaped([g * g, h])
        memoryPosition = Ops.permute(Sam2.sinePositionEncoding(channels: mem, height: g, width: g), [0, 2, 3, 1]).reshaped([g * g, mem])
    }

    /// Loads a Hugging Face `Sam2VideoModel` directory (`config.json` with `model_type`
    /// "sam2_video" + `model.safetensors`), strictly.
    public static func load(directory: URL) throws -> Sam2Video {
        try load(url: directory)
    }

    /// Loads the video model from a Hugging Face `Sam2VideoModel` directory, or from an
    /// official `sam2.1_hiera_*.pt` (the whole `SAM2Base`, sam2 package names). Geometry:
    /// `config` (a `sam2_video` config.json), else the directory's, else `preset` with the
    /// sam2.1 video defaults. Strict: every tensor used, every one present with its shape.
    public static func load(url: URL, config configURL: URL? = nil, preset: Sam2Config = .hieraTiny) throws -> Sam2Video {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw Sam2Error.missingFile(path: url.path) }
        var config = preset, video = Sam2VideoConfig()
        let weights = isDir.boolValue ? url.appendingPathComponent("model.safetensors") : url
        if let cfgURL = configURL ?? (isDir.boolValue ? url.appendingPathComponent("config.json") : nil) {
            guard let data = FileManager.default.contents(atPath: cfgURL.path) else { throw Sam2Error.missingFile(path: cfgURL.path) }
            config = try Sam2Config(json: data, path: cfgURL.path)
            video = try Sam2VideoConfig(json: data, path: cfgURL.path)
        }
        let sd: StateDict
        do { sd = try StateDict(contentsOf: weights) } catch { throw Sam2Error.checkpoint(error) }
        let layout: (Sam2WeightNames, String)
        if sd.contains("vision_encoder.backbone.patch_embed.projection.weight") {
            layout = (.transformers, "")
        } else if let strip = ["", "model.", "module.", "model.module."].first(where: { sd.contains($0 + "image_encoder.trunk.patch_embed.proj.weight") }) {
            layout = (.original, strip)
        } else {
            throw Sam2Error.unknownLayout(path: weights.path, sample: Array(sd.names.prefix(5)))
        }
        let vb: WeightLoader
        do { vb = try WeightLoader(sd, stripPrefix: layout.1.isEmpty ? nil : layout.1) } catch { throw Sam2Error.checkpoint(error) }
        let model: Sam2Video
        do { model = try Sam2Video(vb, config: config, video: video, names: layout.0) } catch let e as CheckpointError { throw Sam2Error.checkpoint(e) }
        do { try vb.finish() } catch { throw Sam2Error.checkpoint(error) }
        return model
    }

    /// Whether a checkpoint holds the video modules (memory attention): it can then track.
    public static func hasVideoModules(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return false }
        guard let sd = try? StateDict(contentsOf: isDir.boolValue ? url.appendingPathComponent("model.safetensors") : url) else { return false }
        return sd.names.contains { $0.hasPrefix("memory_attention.") || $0.hasPrefix("model.memory_attention.") }
    }

    /// Frames a non-conditioning memory stays useful: the memory bank reads `num_maskmem − 1`
    /// frames back, the pointers `max_object_pointers_in_encoder − 1`.
    public var memoryWindow: Int { max(video.numMaskmem - 1, video.maxObjectPointersInEncoder - 1) }

    // MARK: - One object on one frame

    /// ref: Sam2VideoModel._use_multimask
    func useMultimask(initialConditioning: Bool, pointCount: Int) -> Bool {
        video.multimaskOutputInSam && (initialConditioning || video.multimaskOutputForTracking)
            && video.multimaskMinPtNum <= pointCount && pointCount <= video.multimaskMaxPtNum
    }

    /// Decides what `step` does for one object and runs it.
    /// - Parameters:
    ///   - prompt: new points / box for this object on this frame (original coordinates), or nil.
    ///   - numFrames: frames in the whole video when known (transformers' offline session);
    ///     nil for a stream (pointers then reach `max_object_pointers_in_encoder` back).
    /// - Returns: the result and, when the frame produced a new memory to encode, what the
    ///   encoder needs (the caller batches that per frame, as upstream does).
    /// ref: Sam2VideoModel.forward (per-object branch), _run_single_frame_inference
    func decode(frame t: Int, features emb: Sam2ImageEmbedding, state: inout Sam2ObjectState, prompt: SamPrompt?,
                numFrames: Int?) throws -> (result: Sam2TrackResult, pendingMemory: (highRes: Tensor, fromPrompt: Bool, score: Float)?) {
        if prompt == nil, let cached = state.conditioningMemory(t) {
            return (Sam2TrackResult(lowResMask: cached.lowResMask, objectScore: cached.objectScore,
                                    logits: logitsAtOriginalSize(cached.lowResMask, emb)), nil)
        }
        if let prompt { try image.validate(prompt, for: emb) }
        let initial = prompt != nil && !state.tracked.contains(t)
        let c = image.config.promptHiddenSize, g = image.config.embeddingGrid
        let pix: Tensor = initial ? image.imageModeEmbedding(emb) : memoryConditioned(frame: t, features: emb, state: state, numFrames: numFrames)
        let pointCount = (prompt?.points.count ?? 0) + (prompt?.box != nil ? 2 : 0)
        let multimask = useMultimask(initialConditioning: initial, pointCount: pointCount)
        let sparse = image.sparseEmbedding(prompt ?? SamPrompt(), emb)
        let out = image.maskDecoder(imageEmbedding: pix, imagePE: image.imagePositionalEncoding, sparse: sparse.reshaped([1] + sparse.shape),
                                    dense: image.promptEncoder.denseEmbedding(mask: nil), highRes0: emb.highRes0, highRes1: emb.highRes1,
                                    multimask: multimask)
        let appearing = out.objectScore[0] > 0
        let m = out.masks.shape[1], plane = 16 * g * g
        var pick = 0
        if multimask { for k in 1..<m where out.iou.data[k] > out.iou.data[pick] { pick = k } }
        var low = Tensor(shape: [1, 4 * g, 4 * g], data: Array(out.masks.data[(pick * plane)..<((pick + 1) * plane)]))
        if !appearing { low = Tensor(repeating: Self.noObjectScore, shape: low.shape) }
        let token = Array(out.maskTokens.data[(pick * c)..<((pick + 1) * c)])
        var pointer = objectPointerProj(Tensor(shape: [1, c], data: token)).data
        // ref: _single_frame_forward (λ·pointer + (1 − λ)·no_object_pointer)
        let lambda: Float = appearing ? 1 : 0
        for i in 0..<c { pointer[i] = lambda * pointer[i] + (1 - lambda) * noObjectPointer[i] }
        let s = image.config.imageSize
        let highRes = Ops.interpolateBilinear(low.reshaped([1, 1, 4 * g, 4 * g]), size: Size2(s, s))
        let memory = Sam2FrameMemory(lowResMask: low, objectPointer: pointer, objectScore: out.objectScore[0])
        if initial {
            state.conditioning.removeAll { $0.frame == t }
            state.conditioning.append((t, memory))
        } else {
            state.recent[t] = memory
            state.tracked.insert(t)
        }
        return (Sam2TrackResult(lowResMask: low, objectScore: out.objectScore[0], logits: logitsAtOriginalSize(low, emb)),
                (highRes, prompt != nil, out.objectScore[0]))
    }

    func logitsAtOriginalSize(_ low: Tensor, _ emb: Sam2ImageEmbedding) -> Tensor {
        let g4 = low.shape[1]
        return Ops.interpolateBilinear(low.reshaped([1, 1, g4, g4]), size: Size2(emb.originalSize.height, emb.originalSize.width))
            .reshaped([emb.originalSize.height, emb.originalSize.width])
    }

    /// Encodes the frame's new memory for one object. `fromPrompt` (any object of this
    /// frame's call was prompted, as upstream batches it) binarises the mask instead of the sigmoid.
    /// ref: Sam2VideoModel._encode_new_memory, _batch_encode_memories
    func encodeMemory(frame t: Int, features emb: Sam2ImageEmbedding, highRes: Tensor, fromPrompt: Bool, objectScore score: Float,
                      state: inout Sam2ObjectState) {
        var mask = highRes
        let (scale, bias) = (video.sigmoidScaleForMemEnc, video.sigmoidBiasForMemEnc)
        mask.data.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                let v = fromPrompt ? (p[i] > 0 ? 1 : 0) : 1 / (1 + expf(-p[i]))
                p[i] = v * scale + bias
            }
        }
        var (features, position) = memoryEncoder(features: emb.embedding, masks: mask)
        let mem = memoryEncoder.outputChannels, g = image.config.embeddingGrid
        if let occlusion, !(score > 0) {
            features.data.withUnsafeMutableBufferPointer { p in
                for ch in 0..<mem { for i in 0..<(g * g) { p[ch * g * g + i] += occlusion[ch] } }
            }
        }
        // Stored as bfloat16 upstream ("to save memory, and for consistency with the original").
        let tokens = Ops.permute(features.reshaped([mem, g * g]), [1, 0])
        let rounded = Tensor(shape: tokens.shape, data: tokens.data.map { BF16.toFloat(BF16.from($0)) })
        let pos = Ops.permute(position.reshaped([mem, g * g]), [1, 0])
        // Written where upstream writes it: the conditioning output when the frame has one.
        if let i = state.conditioning.firstIndex(where: { $0.frame == t }) {
            state.conditioning[i].memory.features = rounded; state.conditioning[i].memory.position = pos
        } else if state.recent[t] != nil {
            state.recent[t]!.features = rounded; state.recent[t]!.position = pos
        }
    }

    /// The current frame's coarsest features conditioned on the object's memory bank.
    /// ref: Sam2VideoModel._prepare_memory_conditioned_features, _gather_memory_frame_outputs,
    ///      _build_memory_attention_inputs, _get_object_pointers, _process_object_pointers
    public func memoryConditioned(frame t: Int, features emb: Sam2ImageEmbedding, state: Sam2ObjectState, numFrames: Int?) -> Tensor {
        let c = image.config.promptHiddenSize, g = image.config.embeddingGrid, mem = memoryEncoder.outputChannels
        let nm = video.numMaskmem
        var memories: [Tensor] = [], positions: [Tensor] = []
        func add(_ m: Sam2FrameMemory, offset: Int) {
            guard let f = m.features, let p = m.position else { return }
            memories.append(f)
            // Python's memory_temporal_positional_encoding[offset − 1]: offset 0 (conditioning) is the last row.
            let row = (offset - 1 + nm) % nm
            positions.append(Ops.add(p, Tensor(shape: [1, mem], data: Array(memoryTemporalPE.data[(row * mem)..<((row + 1) * mem)]))))
        }
        for (_, m) in state.conditioning { add(m, offset: 0) }
        for off in stride(from: nm - 1, through: 1, by: -1) {
            if let m = state.recent[t - off] { add(m, offset: off) }
        }
        // Object pointers: conditioning frames up to now, then recent frames.
        let maxPointers = numFrames.map { min($0, video.maxObjectPointersInEncoder) } ?? video.maxObjectPointersInEncoder
        var offsets: [Int] = [], pointers: [[Float]] = []
        for (f, m) in state.conditioning where f <= t { offsets.append(t - f); pointers.append(m.objectPointer) }
        if maxPointers > 1 {
            for d in 1..<maxPointers {
                let ref = t - d
                if ref < 0 || (numFrames.map { ref >= $0 } ?? false) { break }
                if let m = state.recent[ref] { offsets.append(d); pointers.append(m.objectPointer) }
            }
        }
        var pointerTokens = 0
        if !pointers.isEmpty {
            let splits = c / mem
            var pe: Tensor
            if let proj = pointerTemporalProj {
                // ref: get_1d_sine_pe(offsets / (max − 1), dim=C)
                let half = c / 2, maxDiff = Float(maxPointers - 1)
                var sine = [Float](repeating: 0, count: offsets.count * c)
                for (r, o) in offsets.enumerated() {
                    let x = Float(o) / maxDiff
                    for i in 0..<half {
                        let dimT = powf(10000, 2 * Float(i / 2) / Float(half))
                        sine[r * c + i] = sinf(x / dimT); sine[r * c + half + i] = cosf(x / dimT)
                    }
                }
                pe = proj(Tensor(shape: [offsets.count, c], data: sine))
            } else {
                pe = Tensor(zeros: [offsets.count, mem])
            }
            // Each C-wide pointer becomes C/memDim memDim-wide tokens sharing its encoding.
            var tok = [Float](), tokPE = [Float]()
            for (r, p) in pointers.enumerated() {
                tok += p
                for _ in 0..<splits { tokPE += pe.data[(r * mem)..<((r + 1) * mem)] }
            }
            memories.append(Tensor(shape: [pointers.count * splits, mem], data: tok))
            positions.append(Tensor(shape: [pointers.count * splits, mem], data: tokPE))
            pointerTokens = pointers.count * splits
        }
        let current = Ops.permute(emb.embedding.reshaped([c, g * g]), [1, 0])
        let out = memoryAttention(current: current, currentPos: visionPosition, memory: Ops.concat(memories, axis: 0),
                                  memoryPos: Ops.concat(positions, axis: 0), pointerTokens: pointerTokens)
        return Ops.permute(out, [1, 0]).reshaped([1, c, g, g])
    }

    // MARK: - A frame for every object

    /// Runs frame `t` for every object (prompts by object index), then encodes the new
    /// memories — one frame call of transformers' `Sam2VideoModel.forward`.
    public func step(frame t: Int, features emb: Sam2ImageEmbedding, states: inout [Sam2ObjectState], prompts: [Int: SamPrompt] = [:],
                     numFrames: Int? = nil) throws -> [Sam2TrackResult] {
        var results: [Sam2TrackResult] = []
        var pending: [(index: Int, highRes: Tensor, fromPrompt: Bool, score: Float)] = []
        for i in states.indices {
            let (r, p) = try decode(frame: t, features: emb, state: &states[i], prompt: prompts[i], numFrames: numFrames)
            results.append(r)
            if let p { pending.append((i, p.highRes, p.fromPrompt, p.score)) }
        }
        let fromPrompt = pending.contains { $0.fromPrompt }
        for p in pending {
            encodeMemory(frame: t, features: emb, highRes: p.highRes, fromPrompt: fromPrompt, objectScore: p.score, state: &states[p.index])
        }
        if numFrames == nil {
            for i in states.indices { states[i].prune(before: t, window: memoryWindow, featureWindow: video.numMaskmem - 1) }
        }
        return results
    }
}
