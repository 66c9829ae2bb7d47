/// A binary segmentation mask, row-major, one byte per pixel holding 0 or 1.
/// Row-major matches the model output tensors; COCO RLE (column-major) is a
/// conversion, see `COCORLE`.
public struct BinaryMask: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height` values, each 0 or 1.
    public private(set) var bits: [UInt8]

    /// Any non-zero byte counts as foreground, so 0/255 masks work directly.
    public init(width: Int, height: Int, values: [UInt8]) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 1)
        guard values.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: values.count) }
        self.init(uncheckedWidth: width, height: height, bits: values.map { $0 != 0 ? 1 : 0 })
    }

    /// An empty (all background) mask.
    public init(width: Int, height: Int) throws(ImagingError) {
        let count = try checkedByteCount(width: width, height: height, channels: 1)
        self.init(uncheckedWidth: width, height: height, bits: [UInt8](repeating: 0, count: count))
    }

    /// Thresholds a gray image: foreground where `pixel > threshold`
    /// (default 0, so both 0/1 and 0/255 mask PNGs read back unchanged).
    public init(_ gray: GrayImage, threshold: UInt8 = 0) {
        self.init(uncheckedWidth: gray.width, height: gray.height, bits: gray.pixels.map { $0 > threshold ? 1 : 0 })
    }

    /// Reads a mask PNG (any colour type) decoded as `PNG.decodeRGB`; a pixel is
    /// foreground when it is not black. For gray mask PNGs (what `pngData()` and
    /// most tools write) that equals the usual `np.array(Image.open(f)) > 0`.
    public init(png bytes: [UInt8], options: PNG.DecodeOptions = PNG.DecodeOptions()) throws(ImagingError) {
        let rgb = try PNG.decodeRGB(bytes, options: options)
        var bits = [UInt8](repeating: 0, count: rgb.width * rgb.height)
        for p in bits.indices where rgb.pixels[p * 3] | rgb.pixels[p * 3 + 1] | rgb.pixels[p * 3 + 2] != 0 {
            bits[p] = 1
        }
        self.init(uncheckedWidth: rgb.width, height: rgb.height, bits: bits)
    }

    /// Thresholds logits (e.g. SAM's mask output, foreground where logit > 0).
    public init(width: Int, height: Int, logits: [Float], threshold: Float = 0) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 1)
        guard logits.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: logits.count) }
        self.init(uncheckedWidth: width, height: height, bits: logits.map { $0 > threshold ? 1 : 0 })
    }

    init(uncheckedWidth width: Int, height: Int, bits: [UInt8]) {
        self.width = width
        self.height = height
        self.bits = bits
    }

    public subscript(x: Int, y: Int) -> Bool {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            return bits[y * width + x] != 0
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            bits[y * width + x] = newValue ? 1 : 0
        }
    }

    /// Number of foreground pixels (pycocotools `area`).
    public var area: Int {
        bits.reduce(0) { $0 + Int($1) }
    }

    /// Tight box around the foreground as (x, y, width, height), pycocotools
    /// `toBbox` convention; all zeros for an empty mask.
    public var boundingBox: BoundingBox {
        var minX = width, minY = height, maxX = -1, maxY = -1
        for y in 0..<height {
            let row = y * width
            for x in 0..<width where bits[row + x] != 0 {
                if x < minX { minX = x }
                if x > maxX { maxX = x }
                if y < minY { minY = y }
                if y > maxY { maxY = y }
            }
        }
        guard maxX >= 0 else { return BoundingBox(x: 0, y: 0, width: 0, height: 0) }
        return BoundingBox(x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1)
    }

    /// The mask as an 8-bit gray image, foreground → `foreground`, background → 0.
    public func grayImage(foreground: UInt8 = 255) -> GrayImage {
        GrayImage(uncheckedWidth: width, height: height, pixels: bits.map { $0 != 0 ? foreground : 0 })
    }

    /// PNG bytes of the mask as 0/255 gray — what a person (or PIL) opens directly.
    public func pngData() throws(ImagingError) -> [UInt8] {
        try PNG.encode(grayImage())
    }
}

/// Axis-aligned box in pixels, XYWH like COCO / pycocotools `toBbox`.
public struct BoundingBox: Sendable, Equatable, CustomStringConvertible {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }

    public var description: String { "[\(x), \(y), \(width), \(height)]" }
}

extension BinaryMask {
    /// Foreground wherever any of `masks` is (an empty mask of the given size if none).
    public static func union(_ masks: [BinaryMask], width: Int, height: Int) throws(ImagingError) -> BinaryMask {
        var bits = [UInt8](repeating: 0, count: try checkedByteCount(width: width, height: height, channels: 1))
        for m in masks {
            guard m.width == width, m.height == height else {
                throw .bufferSizeMismatch(expected: bits.count, actual: m.bits.count)
            }
            for i in bits.indices where m.bits[i] != 0 { bits[i] = 1 }
        }
        return BinaryMask(uncheckedWidth: width, height: height, bits: bits)
    }
}
