import Foundation
import Imaging
import Messaging
import SAM
import SAM2
import Tensor

extension Sam2ImageEmbedding {
    var values: Int { embedding.count + highRes1.count + highRes0.count }
}

/// A SAM 2 embedding as a decoder caches it (the features and the model that made them).
public struct Sam2BackendEmbedding: BackendEmbedding {
    public var modelName: String
    public var features: Sam2ImageEmbedding
    public var bytes: Int { features.values * MemoryLayout<Float>.size }
}

/// SAM 2 in image mode as Segflow serves it: Hiera + FPN neck (and the decoder's two 1×1
/// high-resolution projections) in the image-encoder; prompt encoder + mask decoder in the
/// prompt-decoder. Same prompts and wire as SAM.
public final class Sam2Backend: SegmentationBackend {
    public static let promptKinds: Set<PromptKind> = [.points, .boxes, .maskInput, .multimask, .tracking]
    public var promptKinds: Set<PromptKind> { Self.promptKinds }
    public let modelName: String
    public let model: Sam2
    /// The video model (memory encoder, memory attention, pointers) when the checkpoint has it.
    public let video: Sam2Video?

    public init(modelName: String, model: Sam2) { self.modelName = modelName; self.model = model; video = nil }
    public init(modelName: String, video: Sam2Video) { self.modelName = modelName; self.model = video.image; self.video = video }

    public var streamTracker: (any StreamTracker)? { Sam2StreamTracker(backend: self) }

    /// Side of the low-res logits SAM 2 takes as mask input (4 × the embedding grid).
    public var maskSide: Int { model.config.embeddingGrid * 4 }
    public var maskInputSide: Int? { maskSide }

    public func embed(_ image: RGBImage) throws -> any BackendEmbedding {
        Sam2BackendEmbedding(modelName: modelName, features: try model.embed(rgb: image.pixels, width: image.width, height: image.height))
    }

    /// On the wire: shape [4, C, g, g] counts the values of the three levels stored back to
    /// back — the embedding [C, g, g] (one C·g² block), then conv_s1's [C/4, 2g, 2g] (one
    /// block), then conv_s0's [C/8, 4g, 4g] (two blocks) — so one record (chunked by the
    /// transport) carries all the decoder reads: 8 MiB in f16 at 1024².
    public func wire(_ embedding: any BackendEmbedding, context c: EmbeddingContext) throws(ServingError) -> Messaging.ImageEmbedding {
        guard let e = embedding as? Sam2BackendEmbedding else { throw ServingError(.internal, "not a SAM 2 embedding") }
        let f = e.features
        let values = f.embedding.data + f.highRes1.data + f.highRes0.data
        let s = UInt32(model.config.imageSize)
        return Messaging.ImageEmbedding(
            requestID: c.requestID, imageID: c.imageID, model: modelName,
            originalHeight: UInt32(f.originalSize.height), originalWidth: UInt32(f.originalSize.width),
            inputHeight: s, inputWidth: s, dtype: c.dtype == .f16 ? .f16 : .f32,
            shape: [4] + f.embedding.shape.dropFirst().map { UInt32($0) },
            data: c.dtype == .f16 ? LittleEndian.f16Bytes(values) : LittleEndian.f32Bytes(values),
            encoderMs: c.encoderMs, frame: c.frame, createdAtMs: c.createdAtMs)
    }

    public func embedding(fromWire w: Messaging.ImageEmbedding) throws(ServingError) -> any BackendEmbedding {
        guard w.model == modelName else {
            throw ServingError(.shapeMismatch, "prompt is for '\(modelName)' but image '\(w.imageID)' was encoded with '\(w.model)'")
        }
        let c = model.config.promptHiddenSize, g = model.config.embeddingGrid
        guard w.shape.map({ Int($0) }) == [4, c, g, g] else {
            throw ServingError(.shapeMismatch, "embedding \(w.imageID): shape \(w.shape), this \(modelName) expects [4, \(c), \(g), \(g)] (three feature levels)")
        }
        let n = 4 * c * g * g, width = w.dtype == .f16 ? 2 : 4
        guard w.data.count == n * width else {
            throw ServingError(.shapeMismatch, "embedding \(w.imageID): \(modelName) needs \(n * width) bytes (three levels), got \(w.data.count)")
        }
        guard w.originalHeight > 0, w.originalWidth > 0 else { throw ServingError(.invalidEmbedding, "embedding \(w.imageID): zero image size") }
        let v = width == 2 ? LittleEndian.floats(f16: w.data, count: n) : LittleEndian.floats(f32: w.data, count: n)
        guard v.allSatisfy(\.isFinite) else { throw ServingError(.invalidEmbedding, "embedding \(w.imageID) holds NaN or infinity") }
        let a = c * g * g, b = a + (c / 4) * 4 * g * g
        let f = Sam2ImageEmbedding(embedding: Tensor(shape: [1, c, g, g], data: Array(v[0..<a])),
                                   highRes0: Tensor(shape: [1, c / 8, 4 * g, 4 * g], data: Array(v[b..<n])),
                                   highRes1: Tensor(shape: [1, c / 4, 2 * g, 2 * g], data: Array(v[a..<b])),
                                   originalSize: (Int(w.originalHeight), Int(w.originalWidth)))
        return Sam2BackendEmbedding(modelName: modelName, features: f)
    }

    public func answer(_ request: PromptRequest, embedding: any BackendEmbedding) throws(ServingError) -> [MaskResult.Mask] {
        try checkOwnership(embedding, imageID: request.imageID)
        guard let e = embedding as? Sam2BackendEmbedding else { throw ServingError(.internal, "not a SAM 2 embedding") }
        if request.text != nil || request.textEmbedding != nil {
            throw ServingError(.invalidPrompt, "text prompts need a model that takes text; image '\(request.imageID)' was encoded with '\(modelName)'")
        }
        guard request.everything == nil else {
            throw ServingError(.unsupported, "\(modelName) does not generate automatic ('everything') masks yet; use a SAM model")
        }
        do {
            let prompts = try Conversions.prompts(request, maskSide: maskSide)
            var masks: [MaskResult.Mask] = []
            let f = e.features
            for start in stride(from: 0, to: prompts.count, by: RequestLimits.decodeGroup) {
                let group = Array(prompts[start..<min(start + RequestLimits.decodeGroup, prompts.count)])
                let preds = try model.predict(f, group).map {
                    SamPrediction(lowResLogits: $0.lowResLogits, iouPredictions: $0.iouPredictions, logits: $0.logits)
                }
                masks += try Conversions.masks(preds, width: f.originalSize.width, height: f.originalSize.height,
                                               format: request.outputFormat, lowResLogits: request.returnLowResLogits)
            }
            return masks
        } catch let e as ServingError {
            throw e
        } catch let e as SamError {
            throw ServingError(e.isShapeProblem ? .shapeMismatch : .invalidPrompt, e.description)
        } catch {
            throw ServingError(.internal, "\(error)")
        }
    }
}

extension Sam2Backend {
    /// Registry names → official geometry. ref: sam2/configs/sam2.1/*.yaml; facebook/sam2.1-hiera-* on the Hub
    public static let presets: [(name: String, config: Sam2Config, file: String, hub: String)] = [
        ("sam2.1-hiera-t", .hieraTiny, "sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny"),
        ("sam2.1-hiera-s", .hieraSmall, "sam2.1_hiera_small.pt", "facebook/sam2.1-hiera-small"),
        ("sam2.1-hiera-b+", .hieraBasePlus, "sam2.1_hiera_base_plus.pt", "facebook/sam2.1-hiera-base-plus"),
        ("sam2.1-hiera-l", .hieraLarge, "sam2.1_hiera_large.pt", "facebook/sam2.1-hiera-large"),
    ]

    public static let family = ModelFamily(
        name: "sam2",
        models: presets.map {
            ModelInfo(name: $0.name, family: "sam2", promptKinds: promptKinds,
                      weights: "--checkpoint \($0.file) (official) or a Hugging Face \($0.hub) directory")
        },
        load: { r in
            guard let preset = presets.first(where: { $0.name == r.model }) else { throw RegistryError.unknownModel(r.model) }
            guard let path = r.checkpoint else {
                throw ServingError(.unknownModel, "\(r.model) needs --checkpoint: the official \(preset.file) or a Hugging Face \(preset.hub) directory")
            }
            let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
            let config = r.config.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            // A Sam2VideoModel directory or an official .pt brings the video modules too.
            let cfg = config ?? url.appendingPathComponent("config.json")
            var videoConfig = true
            if let data = FileManager.default.contents(atPath: cfg.path),
               let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                videoConfig = root["model_type"] as? String == "sam2_video"
            }
            if videoConfig && Sam2Video.hasVideoModules(url) {
                return Sam2Backend(modelName: r.model, video: try Sam2Video.load(url: url, config: config, preset: preset.config))
            }
            return Sam2Backend(modelName: r.model, model: try Sam2.load(url: url, config: config, preset: preset.config))
        })
}

/// SAM 2 stream tracking: each object's memory bank (conditioning frames + recent memories +
/// object pointers) carried in the stream state, so any decoder continues a stream from its
/// snapshot; objects can be added, corrected and removed on any frame.
struct Sam2StreamTracker: StreamTracker {
    let backend: Sam2Backend

    /// Per object: a conditioning memory (bf16 features, pointer, low-res mask) plus
    /// `memoryWindow` recent ones (features and pointer).
    func maxStateBytes(objects: Int) -> Int {
        guard let v = backend.video else { return 64 }
        let g = v.image.config.embeddingGrid, mem = v.video.memoryEncoderOutputChannels, c = v.image.config.promptHiddenSize
        // One conditioning memory per prompt (a stream is started or corrected with one),
        // num_maskmem − 1 recent spatial memories, pointers for the whole pointer window.
        let pointer = 32 + 4 * c, spatial = 16 + 2 * g * g * mem
        return 64 + objects * ((v.memoryWindow + 1) * pointer + v.video.numMaskmem * spatial + 4 * 16 * g * g)
    }

    func track(frameIndex: UInt64, embedding: any BackendEmbedding, state bytes: [UInt8]?, track: StreamTrack) throws(ServingError) -> TrackedFrame {
        try backend.checkOwnership(embedding, imageID: "frame \(frameIndex)")
        guard let video = backend.video else {
            throw ServingError(.unsupported, "\(backend.modelName) was loaded without its video modules: tracking needs the official sam2.1_hiera_*.pt or a transformers Sam2VideoModel directory (config.json with model_type \"sam2_video\", e.g. facebook/sam2.1-hiera-tiny)")
        }
        guard let e = embedding as? Sam2BackendEmbedding else { throw ServingError(.internal, "not a SAM 2 embedding") }
        if bytes == nil && track.objects.isEmpty {
            throw ServingError(.streamNotFound, "frame \(frameIndex) has no state and names no objects: start a stream with at least one object prompt")
        }
        var state: Sam2StreamState
        do { state = try bytes.map { try Sam2StreamState(serialized: $0, position: video.memoryPosition) } ?? Sam2StreamState() } catch {
            throw ServingError(.invalidPrompt, "stream state (\(bytes?.count ?? 0) bytes) is unreadable: \(error)")
        }
        guard frameIndex < UInt64(Int32.max) else { throw ServingError(.invalidPrompt, "frame index \(frameIndex) is too large") }
        let t = Int(frameIndex)
        if let last = state.lastFrame, t <= last {
            throw ServingError(.frameOutOfOrder, "frame \(t) after frame \(last); frame indices must increase")
        }
        for id in track.removeObjects {
            guard let i = state.objects.firstIndex(where: { $0.id == id }) else {
                throw ServingError(.invalidPrompt, "frame \(t) removes object \(id), which the stream does not track (tracked: \(state.objects.map(\.id)))")
            }
            state.objects.remove(at: i)
        }
        var prompts: [Int: SamPrompt] = [:]
        var started: Set<Int> = []
        for o in track.objects {
            let p = SamPrompt(points: o.points.map { .init(x: $0.x, y: $0.y, label: Int($0.label)) },
                              box: o.box.map { ($0.x0, $0.y0, $0.x1, $0.y1) })
            guard !p.points.isEmpty || p.box != nil else {
                throw ServingError(.invalidPrompt, "object \(o.objectID) on frame \(t) has no points and no box")
            }
            if let i = state.objects.firstIndex(where: { $0.id == o.objectID }) {
                prompts[i] = p
            } else {
                state.objects.append(.init(id: o.objectID))
                prompts[state.objects.count - 1] = p
                started.insert(state.objects.count - 1)
            }
        }
        guard state.objects.count <= StreamTrack.maxObjects else {
            throw ServingError(.invalidPrompt, "the stream would track \(state.objects.count) objects; at most \(StreamTrack.maxObjects)")
        }
        var memories = state.objects.map(\.memory)
        let results: [Sam2TrackResult]
        do {
            results = try video.step(frame: t, features: e.features, states: &memories, prompts: prompts)
        } catch let err as SamError {
            throw ServingError(err.isShapeProblem ? .shapeMismatch : .invalidPrompt, err.description)
        } catch { throw ServingError(.internal, "\(error)") }
        var masks: [MaskResult.Mask] = []
        do {
            for (i, r) in results.enumerated() {
                let present = r.objectScore > 0
                let mask = try BinaryMask(width: r.logits.shape[1], height: r.logits.shape[0],
                                          values: r.logits.data.map { present && $0 > Sam2.maskThreshold ? 1 : 0 })
                // The object score as a probability stands in for a predicted IoU.
                var wire = try WireMask.encode(mask, format: track.outputFormat, predictedIoU: 1 / (1 + expf(-r.objectScore)), stabilityScore: 0)
                wire.objectID = state.objects[i].id
                wire.trackStatus = started.contains(i) ? .started : prompts[i] != nil ? .corrected
                    : !present ? .lost : state.objects[i].present ? .tracked : .reacquired
                masks.append(wire)
                state.objects[i].memory = memories[i]
                state.objects[i].present = present
            }
        } catch { throw ServingError(.internal, "\(error)") }
        state.lastFrame = t
        return TrackedFrame(masks: masks, state: state.serialized())
    }
}
