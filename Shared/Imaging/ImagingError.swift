/// Every failure in the Imaging module. Cases carry the offending values so a
/// service can put a precise, readable message into its error result.
public enum ImagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Zero bytes were given where an image was expected.
    case emptyInput
    /// The first bytes are not the PNG signature; carries up to 8 of them.
    case notPNG(prefix: [UInt8])
    /// The stream ended before the image data did.
    case truncated(byteCount: Int, message: String)
    /// libpng rejected the stream (bad CRC on a critical chunk, bad IHDR, zlib error, ...).
    case corrupt(message: String)
    /// The header (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X) declares more pixels than the
    /// decoder's limit (decompression-bomb guard); raised before any image-sized allocation.
    case tooManyPixels(width: Int, height: Int, limit: Int, format: ImageFormat = .png)
    /// The first bytes match none of the formats ImageDecoder reads; carries up to 12 of them
    /// (enough for RIFF and ISO-BMFF brands).
    case unsupportedFormat(prefix: [UInt8])
    /// A JPEG or WebP stream that ended before its image data did.
    case truncatedImage(format: ImageFormat, byteCount: Int, message: String)
    /// libjpeg / libwebp rejected a JPEG or WebP stream.
    case corruptImage(format: ImageFormat, message: String)
    /// A well-formed file using a feature the decoder (and PIL) does not read,
    /// e.g. a 2-component or 12-bit JPEG.
    case unsupportedImage(format: ImageFormat, reason: String)
    /// Width/height not positive, or a byte count that does not fit in memory.
    case invalidDimensions(width: Int, height: Int)
    /// A pixel or mask buffer whose length does not match width × height × channels.
    case bufferSizeMismatch(expected: Int, actual: Int)
    /// Two images/masks that must share a size do not.
    case sizeMismatch(expectedWidth: Int, expectedHeight: Int, width: Int, height: Int)
    /// libpng's simplified writer failed.
    case encodeFailed(message: String)
    /// A COCO RLE that is malformed (bad character, counts not summing to h×w, ...).
    case invalidRLE(reason: String)
    /// Reading or writing a file failed.
    case fileIO(path: String, reason: String)
    /// libpng / libjpeg / libwebp could not allocate their own structures.
    case outOfMemory
    /// A label (object id) outside 1…255 or beyond the palette of an indexed PNG.
    case invalidLabel(Int)
    /// An indexed PNG's palette must have 17…256 entries (8-bit indices).
    case invalidPalette(count: Int)

    public var description: String {
        switch self {
        case .emptyInput:
            return "image input is empty (0 bytes)"
        case .notPNG(let prefix):
            let hex = prefix.map { String($0, radix: 16, uppercase: false) }.joined(separator: " ")
            return "input is not a PNG (first bytes: \(hex.isEmpty ? "none" : hex))"
        case .truncated(let count, let message):
            return "PNG is truncated (\(count) bytes): \(message)"
        case .corrupt(let message):
            return "PNG is corrupt: \(message)"
        case .tooManyPixels(let w, let h, let limit, let format):
            let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
            return "\(format) declares \(w)x\(h) = \(overflow ? "more than \(Int.max)" : String(pixels)) pixels, above the limit of \(limit)"
        case .unsupportedFormat(let prefix):
            let hex = prefix.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
            let guess = ImageFormat.describeUnsupported(prefix).map { ": \($0)" } ?? ""
            return "unsupported image format (first bytes \(hex.isEmpty ? "none" : hex)\(guess)); PNG, JPEG and WebP are supported"
        case .truncatedImage(let format, let count, let message):
            return "truncated \(format) (\(count) bytes): \(message)"
        case .corruptImage(let format, let message):
            return "corrupt \(format): \(message)"
        case .unsupportedImage(let format, let reason):
            return "unsupported \(format): \(reason)"
        case .invalidDimensions(let w, let h):
            return "invalid image dimensions \(w)x\(h)"
        case .bufferSizeMismatch(let expected, let actual):
            return "pixel buffer has \(actual) bytes, expected \(expected)"
        case .sizeMismatch(let ew, let eh, let w, let h):
            return "size \(w)x\(h) does not match the expected \(ew)x\(eh)"
        case .encodeFailed(let message):
            return "PNG encoding failed: \(message)"
        case .invalidRLE(let reason):
            return "invalid COCO RLE: \(reason)"
        case .fileIO(let path, let reason):
            return "file I/O failed for \(path): \(reason)"
        case .outOfMemory:
            return "out of memory creating the image decoder"
        case .invalidLabel(let id):
            return "label \(id) does not fit an indexed PNG (object ids are 1…255, within the palette)"
        case .invalidPalette(let count):
            return "an indexed PNG palette needs 17…256 entries, got \(count)"
        }
    }
}
