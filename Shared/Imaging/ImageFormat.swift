/// The encoded image formats `ImageDecoder` reads. Detected from the first bytes
/// (magic numbers), never from a file name or a declared content type.
public enum ImageFormat: String, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    case png
    case jpeg
    case webp

    public var description: String {
        switch self {
        case .png: "PNG"
        case .jpeg: "JPEG"
        case .webp: "WebP"
        }
    }

    /// The format whose complete magic number starts `bytes`, or nil.
    /// - PNG: the 8-byte signature `89 50 4E 47 0D 0A 1A 0A`;
    /// - JPEG: `FF D8 FF` (SOI followed by a marker), the test PIL's JPEG plugin uses;
    /// - WebP: `RIFF` <size> `WEBP`.
    public static func detect(_ bytes: [UInt8]) -> ImageFormat? {
        bytes.withUnsafeBufferPointer { buffer in
            if case .complete(let format) = sniff(buffer) { return format }
            return nil
        }
    }

    enum Sniffed: Equatable {
        /// The whole magic number is present.
        case complete(ImageFormat)
        /// The input is shorter than the magic number and is a prefix of it: a truncated file.
        case partial(ImageFormat)
        case unknown
    }

    static let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF]
    static let riff: [UInt8] = Array("RIFF".utf8)
    static let webpTag: [UInt8] = Array("WEBP".utf8)

    static func sniff(_ bytes: UnsafeBufferPointer<UInt8>) -> Sniffed {
        func matches(_ magic: [UInt8], at offset: Int = 0) -> (all: Bool, prefix: Bool) {
            let available = max(0, min(bytes.count - offset, magic.count))
            let prefixOK = (0..<available).allSatisfy { bytes[offset + $0] == magic[$0] }
            return (prefixOK && available == magic.count, prefixOK)
        }
        for (format, magic) in [(ImageFormat.png, PNG.signature), (.jpeg, jpegMagic)] {
            let m = matches(magic)
            if m.all { return .complete(format) }
            if m.prefix && bytes.count < magic.count { return .partial(format) }
        }
        let r = matches(riff), w = matches(webpTag, at: 8)
        if r.all && w.all { return .complete(.webp) }
        if r.prefix && w.prefix && bytes.count < 12 { return .partial(.webp) }
        return .unknown
    }

    /// Names well-known formats Segflow does not read, for error messages.
    static func describeUnsupported(_ prefix: [UInt8]) -> String? {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            prefix.count >= offset + magic.count && Array(prefix[offset..<(offset + magic.count)]) == magic
        }
        let ascii = { (s: String) in Array(s.utf8) }
        if starts(ascii("GIF8")) { return "GIF" }
        if starts(ascii("BM")) { return "BMP" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if starts([0x00, 0x00, 0x01, 0x00]) { return "ICO" }
        if starts(ascii("ftyp"), at: 4) {
            if starts(ascii("avif"), at: 8) || starts(ascii("avis"), at: 8) { return "AVIF" }
            if starts(ascii("hei"), at: 8) || starts(ascii("mif1"), at: 8) { return "HEIF" }
            return "ISO media (ftyp)"
        }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || starts([0xFF, 0x4F, 0xFF, 0x51]) { return "JPEG 2000" }
        if starts([0xFF, 0x0A]) || starts([0x00, 0x00, 0x00, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) { return "JPEG XL" }
        if starts(ascii("qoif")) { return "QOI" }
        if starts(ascii("8BPS")) { return "Photoshop PSD" }
        if starts(ascii("%PDF")) { return "PDF" }
        if starts([0x1F, 0x8B]) { return "gzip" }
        if starts(ascii("PK")) { return "zip" }
        if starts(ascii("RIFF")) { return "RIFF container that is not WebP" }
        if starts(ascii("<")) { return "text/markup, not an image" }
        return nil
    }
}
