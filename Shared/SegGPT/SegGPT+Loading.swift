import Checkpoint
import Foundation

extension SegGPT {
    /// Loads SegGPT or Painter from
    /// - a Hugging Face model directory: `config.json` (transformers `SegGptConfig`) +
    ///   `model.safetensors`, and `preprocessor_config.json` if present (mean / std / size /
    ///   resample honoured);
    /// - a single `.safetensors` file (transformers or original names);
    /// - an original `.pth` (`torch.save({"model": state_dict, ...})`, original names):
    ///   `seggpt_vit_large.pth`, `painter_vit_large.pth`.
    ///
    /// Geometry: `config` (a `SegGptConfig` JSON) if given, else the directory's
    /// `config.json`, else the official ViT-L (`SegGptConfig.vitLarge`). The layout and the
    /// kind (SegGPT / Painter) are detected from the tensor names; `kind` must agree if given.
    public static func load(url: URL, config configURL: URL? = nil, kind: Kind? = nil) throws(SegGPTError) -> SegGPT {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { throw .missingFile(path: url.path) }
        var config = SegGptConfig.vitLarge
        var processor: SegGPTProcessor?
        let weights: URL
        if isDir.boolValue {
            let cfg = configURL ?? url.appendingPathComponent("config.json")
            config = try readConfig(cfg)
            weights = url.appendingPathComponent("model.safetensors")
            guard FileManager.default.fileExists(atPath: weights.path) else { throw .missingFile(path: weights.path) }
            let pre = url.appendingPathComponent("preprocessor_config.json")
            if FileManager.default.fileExists(atPath: pre.path) {
                processor = try SegGPTProcessor(preprocessorConfig: try readData(pre), path: pre.path, config: config)
            }
        } else {
            weights = url
            if let configURL { config = try readConfig(configURL) }
        }
        let sd: StateDict
        do { sd = try StateDict(contentsOf: weights) } catch { throw .checkpoint(error) }
        return try SegGPT(stateDict: sd, config: config, kind: kind, processor: processor)
    }

    static func readData(_ url: URL) throws(SegGPTError) -> Data {
        do { return try Data(contentsOf: url) } catch { throw .missingFile(path: url.path) }
    }

    static func readConfig(_ url: URL) throws(SegGPTError) -> SegGptConfig {
        try SegGptConfig(json: try readData(url), path: url.path)
    }
}

extension SegGPTProcessor {
    /// Reads transformers' `preprocessor_config.json` (`SegGptImageProcessor`): `image_mean`,
    /// `image_std`, `size` {height, width} (must be the model's half canvas), `resample`
    /// (0 nearest, 2 bilinear, 3 bicubic), `do_normalize` / `do_rescale` / `do_resize`
    /// must not be false and `rescale_factor` must be 1/255 (the only path implemented).
    public init(preprocessorConfig data: Data, path: String = "preprocessor_config.json",
                config: SegGptConfig) throws(SegGPTError) {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw .malformedConfig(path: path, reason: "not JSON (\(error))")
        }
        guard case .object(let d) = root else { throw .malformedConfig(path: path, reason: "not a JSON object") }
        self.init(size: config.halfImageSize)
        func bad(_ key: String, _ reason: String) -> SegGPTError {
            .badConfigValue(key: key, value: d[key].map { "\($0)" } ?? "nil", reason: reason)
        }
        func triple(_ key: String) throws(SegGPTError) -> [Float]? {
            guard let v = d[key], v != .null else { return nil }
            if case .number(let x) = v { return [Float](repeating: Float(x), count: 3) }
            guard case .array(let a) = v, a.count == 3 else { throw bad(key, "expected three numbers") }
            var out: [Float] = []
            for e in a {
                guard case .number(let x) = e else { throw bad(key, "expected three numbers") }
                out.append(Float(x))
            }
            return out
        }
        if let m = try triple("image_mean") { imageMean = m }
        if let s = try triple("image_std") {
            guard s.allSatisfy({ $0 > 0 }) else { throw bad("image_std", "must be positive") }
            imageStd = s
        }
        for key in ["do_normalize", "do_rescale", "do_resize"] {
            if let v = d[key], v != .null {
                guard case .bool(let b) = v else { throw bad(key, "expected true or false") }
                guard b else { throw bad(key, "only true is supported") }
            }
        }
        if let v = d["rescale_factor"], v != .null {
            guard case .number(let x) = v, abs(x * 255 - 1) < 1e-9 else { throw bad("rescale_factor", "only 1/255 is supported") }
        }
        if let v = d["resample"], v != .null {
            switch v.int {
            case 0: resample = .nearest
            case 2: resample = .bilinear
            case 3: resample = .bicubic
            default: throw bad("resample", "expected 0 (nearest), 2 (bilinear) or 3 (bicubic)")
            }
        }
        if let v = d["size"], v != .null {
            guard case .object(let s) = v, let h = s["height"]?.int, let w = s["width"]?.int else {
                throw bad("size", "expected {\"height\": h, \"width\": w}")
            }
            guard (h, w) == config.halfImageSize else {
                throw bad("size", "must be half the model's canvas \(config.imageSize.h)x\(config.imageSize.w), i.e. \(config.halfImageSize.h)x\(config.halfImageSize.w)")
            }
        }
    }
}
