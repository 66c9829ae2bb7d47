import CWebP

/// WebP decoding with PIL's `Image.open(f).convert("RGB")` semantics. The only
/// Swift code that touches libwebp; libwebp reports errors by return value, so
/// no C shim is needed.
///
/// PIL (WebPImagePlugin + _webp.c) decodes every WebP — lossy, lossless, with
/// alpha, animated — through libwebp's `WebPAnimDecoder` with default options
/// (MODE_RGBA, straight alpha, no threads) and shows the first frame on the canvas.
/// `convert("RGB")` then drops alpha without compositing, so the RGB under a
/// transparent pixel is whatever the file stores. We run the same decoder and keep
/// the same three bytes.
enum WebPCodec {
    struct Features {
        let width: Int
        let height: Int
        let hasAlpha: Bool
        let hasAnimation: Bool
        /// libwebp's format field: 0 mixed/undefined, 1 lossy, 2 lossless.
        let format: Int
    }

    /// Reads the RIFF header and the VP8 / VP8L / VP8X header; decodes nothing.
    /// For VP8X files (alpha, animation, metadata) the size is the canvas size.
    static func features(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) -> Features {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { throw .emptyInput }
        var f = WebPBitstreamFeatures()
        let status = WebPGetFeatures(base, bytes.count, &f)
        guard status == VP8_STATUS_OK else { throw error(status, byteCount: bytes.count, stage: "header") }
        return Features(width: Int(f.width), height: Int(f.height), hasAlpha: f.has_alpha != 0,
                        hasAnimation: f.has_animation != 0, format: Int(f.format))
    }

    static func header(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) -> ImageDecoder.Header {
        let f = try features(bytes)
        return ImageDecoder.Header(format: .webp, width: f.width, height: f.height)
    }

    static func decodeRGB(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws(ImagingError) -> RGBImage {
        let f = try features(bytes)
        // Bomb guard: before WebPAnimDecoderNew, which allocates the RGBA canvas.
        try ImageDecoder.checkPixelLimit(width: f.width, height: f.height, limit: maxPixels, format: .webp)
        let byteCount = try checkedByteCount(width: f.width, height: f.height, channels: 3)

        var data = WebPData(bytes: bytes.baseAddress, size: bytes.count)
        var options = WebPAnimDecoderOptions()
        guard WebPAnimDecoderOptionsInit(&options) != 0 else {
            throw .corruptImage(format: .webp, message: "libwebp demux ABI mismatch")
        }
        options.color_mode = MODE_RGBA
        options.use_threads = 0
        guard let decoder = WebPAnimDecoderNew(&data, &options) else { throw containerError(bytes) }
        defer { WebPAnimDecoderDelete(decoder) }

        var info = WebPAnimInfo()
        guard WebPAnimDecoderGetInfo(decoder, &info) != 0 else {
            throw .corruptImage(format: .webp, message: "cannot read the canvas information")
        }
        guard Int(info.canvas_width) == f.width, Int(info.canvas_height) == f.height else {
            throw .corruptImage(format: .webp, message: "canvas \(info.canvas_width)x\(info.canvas_height) does not match the header's \(f.width)x\(f.height)")
        }
        var canvas: UnsafeMutablePointer<UInt8>?
        var timestamp: Int32 = 0
        guard WebPAnimDecoderGetNext(decoder, &canvas, &timestamp) != 0, let canvas else {
            throw .corruptImage(format: .webp, message: "cannot decode the first frame's \(f.format == 2 ? "VP8L" : "VP8") bitstream")
        }
        var rgb = [UInt8](repeating: 0, count: byteCount)
        rgb.withUnsafeMutableBufferPointer { dst in
            for p in 0..<(f.width * f.height) {
                dst[3 * p] = canvas[4 * p]
                dst[3 * p + 1] = canvas[4 * p + 1]
                dst[3 * p + 2] = canvas[4 * p + 2]
            }
        }
        return RGBImage(uncheckedWidth: f.width, height: f.height, pixels: rgb)
    }

    /// Why WebPAnimDecoderNew refused the file: an incomplete RIFF structure is a
    /// truncated file; anything else is corrupt.
    private static func containerError(_ bytes: UnsafeBufferPointer<UInt8>) -> ImagingError {
        var data = WebPData(bytes: bytes.baseAddress, size: bytes.count)
        var state = WEBP_DEMUX_PARSING_HEADER
        let demux = WebPDemuxPartial(&data, &state)
        WebPDemuxDelete(demux)
        switch state {
        case WEBP_DEMUX_PARSE_ERROR:
            return .corruptImage(format: .webp, message: "invalid RIFF chunk structure")
        case WEBP_DEMUX_DONE:
            return .corruptImage(format: .webp, message: "the demuxer rejected the frame layout")
        default:
            return .truncatedImage(format: .webp, byteCount: bytes.count, message: "data ends inside a RIFF chunk")
        }
    }

    private static func error(_ status: VP8StatusCode, byteCount: Int, stage: String) -> ImagingError {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA:
            return .truncatedImage(format: .webp, byteCount: byteCount, message: "data ends inside the \(stage)")
        case VP8_STATUS_UNSUPPORTED_FEATURE:
            return .unsupportedImage(format: .webp, reason: "libwebp reports an unsupported feature in the \(stage)")
        case VP8_STATUS_OUT_OF_MEMORY:
            return .outOfMemory
        default:
            return .corruptImage(format: .webp, message: "invalid \(stage) (libwebp status \(status.rawValue))")
        }
    }
}
