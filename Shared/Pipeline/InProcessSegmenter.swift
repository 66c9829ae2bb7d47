import Foundation
import Imaging
import SAM
import Tensor

/// Runs a segmentation request in this process: decode image, embed once, decode prompts.
/// The Kafka path (image-encoder + prompt-decoder services) produces the same result type.
public enum InProcessSegmenter {
    /// Embeds `image` (unless `embedding` is given, e.g. one saved by `segflow embed`) and
    /// decodes `prompts`; returns the result and the raw predictions (for --save-logits).
    public static func segment(model sam: Sam, image: RGBImage, prompts: [SamPrompt], embedding: ImageEmbedding? = nil,
                               loadMs: Double = 0) throws -> (result: SegmentationResult, predictions: [SamPrediction]) {
        let t0 = Timing.nowMs()
        let emb = try embedding ?? sam.embed(rgb: image.pixels, width: image.width, height: image.height)
        let t1 = Timing.nowMs()
        let preds = try sam.predict(emb, prompts)
        let t2 = Timing.nowMs()
        let result = try SegmentationResult(model: sam.kind, width: image.width, height: image.height, prompts: prompts,
                                            predictions: preds,
                                            timingsMs: ["load": loadMs, "encode": t1 - t0, "decode": t2 - t1])
        return (result, preds)
    }

    /// Reads a mask-input file: SAM's low-res logits (side×side) as written by
    /// `segflow segment --save-logits` — a float32 `.npy` of shape [1, side, side] (or
    /// [side, side]), or raw little-endian float32.
    public static func readLogits(path: String, side: Int) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError.unreadableFile(path: path, reason: "no such file")
        }
        let bytes = [UInt8](data)
        let values: [Float]
        if bytes.starts(with: NPY.magic) {
            let t: Tensor
            do { t = try NPY.decode(bytes) } catch { throw PipelineError.badArgument("mask input \(path): \(error)") }
            guard t.count == side * side, t.shape.last == side else {
                throw PipelineError.badArgument("mask input \(path) has shape \(t.shape); expected [1, \(side), \(side)]")
            }
            values = t.data
        } else {
            guard data.count == side * side * 4 else {
                throw PipelineError.badArgument("mask input \(path) has \(data.count) bytes; expected a .npy or \(side)x\(side) raw float32 = \(side * side * 4)")
            }
            values = LittleEndian.floats(f32: bytes, count: side * side)
        }
        guard values.allSatisfy(\.isFinite) else { throw PipelineError.badArgument("mask input \(path) contains NaN or infinity") }
        return Tensor(shape: [1, 1, side, side], data: values)
    }

    /// `--save-logits`: the raw model output as a float32 `.npy` (SAM: the best mask's
    /// low-res logits [1, 256, 256]; SegGPT/Painter: the query half [3, h, w]).
    public static func writeLogits(_ t: Tensor, path: String) throws { try NPY.write(t, path: path) }

    /// Writes `--out`, `--overlay` and `--json` outputs.
    public static func write(_ result: SegmentationResult, image: RGBImage, out: String?, overlay: String?, json: String?) throws {
        if let out { try PNG.write(try result.unionMask(), toFile: out) }
        if let overlay { try PNG.write(try Overlay.render(image, masks: try result.bestMasks()), toFile: overlay) }
        if let json { try result.jsonData().write(to: URL(fileURLWithPath: json)) }
    }
}
