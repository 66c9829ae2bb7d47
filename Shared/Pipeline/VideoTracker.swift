import Imaging
import SAM
import Tensor

/// The legacy frame-by-frame rule: the first frame uses the user's prompt; every later
/// frame is prompted with the previous frame's best low-res mask logits (SAM's mask input)
/// plus the bounding box of the previous mask. It drifts (README, Video tracking: the
/// measured table); kept as the Kafka client's rule until the prompt-decoder runs
/// `ObjectTracker` (the Tracking library), and as the evaluation's baseline.
public enum VideoTracker {
    /// The prompt for the frame after one whose best mask is `mask` with low-res `logits`
    /// ([side, side]). Nil when the object was lost (empty mask): the caller decides.
    public static func nextPrompt(after mask: BinaryMask, logits: [Float], side: Int) -> SamPrompt? {
        guard mask.area > 0 else { return nil }
        let b = mask.boundingBox
        return SamPrompt(box: (Float(b.x), Float(b.y), Float(b.x + b.width - 1), Float(b.y + b.height - 1)),
                         maskInput: Tensor(shape: [1, 1, side, side], data: logits))
    }

    public struct Frame: Sendable {
        public var mask: BinaryMask
        public var predictedIoU: Float
        public var lowResLogits: [Float]
        public var prompt: SamPrompt
    }

    /// In-process tracking over `frames`; stops early (returning what it has) if the
    /// object is lost.
    public static func track(_ sam: Sam, frames: [RGBImage], initial: SamPrompt) throws -> [Frame] {
        var out: [Frame] = []
        var prompt = initial
        for image in frames {
            let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            let pred = try sam.predict(emb, prompt)
            let best = pred.bestMaskIndex
            let side = pred.lowResLogits.shape[1]
            let logits = Array(pred.lowResLogits.data[(best * side * side)..<((best + 1) * side * side)])
            let mask = try BinaryMask(width: image.width, height: image.height, values: pred.mask(best))
            out.append(Frame(mask: mask, predictedIoU: pred.iouPredictions[best], lowResLogits: logits, prompt: prompt))
            guard let next = nextPrompt(after: mask, logits: logits, side: side) else { break }
            prompt = next
        }
        return out
    }
}
