import Foundation

/// Namespace for the PNG codec. Decoding reproduces PIL's
/// `Image.open(f).convert("RGB")` — the preprocessing every upstream SAM script
/// uses — so embeddings computed here see the same bytes as the reference.
/// For input whose format is not known to be PNG, use `ImageDecoder` (PNG, JPEG, WebP).
public enum PNG {
    /// Default pixel-count limit: 64 Mi pixels (8192 × 8192). SAM resizes every
    /// input to a 1024-pixel long side, so bigger inputs buy nothing, while one
    /// such RGB8 result already costs 192 MiB, plus up to 512 MiB of raw rows
    /// while decoding an RGBA16 file. A few hundred bytes of PNG can declare 100000 × 100000;
    /// the limit is checked against the IHDR before any image-sized allocation.
    public static let defaultMaxPixels = 64 * 1024 * 1024

    /// The eight bytes every PNG starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public struct DecodeOptions: Sendable, Equatable {
        /// Reject images whose width × height exceeds this (decompression-bomb guard).
        public var maxPixels: Int

        public init(maxPixels: Int = PNG.defaultMaxPixels) {
            self.maxPixels = maxPixels
        }
    }

    /// IHDR facts, for logging and for callers that want to pre-check a size.
    public struct Header: Sendable, Equatable {
        public let width: Int
        public let height: Int
        public let bitDepth: Int
        /// PNG colour type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
        public let colorType: Int
        public let interlaced: Bool
    }
}

extension PNG {
    /// Decodes a PNG held in memory to 8-bit RGB with PIL `convert("RGB")` semantics:
    /// - alpha (gray+alpha, RGBA, palette tRNS, colour-key tRNS) is dropped, not composited;
    /// - 16-bit RGB / RGBA / gray+alpha keep the high byte of each sample (`v >> 8`);
    /// - 16-bit gray is clamped, `min(v, 255)` — PIL opens it as mode `I;16` and its
    ///   I;16 → L conversion saturates, so most 16-bit gray photos come out nearly white.
    ///   That is what the reference pipeline sees, so it is what we produce;
    /// - 1/2/4-bit gray is scaled by bit replication (×255, ×85, ×17); gray is replicated to R=G=B;
    /// - palette indices expand through PLTE (indices past its end give black);
    /// - gAMA / sRGB / iCCP / cHRM are ignored (no gamma conversion), as in PIL.
    public static func decodeRGB(_ data: Data, options: DecodeOptions = DecodeOptions()) throws(ImagingError) -> RGBImage {
        let result: Result<RGBImage, ImagingError> = data.withUnsafeBytes { raw in
            Result { () throws(ImagingError) -> RGBImage in
                try decodeRGB(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count), options: options)
            }
        }
        return try result.get()
    }

    /// `decodeRGB(_:options:)` for a byte array.
    public static func decodeRGB(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws(ImagingError) -> RGBImage {
        let result: Result<RGBImage, ImagingError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ImagingError) -> RGBImage in try decodeRGB(buffer, options: options) }
        }
        return try result.get()
    }

    /// Reads and decodes a PNG file (see `decodeRGB(_:options:)` for semantics).
    public static func decodeRGB(contentsOfFile path: String, options: DecodeOptions = DecodeOptions()) throws(ImagingError) -> RGBImage {
        try decodeRGB(try ImageDecoder.readFile(path), options: options)
    }

    /// Reads only the header (signature and chunks before the first IDAT).
    public static func readHeader(_ bytes: [UInt8]) throws(ImagingError) -> Header {
        let result: Result<Header, ImagingError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ImagingError) -> Header in
                try checkSignature(buffer)
                let reader = try PNGReader(buffer)
                return try reader.readHeader()
            }
        }
        return try result.get()
    }

    static func checkSignature(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) {
        guard bytes.count > 0 else { throw .emptyInput }
        guard bytes.count >= 8, bytes.prefix(8).elementsEqual(signature) else {
            throw .notPNG(prefix: Array(bytes.prefix(8)))
        }
    }

    static func decodeRGB(_ bytes: UnsafeBufferPointer<UInt8>, options: DecodeOptions) throws(ImagingError) -> RGBImage {
        try checkSignature(bytes)
        let reader = try PNGReader(bytes)
        let header = try reader.readHeader()
        // Bomb guard: before prepare() (libpng's row buffers) and before our image buffer.
        let (pixelCount, overflow) = header.width.multipliedReportingOverflow(by: header.height)
        guard !overflow, pixelCount <= options.maxPixels else {
            throw .tooManyPixels(width: header.width, height: header.height, limit: options.maxPixels)
        }
        let layout = try reader.prepare()
        let (rawCount, rawOverflow) = layout.rowBytes.multipliedReportingOverflow(by: header.height)
        guard !rawOverflow, layout.rowBytes >= header.width * layout.channels * (layout.bitDepth / 8) else {
            throw .invalidDimensions(width: header.width, height: header.height)
        }
        var raw = [UInt8](repeating: 0, count: rawCount)
        try raw.withUnsafeMutableBufferPointer { (buffer) throws(ImagingError) in try reader.readPixels(into: buffer) }
        let rgb = convertToRGB(raw, header: header, layout: layout)
        return RGBImage(uncheckedWidth: header.width, height: header.height, pixels: rgb)
    }

    /// Raw libpng rows → RGB8 following PIL's mode conversions (see decodeRGB).
    static func convertToRGB(_ raw: [UInt8], header: Header, layout: PNGReader.Layout) -> [UInt8] {
        let width = header.width, height = header.height, channels = layout.channels
        let bytesPerSample = layout.bitDepth / 8
        // PIL opens 16-bit gray as I;16 and saturates it to 8 bits; all other 16-bit
        // modes unpack with the ";16B" raw modes, which keep the high byte.
        let clampGray16 = header.colorType == 0 && layout.bitDepth == 16
        var out = [UInt8](repeating: 0, count: width * height * 3)
        raw.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let rowStart = y * layout.rowBytes
                    for x in 0..<width {
                        let p = rowStart + x * channels * bytesPerSample
                        let o = (y * width + x) * 3
                        if channels <= 2 {
                            let g: UInt8
                            if bytesPerSample == 1 {
                                g = src[p]
                            } else if clampGray16 {
                                let v = UInt16(src[p]) << 8 | UInt16(src[p + 1])
                                g = UInt8(min(v, 255))
                            } else {
                                g = src[p]
                            }
                            dst[o] = g; dst[o + 1] = g; dst[o + 2] = g
                        } else {
                            // High byte of each big-endian 16-bit sample is at offset 0.
                            dst[o] = src[p]
                            dst[o + 1] = src[p + bytesPerSample]
                            dst[o + 2] = src[p + 2 * bytesPerSample]
                        }
                    }
                }
            }
        }
        return out
    }
}
