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

    /// Reads a mask-input file: raw little-endian float32 low-res logits (side×side), as
    /// written by `segflow segment --save-logits`.
    public static func readLogits(path: String, side: Int) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError.unreadableFile(path: path, reason: "no such file")
        }
        guard data.count == side * side * 4 else {
            throw PipelineError.badArgument("mask input \(path) has \(data.count) bytes; expected \(side)x\(side) float32 = \(side * side * 4)")
        }
        var values = [Float](repeating: 0, count: side * side)
        values.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }
        guard values.allSatisfy(\.isFinite) else { throw PipelineError.badArgument("mask input \(path) contains NaN or infinity") }
        return Tensor(shape: [1, 1, side, side], data: values)
    }

    public static func writeLogits(_ t: Tensor, path: String) throws {
        try t.data.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }

    /// Writes `--out`, `--overlay` and `--json` outputs.
    public static func write(_ result: SegmentationResult, image: RGBImage, out: String?, overlay: String?, json: String?) throws {
        if let out { try PNG.write(try result.unionMask(), toFile: out) }
        if let overlay { try PNG.write(try Overlay.render(image, masks: try result.bestMasks()), toFile: overlay) }
        if let json { try result.jsonData().write(to: URL(fileURLWithPath: json)) }
    }
}
