import Imaging
import Messaging

/// The one place a wire mask is encoded and decoded (RLE or PNG).
public enum WireMask {
    /// A binary mask as a wire `Mask` (COCO RLE unless PNG is asked for), with its box and area.
    public static func encode(_ mask: BinaryMask, format: OutputFormat, predictedIoU: Float, stabilityScore: Float,
                              lowResLogits: FloatTensor? = nil) throws -> MaskResult.Mask {
        let rle = COCORLE(mask: mask)
        let b = rle.boundingBox
        let encoding: MaskResult.Mask.Encoding = format == .png
            ? .png(try mask.pngData())
            : .rle(counts: rle.compressedCounts, height: UInt32(mask.height), width: UInt32(mask.width))
        return MaskResult.Mask(encoding: encoding, predictedIoU: predictedIoU, stabilityScore: stabilityScore,
                               bbox: .init(x: UInt32(b.x), y: UInt32(b.y), w: UInt32(b.width), h: UInt32(b.height)),
                               area: UInt64(rle.area), lowResLogits: lowResLogits)
    }

    /// The mask a wire `Mask` carries, whichever encoding.
    public static func decode(_ m: MaskResult.Mask) throws -> BinaryMask {
        switch m.encoding {
        case let .rle(counts, h, w): try COCORLE(height: Int(h), width: Int(w), compressedCounts: counts).decode()
        case let .png(bytes): try BinaryMask(png: bytes)
        }
    }

    /// COCO RLE of a wire mask (PNG masks are re-encoded).
    public static func rle(_ m: MaskResult.Mask) throws -> (height: Int, width: Int, counts: String) {
        switch m.encoding {
        case let .rle(counts, h, w): return (Int(h), Int(w), counts)
        case let .png(bytes):
            let mask = try BinaryMask(png: bytes)
            return (mask.height, mask.width, COCORLE(mask: mask).compressedCounts)
        }
    }
}
