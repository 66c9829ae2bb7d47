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
        var next = 0
        try track(sam, initial: initial, next: { () -> RGBImage? in
            defer { next += 1 }
            return next < frames.count ? frames[next] : nil
        }, image: { $0 }, onFrame: { _, f in out.append(f) })
        return out
    }

    /// The streaming form: frames are pulled one at a time from `next` (nil at the end),
    /// so a video is never held in memory; `onFrame` gets each input with its result as
    /// soon as it is segmented (write outputs there). Stops after the last frame or after
    /// the frame where the object is lost. Returns the number of frames tracked.
    @discardableResult
    public static func track<Input>(_ sam: Sam, initial: SamPrompt, next: () throws -> Input?, image: (Input) -> RGBImage,
                                    onFrame: (Input, Frame) throws -> Void) throws -> Int {
        var prompt = initial
        var count = 0
        while let input = try next() {
            let rgb = image(input)
            let emb = try sam.embed(rgb: rgb.pixels, width: rgb.width, height: rgb.height)
            let pred = try sam.predict(emb, prompt)
            let best = pred.bestMaskIndex
            let side = pred.lowResLogits.shape[1]
            let logits = Array(pred.lowResLogits.data[(best * side * side)..<((best + 1) * side * side)])
            let mask = try BinaryMask(width: rgb.width, height: rgb.height, values: pred.mask(best))
            let frame = Frame(mask: mask, predictedIoU: pred.iouPredictions[best], lowResLogits: logits, prompt: prompt)
            count += 1
            try onFrame(input, frame)
            guard let nextPrompt = nextPrompt(after: mask, logits: logits, side: side) else { break }
            prompt = nextPrompt
        }
        return count
    }
}
