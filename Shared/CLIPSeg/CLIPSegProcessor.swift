import Foundation
import Imaging
import NN
import Tensor

/// Image pre- and post-processing for CLIPSeg.
///
/// Preprocessing is CIDAS/clipseg-rd64-refined's `preprocessor_config.json`: a
/// ViTImageProcessor with size 352×352 (aspect ratio not kept), resample 2 = PIL BILINEAR,
/// rescale 1/255, normalise with the *ImageNet* mean/std (not CLIP's). The resize is
/// Pillow's fixed-point BILINEAR on the uint8 photo (`PILResample.bilinear`), bit-exact with
/// transformers' `ViTImageProcessorPil` (and the slow processor of transformers 4.x).
/// transformers 5's default torchvision backend resizes the uint8 tensor with ATen's
/// antialiased kernel instead, which lands one uint8 level away at many pixels (measured on
/// the test photo: 73% of values, max 0.0175 after normalisation) — a backend artefact, not
/// a different contract.
///
/// Postprocessing (Segflow's convention; transformers has none for CLIPSeg): bilinear
/// resize of the logits to the original size (`align_corners=False`, no antialias, like
/// `F.interpolate`), sigmoid, threshold `defaultThreshold` = 0.4 — the value the CLIPSeg
/// authors' demos and most downstream users binarise at. Resizing logits rather than
/// probabilities keeps edges sharp, as SAM does.
/// ref: transformers/models/vit/image_processing_pil_vit.py (ViTImageProcessorPil),
///      huggingface.co/CIDAS/clipseg-rd64-refined/blob/main/preprocessor_config.json
public enum CLIPSegProcessor {
    public static let imageMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageStd: [Float] = [0.229, 0.224, 0.225]
    public static let defaultThreshold: Float = 0.4

    /// `[1, 3, size, size]` pixel values.
    public static func preprocess(_ image: RGBImage, size: Int) -> Tensor {
        precondition(size > 0, "size must be positive")
        let resized = PILResample.bilinear(image.pixels, width: image.width, height: image.height, channels: 3,
                                           toWidth: size, toHeight: size)
        var data = [Float](repeating: 0, count: 3 * size * size)
        for c in 0..<3 {
            let mean = imageMean[c], std = imageStd[c]
            for i in 0..<(size * size) {
                // rescale, then normalise, in float32 — the same two roundings as upstream.
                let rescaled = Float(resized[i * 3 + c]) / 255
                data[c * size * size + i] = (rescaled - mean) / std
            }
        }
        return Tensor(shape: [1, 3, size, size], data: data)
    }

    /// Foreground probabilities `[H0, W0]` for one logit map `[H, W]` (or `[1, H, W]`).
    public static func probabilities(logits: Tensor, originalHeight: Int, originalWidth: Int) -> Tensor {
        precondition(logits.rank == 2 || (logits.rank == 3 && logits.shape[0] == 1), "one logit map expected, got \(logits.shape)")
        let (h, w) = (logits.shape[logits.rank - 2], logits.shape[logits.rank - 1])
        let resized = Ops.interpolateBilinear(logits.reshaped([1, 1, h, w]), size: Size2(originalHeight, originalWidth))
        return Ops.sigmoid(resized).reshaped([originalHeight, originalWidth])
    }

    /// Foreground where probability > `threshold`.
    public static func mask(probabilities p: Tensor, threshold: Float = defaultThreshold) throws(ImagingError) -> BinaryMask {
        precondition(p.rank == 2, "probabilities must be [H, W], got \(p.shape)")
        return try BinaryMask(width: p.shape[1], height: p.shape[0], logits: p.data, threshold: threshold)
    }
}
