/// Checks dimensions and returns width × height × channels, trapping nothing:
/// overflow and non-positive sizes become `ImagingError.invalidDimensions`.
@inline(__always)
func checkedByteCount(width: Int, height: Int, channels: Int) throws(ImagingError) -> Int {
    guard width > 0, height > 0 else { throw .invalidDimensions(width: width, height: height) }
    let (pixels, o1) = width.multipliedReportingOverflow(by: height)
    let (bytes, o2) = pixels.multipliedReportingOverflow(by: channels)
    guard !o1, !o2 else { throw .invalidDimensions(width: width, height: height) }
    return bytes
}

/// 8-bit RGB, row-major, interleaved `r g b r g b ...` — the layout SAM's
/// preprocessing expects (PIL `convert("RGB")` → numpy HWC uint8).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 3)
        guard pixels.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: pixels.count) }
        self.init(uncheckedWidth: width, height: height, pixels: pixels)
    }

    /// For callers that derived `pixels.count` from already-validated dimensions.
    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: (r: UInt8, g: UInt8, b: UInt8) = (0, 0, 0)) throws(ImagingError) {
        let count = try checkedByteCount(width: width, height: height, channels: 3)
        var pixels = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 3) {
            pixels[i] = fill.r; pixels[i + 1] = fill.g; pixels[i + 2] = fill.b
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Pixel at column `x`, row `y`; traps on out-of-range coordinates like an array.
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            let i = (y * width + x) * 3
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            let i = (y * width + x) * 3
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }

    /// Adds an opaque alpha channel (for writing overlays with transparency later).
    public func withAlpha(_ alpha: UInt8 = 255) -> RGBAImage {
        RGBAImage(uncheckedWidth: width, height: height,
                  pixels: repackRGB(pixels, count: width * height, from: 3, to: 4, fill: alpha))
    }
}

/// 8-bit RGBA, row-major, interleaved, straight (not premultiplied) alpha.
public struct RGBAImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 4` bytes.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 4)
        guard pixels.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: pixels.count) }
        self.init(uncheckedWidth: width, height: height, pixels: pixels)
    }

    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Drops alpha without compositing — PIL's `convert("RGB")` semantics.
    public var rgb: RGBImage {
        RGBImage(uncheckedWidth: width, height: height, pixels: repackRGB(pixels, count: width * height, from: 4, to: 3, fill: 0))
    }
}

/// 8-bit single-channel image, row-major (masks as 0/255, probability maps, ...).
public struct GrayImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height` bytes.
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 1)
        guard pixels.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: pixels.count) }
        self.init(uncheckedWidth: width, height: height, pixels: pixels)
    }

    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            return pixels[y * width + x]
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside \(width)x\(height)")
            pixels[y * width + x] = newValue
        }
    }
}

/// Copies the R, G, B bytes of `count` pixels from `from`-byte to `to`-byte pixels; any
/// further output channel (alpha) is `fill`.
func repackRGB(_ src: [UInt8], count: Int, from: Int, to: Int, fill: UInt8) -> [UInt8] {
    var out = [UInt8](repeating: fill, count: count * to)
    for p in 0..<count {
        out[p * to] = src[p * from]; out[p * to + 1] = src[p * from + 1]; out[p * to + 2] = src[p * from + 2]
    }
    return out
}
