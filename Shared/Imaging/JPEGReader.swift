import CJPEGSupport

/// Owns one `segflow_jpeg_reader` (the C shim around libjpeg-turbo's decompressor).
/// The only Swift code that touches libjpeg state; the borrowed input buffer must
/// outlive the reader, which callers guarantee by scoping both in one
/// `withUnsafeBufferPointer`.
final class JPEGReader {
    struct Header {
        let width: Int
        let height: Int
        let components: Int
        let progressive: Bool
    }

    private let handle: OpaquePointer
    private let inputCount: Int
    private var header = segflow_jpeg_header()

    init(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw .emptyInput }
        guard let handle = segflow_jpeg_reader_create(base, bytes.count) else { throw .outOfMemory }
        self.handle = handle
        self.inputCount = bytes.count
    }

    deinit {
        segflow_jpeg_reader_destroy(handle)
    }

    private func failure() -> ImagingError {
        let message = String(cString: segflow_jpeg_reader_message(handle))
        if segflow_jpeg_reader_truncated(handle) != 0 {
            return .truncatedImage(format: .jpeg, byteCount: inputCount, message: message)
        }
        // libjpeg-turbo here is built for 8-bit samples only; PIL refuses other precisions too.
        if message.contains("Unsupported JPEG data precision") {
            return .unsupportedImage(format: .jpeg, reason: message)
        }
        return .corruptImage(format: .jpeg, message: message)
    }

    /// Markers up to the first scan (SOF, tables, APPn); allocates nothing image-sized.
    func readHeader() throws(ImagingError) -> Header {
        guard segflow_jpeg_read_header(handle, &header) == 0 else { throw failure() }
        guard segflow_jpeg_output_channels(&header) != 0 else {
            // PIL maps 1/3/4 components to L/RGB/CMYK and refuses the rest the same way.
            throw .unsupportedImage(format: .jpeg, reason: "cannot handle \(header.components)-component images")
        }
        return Header(width: Int(header.width), height: Int(header.height),
                      components: Int(header.components), progressive: header.progressive != 0)
    }

    /// Output samples per pixel of `decode(into:)`: 1 (gray), 3 (RGB) or 4 (CMYK as stored).
    var outputChannels: Int { Int(segflow_jpeg_output_channels(&header)) }

    func decode(into buffer: UnsafeMutableBufferPointer<UInt8>) throws(ImagingError) {
        guard let base = buffer.baseAddress,
              segflow_jpeg_decode(handle, base, buffer.count) == 0 else { throw failure() }
    }
}

/// JPEG decoding with PIL's `Image.open(f).convert("RGB")` semantics.
enum JPEGCodec {
    static func header(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) -> ImageDecoder.Header {
        try PILJPEGMarkerCheck.check(bytes)
        let h = try JPEGReader(bytes).readHeader()
        return ImageDecoder.Header(format: .jpeg, width: h.width, height: h.height)
    }

    /// - 3 components: libjpeg's YCbCr (or Adobe RGB) → RGB with ISLOW IDCT and fancy upsampling;
    /// - grayscale: replicated to R = G = B (PIL's L → RGB);
    /// - 4 components: PIL opens these as CMYK with raw mode "CMYK;I" (it always assumes
    ///   Adobe's inverted polarity; libjpeg turns YCCK into CMYK first), then `convert("RGB")`
    ///   applies `cmyk2rgb` — see `cmykToRGB`;
    /// - EXIF orientation is ignored: PIL's `Image.open` does not rotate (only
    ///   `ImageOps.exif_transpose` does), so neither do we;
    /// - ICC profiles are ignored, as `convert("RGB")` ignores them;
    /// - files PIL's own marker walk refuses are refused (`PILJPEGMarkerCheck`).
    static func decodeRGB(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws(ImagingError) -> RGBImage {
        try PILJPEGMarkerCheck.check(bytes)
        let reader = try JPEGReader(bytes)
        let header = try reader.readHeader()
        // Bomb guard: before jpeg_start_decompress (which allocates the whole-image
        // coefficient buffer for progressive files) and before our pixel buffer.
        try ImageDecoder.checkPixelLimit(width: header.width, height: header.height, limit: maxPixels, format: .jpeg)
        let channels = reader.outputChannels
        let count = try checkedByteCount(width: header.width, height: header.height, channels: channels)
        var samples = [UInt8](repeating: 0, count: count)
        try samples.withUnsafeMutableBufferPointer { (buffer) throws(ImagingError) in try reader.decode(into: buffer) }
        let rgb: [UInt8]
        switch channels {
        case 3: rgb = samples
        case 1: rgb = grayToRGB(samples)
        default: rgb = cmykToRGB(samples)
        }
        return RGBImage(uncheckedWidth: header.width, height: header.height, pixels: rgb)
    }

    static func grayToRGB(_ gray: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: gray.count * 3)
        gray.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count {
                    let g = src[i]
                    dst[3 * i] = g; dst[3 * i + 1] = g; dst[3 * i + 2] = g
                }
            }
        }
        return out
    }

    /// Stored (Adobe-inverted) CMYK samples → RGB exactly as PIL: unpacking with
    /// "CMYK;I" gives c = 255 - stored, and libImaging/Convert.c `cmyk2rgb` computes
    /// `nk = 255 - k; out = clip8(nk - MULDIV255(c, nk))` with
    /// `MULDIV255(a, b) = (t = a*b + 128, ((t >> 8) + t) >> 8)`.
    static func cmykToRGB(_ stored: [UInt8]) -> [UInt8] {
        let pixels = stored.count / 4
        var out = [UInt8](repeating: 0, count: pixels * 3)
        stored.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for p in 0..<pixels {
                    let nk = Int(src[4 * p + 3]) // 255 - (255 - stored k)
                    for c in 0..<3 {
                        let value = 255 - Int(src[4 * p + c])
                        let t = value * nk + 128
                        let v = nk - (((t >> 8) + t) >> 8)
                        dst[3 * p + c] = UInt8(clamping: v)
                    }
                }
            }
        }
        return out
    }
}
