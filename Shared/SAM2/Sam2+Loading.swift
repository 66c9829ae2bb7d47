import Checkpoint
import Foundation

extension Sam2 {
    /// Tensors of the video-only modules (memory attention, memory encoder, object pointers).
    /// Image mode reads none of them and skips them by these prefixes, as transformers'
    /// `Sam2PreTrainedModel._keys_to_ignore_on_load_unexpected` does.
    /// ref: modeling_sam2.py Sam2PreTrainedModel; sam2/modeling/sam2_base.py SAM2Base.__init__
    static let videoOnlyPrefixes: [Sam2WeightNames: [String]] = [
        .transformers: ["memory_attention.", "memory_encoder.", "mask_downsample.", "object_pointer_proj.",
                        "temporal_positional_encoding_projection_layer.", "no_memory_positional_encoding",
                        "no_object_pointer", "occlusion_spatial_embedding_parameter", "memory_temporal_positional_encoding"],
        .original: ["memory_attention.", "memory_encoder.", "mask_downsample.", "obj_ptr_proj.", "obj_ptr_tpos_proj.",
                    "maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr", "no_obj_embed_spatial"],
    ]

    /// Loads SAM 2 (image mode) from
    /// - a Hugging Face model directory (`facebook/sam2.1-hiera-*`): `config.json` (`Sam2Model`
    ///   or `Sam2VideoModel`) + `model.safetensors`;
    /// - a single `.safetensors` file in either layout;
    /// - an official `sam2.1_hiera_*.pt` (`{"model": state_dict}`, the sam2 package's names).
    ///
    /// Geometry: `config` (a transformers SAM 2 `config.json`) if given, else the directory's
    /// `config.json`, else `preset`. The layout is detected from the tensor names. Strict:
    /// every tensor the image model needs must be present with its shape, and every other
    /// tensor must belong to a video-only module.
    public static func load(url: URL, config configURL: URL? = nil, preset: Sam2Config = .hieraTiny) throws -> Sam2 {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw Sam2Error.missingFile(path: url.path) }
        var config = preset
        let weights: URL
        if isDir.boolValue {
            config = try readConfig(configURL ?? url.appendingPathComponent("config.json"))
            weights = url.appendingPathComponent("model.safetensors")
            guard FileManager.default.fileExists(atPath: weights.path) else { throw Sam2Error.missingFile(path: weights.path) }
        } else {
            weights = url
            if let configURL { config = try readConfig(configURL) }
        }
        let sd: StateDict
        do { sd = try StateDict(contentsOf: weights) } catch { throw Sam2Error.checkpoint(error) }
        return try build(stateDict: sd, config: config, path: weights.path)
    }

    static func readConfig(_ url: URL) throws(Sam2Error) -> Sam2Config {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw .missingFile(path: url.path) }
        return try Sam2Config(json: data, path: url.path)
    }

    /// Detects the layout (and a `model.` wrapper), builds, and checks nothing is left over.
    public static func build(stateDict sd: StateDict, config: Sam2Config, path: String = "checkpoint") throws -> Sam2 {
        let layout: (Sam2WeightNames, String)
        if sd.contains("vision_encoder.backbone.patch_embed.projection.weight") {
            layout = (.transformers, "")
        } else if let strip = ["", "model.", "module.", "model.module."].first(where: {
            sd.contains($0 + "image_encoder.trunk.patch_embed.proj.weight")
        }) {
            layout = (.original, strip)
        } else {
            throw Sam2Error.unknownLayout(path: path, sample: Array(sd.names.prefix(5)))
        }
        let (names, strip) = layout
        let vb: WeightLoader
        do { vb = try WeightLoader(sd, stripPrefix: strip.isEmpty ? nil : strip) } catch { throw Sam2Error.checkpoint(error) }
        let model: Sam2
        do { model = try Sam2(vb, config: config, names: names) } catch let e as CheckpointError { throw Sam2Error.checkpoint(e) }
        let prefixes = videoOnlyPrefixes[names] ?? []
        for n in vb.unusedTensors where prefixes.contains(where: { n.hasPrefix($0) }) { _ = vb.skip(n) }
        do { try vb.finish() } catch { throw Sam2Error.checkpoint(error) }
        return model
    }
}
