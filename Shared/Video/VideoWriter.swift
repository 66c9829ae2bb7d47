import CFFmpeg
import Foundation
import Imaging

/// Writes RGB frames to a video file, one at a time, through Debian's libavcodec and
/// libavformat. The container comes from the file name (`.mp4`, `.mkv`, `.avi`, `.mov`,
/// `.webm`, … — whatever libavformat muxes); the codec is H.264 through libx264 when this
/// libavcodec has it and the container takes it, else MPEG-4 Part 2 (WebM: VP9, else VP8).
/// Pixels go out as yuv420p, BT.601 limited range, tagged so. yuv420p needs even sizes: an
/// odd width or height is padded by one column/row repeating the last one
/// (`encodedWidth`/`encodedHeight` say what the file holds).
///
/// The file appears only on `finish()`: frames go to a hidden `.NAME.partial` file beside
/// it, renamed into place once the encoder is flushed and the trailer written (MP4/MOV
/// with the index at the front: `movflags=+faststart`). A writer
/// dropped without `finish()` (an error, a cancelled run) removes the partial file.
public final class VideoWriter {
    public enum Codec: String, Sendable, CaseIterable {
        /// H.264 (libx264) where possible, else MPEG-4 Part 2; VP9/VP8 for WebM.
        case automatic
        case h264, mpeg4, vp9, vp8
    }

    public struct Options: Sendable {
        /// Frames per second (a rational close to it is used, e.g. 29.97 → 30000/1001).
        public var frameRate: Double
        public var codec: Codec
        /// Encoder threads (small by default: the model shares the CPU).
        public var threads: Int
        /// Quality: libx264/libvpx CRF (lower is better; 0 is lossless for x264) or
        /// MPEG-4's fixed quantiser (2…31) derived from it.
        public var crf: Int
        /// libx264 preset (speed/size trade-off); ignored by the other encoders.
        public var preset: String

        public init(frameRate: Double = 25, codec: Codec = .automatic, threads: Int = 1, crf: Int = 20, preset: String = "veryfast") {
            self.frameRate = frameRate; self.codec = codec; self.threads = threads; self.crf = crf; self.preset = preset
        }
    }

    public let path: String
    public let width: Int, height: Int
    public let encodedWidth: Int, encodedHeight: Int
    /// libavcodec's name of the encoder in use ("libx264", "mpeg4", "libvpx-vp9", …).
    public let encoderName: String
    public private(set) var framesWritten = 0

    private let partialPath: String
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var sws: OpaquePointer?
    private var open = false
    private var headerWritten = false

    public init(path: String, width: Int, height: Int, options: Options = Options()) throws(VideoError) {
        _ = FFmpeg.configureLogging
        self.path = path
        self.width = width; self.height = height
        encodedWidth = width + (width & 1); encodedHeight = height + (height & 1)
        let url = URL(fileURLWithPath: path)
        partialPath = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial").path
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            encoderName = ""
            throw .writeFailed(path: path, reason: "frame size \(width)x\(height) is outside 1…16384")
        }
        guard options.frameRate.isFinite, options.frameRate > 0, options.frameRate <= 1000 else {
            encoderName = ""
            throw .writeFailed(path: path, reason: "frame rate \(options.frameRate) is outside (0, 1000]")
        }
        guard let oformat = av_guess_format(nil, path, nil) else {
            encoderName = ""
            throw .writeFailed(path: path, reason: "no container for this file name; use .mp4, .mkv, .mov, .avi or .webm")
        }
        var fmt: UnsafeMutablePointer<AVFormatContext>?
        // The muxer's url is the partial file: MP4's faststart pass reopens it by that name.
        var rc = avformat_alloc_output_context2(&fmt, oformat, nil, partialPath)
        guard rc >= 0, let fmt else { encoderName = ""; throw .writeFailed(path: path, reason: FFmpeg.message(rc)) }
        format = fmt
        guard let encoder = Self.chooseEncoder(options.codec, container: oformat) else {
            encoderName = ""
            let container = String(cString: oformat.pointee.name)
            throw .encoderUnavailable(path: path, reason: "no \(options.codec) encoder for the \(container) container in this libavcodec")
        }
        encoderName = String(cString: encoder.pointee.name)
        // All stored properties are set: from here on deinit releases what is open.
        guard let ctx = avcodec_alloc_context3(encoder) else { throw .writeFailed(path: path, reason: "out of memory") }
        codec = ctx
        let rate = av_d2q(options.frameRate, 100_000)
        ctx.pointee.width = Int32(encodedWidth)
        ctx.pointee.height = Int32(encodedHeight)
        ctx.pointee.time_base = AVRational(num: rate.den, den: rate.num)
        ctx.pointee.framerate = rate
        ctx.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        ctx.pointee.colorspace = AVCOL_SPC_SMPTE170M
        ctx.pointee.color_range = AVCOL_RANGE_MPEG
        ctx.pointee.thread_count = Int32(max(1, min(options.threads, 16)))
        if oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 { ctx.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER }
        var dict: OpaquePointer?
        defer { av_dict_free(&dict) }
        let crf = max(0, min(options.crf, 51))
        switch encoder.pointee.id {
        case AV_CODEC_ID_H264:
            av_dict_set(&dict, "preset", options.preset, 0)
            av_dict_set(&dict, "crf", String(crf), 0)
        case AV_CODEC_ID_VP8, AV_CODEC_ID_VP9:
            av_dict_set(&dict, "crf", String(min(crf + 10, 63)), 0)  // libvpx's scale is 0…63
            ctx.pointee.bit_rate = 0
            av_dict_set(&dict, "deadline", "realtime", 0)
            av_dict_set(&dict, "cpu-used", "8", 0)
        default:
            // MPEG-4 Part 2: a fixed quantiser, q = CRF / 7 + 1 in 2…31 (CRF 20 → q 3, good).
            ctx.pointee.flags |= AV_CODEC_FLAG_QSCALE
            ctx.pointee.global_quality = Int32(FF_QP2LAMBDA) * Int32(max(2, min(31, crf / 7 + 1)))
        }
        rc = avcodec_open2(ctx, encoder, &dict)
        guard rc >= 0 else { throw .encoderUnavailable(path: path, reason: "\(encoderName): \(FFmpeg.message(rc))") }
        guard let st = avformat_new_stream(fmt, nil) else { throw .writeFailed(path: path, reason: "out of memory") }
        stream = st
        st.pointee.time_base = ctx.pointee.time_base
        st.pointee.avg_frame_rate = rate
        rc = avcodec_parameters_from_context(st.pointee.codecpar, ctx)
        guard rc >= 0 else { throw .writeFailed(path: path, reason: FFmpeg.message(rc)) }

        guard let f = av_frame_alloc(), let p = av_packet_alloc() else { throw .writeFailed(path: path, reason: "out of memory") }
        frame = f; packet = p
        f.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        f.pointee.width = Int32(encodedWidth)
        f.pointee.height = Int32(encodedHeight)
        f.pointee.colorspace = AVCOL_SPC_SMPTE170M
        f.pointee.color_range = AVCOL_RANGE_MPEG
        rc = av_frame_get_buffer(f, 0)
        guard rc >= 0 else { throw .writeFailed(path: path, reason: FFmpeg.message(rc)) }
        sws = sws_getContext(Int32(encodedWidth), Int32(encodedHeight), AV_PIX_FMT_RGB24,
                             Int32(encodedWidth), Int32(encodedHeight), AV_PIX_FMT_YUV420P,
                             SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT, nil, nil, nil)
        guard sws != nil else { throw .writeFailed(path: path, reason: "no RGB → yuv420p conversion") }
        _ = segflow_sws_set_yuv_side(sws, Int32(AVCOL_SPC_SMPTE170M.rawValue), 0, 0)

        if oformat.pointee.flags & AVFMT_NOFILE == 0 {
            rc = avio_open(&fmt.pointee.pb, partialPath, AVIO_FLAG_WRITE)
            guard rc >= 0 else { throw .writeFailed(path: path, reason: "cannot create \(partialPath): \(FFmpeg.message(rc))") }
        }
        open = true
        // MP4/MOV: the index (moov) goes to the front once the file is complete, so the
        // video plays while it downloads and a file cut short still opens.
        var muxerOptions: OpaquePointer?
        defer { av_dict_free(&muxerOptions) }
        let muxer = String(cString: oformat.pointee.name)
        if muxer == "mp4" || muxer == "mov" { av_dict_set(&muxerOptions, "movflags", "+faststart", 0) }
        rc = avformat_write_header(fmt, &muxerOptions)
        guard rc >= 0 else { throw .writeFailed(path: path, reason: "container header: \(FFmpeg.message(rc))") }
        headerWritten = true
    }

    deinit {
        if open { close(keep: false) }
        sws_freeContext(sws)
        av_frame_free(&frame)
        av_packet_free(&packet)
        avcodec_free_context(&codec)
        avformat_free_context(format)
    }

    /// The encoder for `choice` that `container` accepts (avformat_query_codec).
    static func chooseEncoder(_ choice: VideoWriter.Codec, container: UnsafePointer<AVOutputFormat>) -> UnsafePointer<AVCodec>? {
        func accepts(_ c: UnsafePointer<AVCodec>) -> Bool {
            avformat_query_codec(container, c.pointee.id, FF_COMPLIANCE_NORMAL) == 1
        }
        func named(_ names: [String]) -> UnsafePointer<AVCodec>? {
            for n in names { if let c = avcodec_find_encoder_by_name(n), accepts(c) { return c } }
            return nil
        }
        switch choice {
        case .h264: return named(["libx264"])
        case .mpeg4: return named(["mpeg4"])
        case .vp9: return named(["libvpx-vp9"])
        case .vp8: return named(["libvpx"])
        case .automatic: return named(["libx264", "mpeg4", "libvpx-vp9", "libvpx"])
        }
    }

    /// Encodes one frame; every frame must have the size the writer was made for.
    public func write(_ image: RGBImage) throws(VideoError) {
        guard open, let frame, let sws else { throw .writerClosed(path: path) }
        guard image.width == width, image.height == height else {
            close(keep: false)
            throw .frameSizeChanged(path: path, frameIndex: framesWritten, expected: "\(width)x\(height)", got: "\(image.width)x\(image.height)")
        }
        var rc = av_frame_make_writable(frame)
        guard rc >= 0 else { close(keep: false); throw .writeFailed(path: path, reason: FFmpeg.message(rc)) }
        let padded: [UInt8]
        do { padded = try Self.paddedToEven(image).pixels } catch { close(keep: false); throw .writeFailed(path: path, reason: "\(error)") }
        rc = padded.withUnsafeBufferPointer { segflow_sws_packed_to_frame(sws, $0.baseAddress, Int32(encodedWidth * 3), Int32(encodedHeight), frame) }
        guard rc == Int32(encodedHeight) else { close(keep: false); throw .writeFailed(path: path, reason: "RGB → yuv420p conversion failed") }
        frame.pointee.pts = Int64(framesWritten)
        try encode(frame)
        framesWritten += 1
    }

    /// Flushes the encoder, writes the container trailer and moves the file into place.
    public func finish() throws(VideoError) {
        guard open, let format else { throw .writerClosed(path: path) }
        try encode(nil)
        let rc = av_write_trailer(format)
        guard rc >= 0 else { close(keep: false); throw .writeFailed(path: path, reason: "trailer: \(FFmpeg.message(rc))") }
        close(keep: true)
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: partialPath, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: partialPath)
            throw .writeFailed(path: path, reason: "moving the finished file into place: \((error as NSError).localizedDescription)")
        }
    }

    private func encode(_ f: UnsafeMutablePointer<AVFrame>?) throws(VideoError) {
        guard let codec, let packet, let format, let stream else { throw .writerClosed(path: path) }
        var rc = avcodec_send_frame(codec, f)
        guard rc >= 0 else { close(keep: false); throw .writeFailed(path: path, reason: "encoding: \(FFmpeg.message(rc))") }
        while true {
            rc = avcodec_receive_packet(codec, packet)
            if rc == FFmpeg.eagain || rc == FFmpeg.eof { return }
            guard rc >= 0 else { close(keep: false); throw .writeFailed(path: path, reason: "encoding: \(FFmpeg.message(rc))") }
            av_packet_rescale_ts(packet, codec.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            rc = av_interleaved_write_frame(format, packet)  // takes the packet's reference
            guard rc >= 0 else { close(keep: false); throw .writeFailed(path: path, reason: "muxing: \(FFmpeg.message(rc))") }
        }
    }

    private func close(keep: Bool) {
        guard open else { return }
        open = false
        if let format, format.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 { avio_closep(&format.pointee.pb) }
        if !keep { try? FileManager.default.removeItem(atPath: partialPath) }
    }

    /// `image` on a canvas of even width and height (what yuv420p needs), the last
    /// column/row repeated into the padding; the image itself when already even.
    public static func paddedToEven(_ image: RGBImage) throws(ImagingError) -> RGBImage {
        let width = image.width + (image.width & 1), height = image.height + (image.height & 1)
        if width == image.width && height == image.height { return image }
        let src = image.pixels
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let rowIn = image.width * 3, rowOut = width * 3
        for y in 0..<height {
            let sy = min(y, image.height - 1)
            out.replaceSubrange(y * rowOut..<(y * rowOut + rowIn), with: src[sy * rowIn..<(sy + 1) * rowIn])
            for x in image.width..<width {
                for c in 0..<3 { out[y * rowOut + x * 3 + c] = src[sy * rowIn + (image.width - 1) * 3 + c] }
            }
        }
        return try RGBImage(width: width, height: height, pixels: out)
    }
}
