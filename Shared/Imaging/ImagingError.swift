/// Every failure in the Imaging module. Cases carry the offending values so a
/// service can put a precise, readable message into its error result.
public enum ImagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Zero bytes were given where a PNG was expected.
    case emptyInput
    /// The first bytes are not the PNG signature; carries up to 8 of them.
    case notPNG(prefix: [UInt8])
    /// The stream ended before the image data did.
    case truncated(byteCount: Int, message: String)
    /// libpng rejected the stream (bad CRC on a critical chunk, bad IHDR, zlib error, ...).
    case corrupt(message: String)
    /// The IHDR declares more pixels than the decoder's limit (decompression-bomb guard).
    case tooManyPixels(width: Int, height: Int, limit: Int)
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
    /// libpng could not allocate its own structures.
    case outOfMemory

    public var description: String {
        switch self {
        case .emptyInput:
            return "PNG input is empty (0 bytes)"
        case .notPNG(let prefix):
            let hex = prefix.map { String($0, radix: 16, uppercase: false) }.joined(separator: " ")
            return "input is not a PNG (first bytes: \(hex.isEmpty ? "none" : hex))"
        case .truncated(let count, let message):
            return "PNG is truncated (\(count) bytes): \(message)"
        case .corrupt(let message):
            return "PNG is corrupt: \(message)"
        case .tooManyPixels(let w, let h, let limit):
            let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
            return "PNG declares \(w)x\(h) = \(overflow ? "more than \(Int.max)" : String(pixels)) pixels, above the limit of \(limit)"
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
            return "out of memory creating the PNG decoder"
        }
    }
}
