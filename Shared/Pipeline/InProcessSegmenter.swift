import Foundation
import Imaging
import SAM
import Tensor

/// Command-line file helpers around a segmentation result: mask-input and logits files,
/// and the `--out` / `--overlay` / `--json` outputs (in-process runs go through
/// `SegmentationBackend.segment`, the same code the services run).
public enum InProcessSegmenter {
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
