import Foundation

/// One entry point for every input image: PNG, JPEG and WebP, told apart by their
/// magic bytes (`ImageFormat.detect`), decoded to 8-bit RGB exactly as PIL's
/// `Image.open(f).convert("RGB")` does — the preprocessing upstream SAM code runs.
///
/// - PNG: `PNG.decodeRGB` (its documentation lists the PIL rules).
/// - JPEG: libjpeg-turbo with Pillow's settings (ISLOW DCT, fancy upsampling);
///   gray replicated; CMYK/YCCK through PIL's Adobe-inverted `cmyk2rgb`; progressive
///   files work. EXIF orientation is NOT applied — PIL's `Image.open` does not apply
///   it either, so a phone photo tagged "rotate 90°" decodes in its stored
///   orientation (callers that want it upright must rotate themselves, as
///   `ImageOps.exif_transpose` would). A JPEG missing only its EOI marker decodes
///   when every scanline could be decoded without more data, as in PIL.
/// - WebP: lossy, lossless, alpha (dropped, not composited), animated (first frame).
///
/// The pixel limit is checked against the header before anything image-sized is
/// allocated, so a few hundred bytes declaring 60000 × 60000 fail at once.
public enum ImageDecoder {
    /// Same limit and reasoning as `PNG.defaultMaxPixels` (64 Mi pixels).
    public static let defaultMaxPixels = PNG.defaultMaxPixels

    /// The same options as PNG's: the decompression-bomb guard `maxPixels`.
    public typealias Options = PNG.DecodeOptions

    /// What the header declares, read without decoding pixels.
    public struct Header: Sendable, Equatable {
        public let format: ImageFormat
        public let width: Int
        public let height: Int

        public init(format: ImageFormat, width: Int, height: Int) {
            self.format = format
            self.width = width
            self.height = height
        }

        /// width × height, saturating at Int.max.
        public var pixelCount: Int {
            let (p, overflow) = width.multipliedReportingOverflow(by: height)
            return overflow ? .max : p
        }
    }

    /// Detects the format and reads its header (PNG: chunks up to the first IDAT;
    /// JPEG: markers up to the first scan; WebP: RIFF + VP8/VP8L/VP8X headers).
    /// Applies no pixel limit: callers compare `pixelCount` with their own limit, or let
    /// `decodeRGB` apply `Options.maxPixels` (it reads the same header first).
    public static func header(_ bytes: [UInt8]) throws(ImagingError) -> Header {
        try withBuffer(bytes) { (buffer) throws(ImagingError) in try header(buffer) }
    }

    public static func header(_ data: Data) throws(ImagingError) -> Header {
        try withBuffer(data) { (buffer) throws(ImagingError) in try header(buffer) }
    }

    /// Decodes a PNG, JPEG or WebP held in memory to RGB8 (see the type's documentation).
    public static func decodeRGB(_ bytes: [UInt8], options: Options = Options()) throws(ImagingError) -> RGBImage {
        try withBuffer(bytes) { (buffer) throws(ImagingError) in try decodeRGB(buffer, options: options) }
    }

    public static func decodeRGB(_ data: Data, options: Options = Options()) throws(ImagingError) -> RGBImage {
        try withBuffer(data) { (buffer) throws(ImagingError) in try decodeRGB(buffer, options: options) }
    }

    /// Reads and decodes an image file; the format comes from its content, not its name.
    public static func decodeRGB(contentsOfFile path: String, options: Options = Options()) throws(ImagingError) -> RGBImage {
        try decodeRGB(try readFile(path), options: options)
    }

    /// A file's bytes, or `fileIO` naming the path.
    static func readFile(_ path: String) throws(ImagingError) -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .fileIO(path: path, reason: String(describing: error))
        }
    }

    // MARK: - Internals

    static func format(of bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) -> ImageFormat {
        guard !bytes.isEmpty else { throw .emptyInput }
        switch ImageFormat.sniff(bytes) {
        case .complete(let format):
            return format
        case .partial(let format):
            let message = "data ends inside the \(format) signature"
            throw format == .png ? .truncated(byteCount: bytes.count, message: message)
                : .truncatedImage(format: format, byteCount: bytes.count, message: message)
        case .unknown:
            throw .unsupportedFormat(prefix: Array(bytes.prefix(12)))
        }
    }

    static func header(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) -> Header {
        switch try format(of: bytes) {
        case .png:
            let h = try PNGReader(bytes).readHeader()
            return Header(format: .png, width: h.width, height: h.height)
        case .jpeg:
            return try JPEGCodec.header(bytes)
        case .webp:
            return try WebPCodec.header(bytes)
        }
    }

    static func decodeRGB(_ bytes: UnsafeBufferPointer<UInt8>, options: Options) throws(ImagingError) -> RGBImage {
        switch try format(of: bytes) {
        case .png:
            return try PNG.decodeRGB(bytes, options: PNG.DecodeOptions(maxPixels: options.maxPixels))
        case .jpeg:
            return try JPEGCodec.decodeRGB(bytes, maxPixels: options.maxPixels)
        case .webp:
            return try WebPCodec.decodeRGB(bytes, maxPixels: options.maxPixels)
        }
    }

    /// The one pixel-limit rule for every format (PNG.decodeRGB applies the same test).
    static func checkPixelLimit(width: Int, height: Int, limit: Int, format: ImageFormat) throws(ImagingError) {
        let (pixelCount, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixelCount <= limit else {
            throw .tooManyPixels(width: width, height: height, limit: limit, format: format)
        }
    }

    private static func withBuffer<T>(_ bytes: [UInt8],
                                      _ body: (UnsafeBufferPointer<UInt8>) throws(ImagingError) -> T) throws(ImagingError) -> T {
        let result: Result<T, ImagingError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ImagingError) -> T in try body(buffer) }
        }
        return try result.get()
    }

    private static func withBuffer<T>(_ data: Data,
                                      _ body: (UnsafeBufferPointer<UInt8>) throws(ImagingError) -> T) throws(ImagingError) -> T {
        let result: Result<T, ImagingError> = data.withUnsafeBytes { raw in
            Result { () throws(ImagingError) -> T in
                try body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
            }
        }
        return try result.get()
    }
}
