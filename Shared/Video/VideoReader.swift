import CFFmpeg
import Foundation
#if !SEGFLOW_FUZZ_SINGLE_MODULE  // Tests/Fuzz/run-video-fuzz.sh compiles Imaging into the same module
import Imaging
#endif

/// One decoded frame: its pixels as RGB8, its position in decode-output order and its
/// presentation time.
public struct VideoFrame: Sendable, Equatable {
    /// 0, 1, 2, … in presentation order: the ordinal of the frame among those this reader
    /// delivered (a frame skipped under `.skip` leaves no gap; `pts` tells the time).
    public var index: Int
    /// Presentation time in seconds (the frame's pts × the stream's time base, as PyAV's
    /// `frame.time`); nil when the stream carries no timestamps.
    public var pts: Double?
    public var image: RGBImage

    public init(index: Int, pts: Double?, image: RGBImage) {
        self.index = index; self.pts = pts; self.image = image
    }
}

/// What the container says about its video stream, before any frame is decoded.
public struct VideoInfo: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Average frame rate (frames per second), else the stream's base rate; nil when neither is set.
    public var frameRate: Double?
    /// Seconds: the stream's duration, else the container's; nil when neither is known.
    public var duration: Double?
    /// The frame count the container records (MP4 does; Matroska/WebM usually do not); nil if unknown.
    public var frameCount: Int?
    /// libavcodec's codec name ("h264", "vp9", "mpeg4", …).
    public var codec: String
    /// libavformat's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", …).
    public var container: String
}

/// Decodes a video file frame by frame through Debian's libavformat + libavcodec and
/// converts each frame to RGB24 with libswscale. Only the frames the decoder holds
/// (its reorder delay) are in memory at any time — never the whole video.
///
/// RGB conversion: the frame's own YUV matrix (BT.601 when unspecified, BT.709, …) and
/// range (limited/full), bilinear chroma upsampling with accurate rounding and libswscale's
/// bit-exact mode, so the pixels are the same on every CPU and equal PyAV's
/// `to_ndarray(format="rgb24", interpolation=VideoReader.pyAVInterpolation)` (measured by
/// VideoReaderReferenceTests).
///
/// Corrupt data (a packet the decoder rejects, a read error in the middle of the file, a
/// file truncated inside its media data): `.fail` (the default) throws
/// `VideoError.corruptData` naming the frame; `.skip` drops the bad packet, records a line
/// in `warnings` and carries on, but still fails after `maxConsecutiveErrors` failures in
/// a row (so garbage never loops). libavcodec's own error concealment (e.g. a damaged
/// H.264 slice painted from the previous frame) is not an error in either mode.
public final class VideoReader {
    public enum CorruptDataPolicy: String, Sendable, CaseIterable { case fail, skip }

    public struct Options: Sendable {
        /// Decoder threads. Small by default: the decoder shares the CPU with the model.
        public var threads: Int
        /// Frame-count guard: a stream that declares or delivers more frames fails.
        public var maxFrames: Int
        /// Pixel guard per frame (as for images: a decompression-bomb limit).
        public var maxPixels: Int
        public var corruptData: CorruptDataPolicy

        public init(threads: Int = 1, maxFrames: Int = VideoReader.defaultMaxFrames,
                    maxPixels: Int = ImageDecoder.defaultMaxPixels, corruptData: CorruptDataPolicy = .fail) {
            self.threads = threads; self.maxFrames = maxFrames; self.maxPixels = maxPixels; self.corruptData = corruptData
        }
    }

    /// 100 000 frames: over 55 minutes at 30 fps; one object's per-frame JSON record is a
    /// few hundred bytes, so a run at the limit stays small.
    public static let defaultMaxFrames = 100_000
    /// Failures in a row after which `.skip` gives up (a stream that is garbage from here on).
    public static let maxConsecutiveErrors = 32
    /// At most this many warning lines are kept (later ones are counted in `skippedCount`).
    public static let maxWarnings = 100
    /// libswscale flags of the RGB conversion (see the type's comment).
    static let swsFlags = SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT

    public let path: String
    public let info: VideoInfo
    public let options: Options
    public private(set) var warnings: [String] = []
    /// Packets (or read failures) dropped under `.skip`.
    public private(set) var skippedCount = 0
    /// Frames delivered so far.
    public private(set) var framesRead = 0

    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var sws: OpaquePointer?
    private var swsKey: [Int32] = []
    private let streamIndex: Int32
    private let timeBase: AVRational
    private var draining = false
    private var finished = false
    private var consecutiveErrors = 0
    /// Custom I/O for in-memory input (nil for files).
    private var memory: MemoryInput?
    private var avio: UnsafeMutablePointer<AVIOContext>?

    /// Opens `path`; fails before decoding anything if it is not a readable video.
    public convenience init(path: String, options: Options = Options()) throws(VideoError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), FileManager.default.isReadableFile(atPath: path) else {
            throw .notFound(path: path)
        }
        guard !isDir.boolValue else { throw .notAVideo(path: path, reason: "it is a directory") }
        try self.init(name: path, memory: nil, options: options)
    }

    /// Decodes a video held in memory (tests, fuzzing, bytes from a network); `name`
    /// stands in for the path in errors.
    public convenience init(data: [UInt8], name: String, options: Options = Options()) throws(VideoError) {
        guard !data.isEmpty else { throw .notAVideo(path: name, reason: "empty input (0 bytes)") }
        try self.init(name: name, memory: MemoryInput(data), options: options)
    }

    private init(name: String, memory: MemoryInput?, options: Options) throws(VideoError) {
        _ = FFmpeg.configureLogging
        self.path = name
        self.options = options
        self.memory = memory
        var fmt: UnsafeMutablePointer<AVFormatContext>? = avformat_alloc_context()
        guard fmt != nil else { throw .notAVideo(path: name, reason: "out of memory") }
        if let memory {
            guard let ctx = memory.makeContext() else {
                avformat_free_context(fmt)
                throw .notAVideo(path: name, reason: "out of memory")
            }
            avio = ctx
            fmt!.pointee.pb = ctx
            fmt!.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        }
        // On failure avformat_open_input frees the context and sets it to NULL.
        let rc = avformat_open_input(&fmt, memory == nil ? name : nil, nil, nil)
        guard rc >= 0, let fmt else {
            Self.freeIO(&avio)
            throw .notAVideo(path: name, reason: FFmpeg.message(rc))
        }
        format = fmt
        // Every throw below comes after all stored properties are set, so deinit releases
        // what has been opened.
        let found = avformat_find_stream_info(fmt, nil)
        if found < 0 {
            let message = FFmpeg.message(found)
            streamIndex = -1; timeBase = AVRational(num: 0, den: 1)
            info = VideoInfo(width: 0, height: 0, frameRate: nil, duration: nil, frameCount: nil, codec: "", container: "")
            throw .notAVideo(path: name, reason: message)
        }
        let best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard best >= 0, let stream = fmt.pointee.streams[Int(best)] else {
            streamIndex = -1; timeBase = AVRational(num: 0, den: 1)
            info = VideoInfo(width: 0, height: 0, frameRate: nil, duration: nil, frameCount: nil, codec: "", container: "")
            throw .noVideoStream(path: name)
        }
        streamIndex = best
        timeBase = stream.pointee.time_base
        let par = stream.pointee.codecpar!
        let codecName = String(cString: avcodec_get_name(par.pointee.codec_id))
        let container = fmt.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        let frameRate = FFmpeg.rate(stream.pointee.avg_frame_rate) ?? FFmpeg.rate(stream.pointee.r_frame_rate)
        let duration = (stream.pointee.duration > 0 ? FFmpeg.seconds(stream.pointee.duration, timeBase) : nil)
            ?? (fmt.pointee.duration > 0 ? Double(fmt.pointee.duration) / Double(AV_TIME_BASE) : nil)
        let count = stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil
        info = VideoInfo(width: Int(par.pointee.width), height: Int(par.pointee.height), frameRate: frameRate,
                         duration: duration, frameCount: count, codec: codecName, container: container)

        guard let decoder = avcodec_find_decoder(par.pointee.codec_id) else { throw .unsupportedCodec(path: name, codec: codecName) }
        guard info.width > 0, info.height > 0 else { throw .notAVideo(path: name, reason: "video stream of \(codecName) without a frame size") }
        let (pixels, overflow) = info.width.multipliedReportingOverflow(by: info.height)
        guard !overflow, pixels <= options.maxPixels else {
            throw .frameTooLarge(path: name, width: info.width, height: info.height, limit: options.maxPixels)
        }
        if let count, count > options.maxFrames { throw .tooManyFrames(path: name, limit: options.maxFrames) }
        guard let ctx = avcodec_alloc_context3(decoder) else { throw .notAVideo(path: name, reason: "out of memory") }
        codec = ctx
        var r = avcodec_parameters_to_context(ctx, par)
        guard r >= 0 else { throw .unsupportedCodec(path: name, codec: "\(codecName) (\(FFmpeg.message(r)))") }
        ctx.pointee.thread_count = Int32(max(1, min(options.threads, 16)))
        ctx.pointee.pkt_timebase = timeBase
        r = avcodec_open2(ctx, decoder, nil)
        guard r >= 0 else { throw .unsupportedCodec(path: name, codec: "\(codecName) (\(FFmpeg.message(r)))") }
        packet = av_packet_alloc()
        frame = av_frame_alloc()
        guard packet != nil, frame != nil else { throw .notAVideo(path: name, reason: "out of memory") }
    }

    deinit {
        sws_freeContext(sws)
        av_frame_free(&frame)
        av_packet_free(&packet)
        avcodec_free_context(&codec)
        avformat_close_input(&format)
        Self.freeIO(&avio)
    }

    private static func freeIO(_ avio: inout UnsafeMutablePointer<AVIOContext>?) {
        guard avio != nil else { return }
        av_freep(&avio!.pointee.buffer)
        avio_context_free(&avio)
    }

    /// The next frame in presentation order, or nil at the end of the stream.
    public func next() throws(VideoError) -> VideoFrame? {
        guard !finished, let codec, let packet, let frame, let format else { return nil }
        while true {
            let received = avcodec_receive_frame(codec, frame)
            if received == 0 {
                defer { av_frame_unref(frame) }
                consecutiveErrors = 0
                guard framesRead < options.maxFrames else {
                    finished = true
                    throw .tooManyFrames(path: path, limit: options.maxFrames)
                }
                let image = try convert(frame)
                let ticks = frame.pointee.pts != FFmpeg.noPTS ? frame.pointee.pts : frame.pointee.best_effort_timestamp
                let out = VideoFrame(index: framesRead, pts: FFmpeg.seconds(ticks, timeBase), image: image)
                framesRead += 1
                return out
            }
            if received == FFmpeg.eof { finished = true; return nil }
            if received != FFmpeg.eagain {
                // Under .skip the decoder may still hold good frames (also while flushing);
                // maxConsecutiveErrors bounds a decoder that keeps failing.
                try corrupt("decoding: \(FFmpeg.message(received))")
                continue
            }
            if draining { finished = true; return nil }  // EAGAIN after the flush packet: nothing is left
            let read = av_read_frame(format, packet)
            if read == FFmpeg.eof {
                draining = true
                _ = avcodec_send_packet(codec, nil)
                continue
            }
            if read < 0 {
                try corrupt("reading: \(FFmpeg.message(read))")
                continue
            }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == streamIndex else { continue }
            let sent = avcodec_send_packet(codec, packet)
            if sent < 0 && sent != FFmpeg.eagain { try corrupt("decoding: \(FFmpeg.message(sent))") }
        }
    }

    /// Reads and discards every remaining frame; returns how many there were.
    public func skipToEnd() throws(VideoError) -> Int {
        var n = 0
        while try next() != nil { n += 1 }
        return n
    }

    private func corrupt(_ reason: String) throws(VideoError) {
        consecutiveErrors += 1
        let error = VideoError.corruptData(path: path, frameIndex: framesRead, reason: reason)
        guard options.corruptData == .skip, consecutiveErrors < Self.maxConsecutiveErrors else {
            finished = true
            if consecutiveErrors >= Self.maxConsecutiveErrors && options.corruptData == .skip {
                throw .corruptData(path: path, frameIndex: framesRead, reason: "\(reason); \(consecutiveErrors) failures in a row")
            }
            throw error
        }
        skippedCount += 1
        if warnings.count < Self.maxWarnings { warnings.append("skipped: \(error)") }
    }

    /// Decoder output (any pixel format) → packed RGB24 through an aligned scratch buffer:
    /// libswscale writes whole aligned rows, the RGBImage gets exactly width × 3 per row.
    private func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws(VideoError) -> RGBImage {
        let w = Int(frame.pointee.width), h = Int(frame.pointee.height)
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        guard w > 0, h > 0, !overflow, pixels <= options.maxPixels else {
            throw .frameTooLarge(path: path, width: w, height: h, limit: options.maxPixels)
        }
        let fmt = frame.pointee.format
        let colorspace = Int32(frame.pointee.colorspace.rawValue)
        let fullRange: Int32 = frame.pointee.color_range == AVCOL_RANGE_JPEG || Self.isJPEGRange(fmt) ? 1 : 0
        let key = [Int32(w), Int32(h), fmt, colorspace, fullRange]
        if key != swsKey || sws == nil {
            sws = sws_getCachedContext(sws, Int32(w), Int32(h), AVPixelFormat(fmt), Int32(w), Int32(h), AV_PIX_FMT_RGB24,
                                       Self.swsFlags, nil, nil, nil)
            guard sws != nil else {
                let name = av_get_pix_fmt_name(AVPixelFormat(fmt)).map { String(cString: $0) } ?? "\(fmt)"
                throw .unsupportedCodec(path: path, codec: "\(info.codec) in pixel format \(name) (no RGB conversion)")
            }
            if Self.isYUV(fmt) { _ = segflow_sws_set_yuv_side(sws, colorspace, fullRange, 1) }
            swsKey = key
        }
        let rowBytes = w * 3
        let stride = (rowBytes + 63) & ~63
        // Two spare rows: some converters read or write a little past the last row.
        var scratch = [UInt8](repeating: 0, count: stride * (h + 2))
        let rows = scratch.withUnsafeMutableBufferPointer { segflow_sws_frame_to_packed(sws, frame, $0.baseAddress, Int32(stride)) }
        guard rows == Int32(h) else {
            throw .corruptData(path: path, frameIndex: framesRead, reason: "RGB conversion returned \(rows) of \(h) rows")
        }
        let out: [UInt8]
        if stride == rowBytes {
            scratch.removeLast(stride * 2)
            out = scratch
        } else {
            out = [UInt8](unsafeUninitializedCapacity: rowBytes * h) { buf, n in
                scratch.withUnsafeBufferPointer { src in
                    for y in 0..<h {
                        UnsafeMutableRawPointer(buf.baseAddress! + y * rowBytes)
                            .copyMemory(from: src.baseAddress! + y * stride, byteCount: rowBytes)
                    }
                }
                n = rowBytes * h
            }
        }
        do { return try RGBImage(width: w, height: h, pixels: out) } catch {
            throw .corruptData(path: path, frameIndex: framesRead, reason: "\(error)")
        }
    }

    static func isJPEGRange(_ fmt: Int32) -> Bool {
        [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUVJ411P]
            .contains { $0.rawValue == fmt }
    }

    /// A YUV format (its matrix and range matter); RGB, palette and gray formats are not.
    static func isYUV(_ fmt: Int32) -> Bool {
        guard let desc = av_pix_fmt_desc_get(AVPixelFormat(fmt)) else { return false }
        let flags = desc.pointee.flags
        return desc.pointee.nb_components >= 3 && flags & UInt64(AV_PIX_FMT_FLAG_RGB) == 0 && flags & UInt64(AV_PIX_FMT_FLAG_PAL) == 0
    }
}

/// An in-memory input behind libavformat's custom I/O (read + seek callbacks).
final class MemoryInput {
    let data: [UInt8]
    var position = 0
    static let bufferSize = 32 * 1024

    init(_ data: [UInt8]) { self.data = data }

    /// The AVIOContext reading `data`; the caller owns it (and keeps `self` alive).
    func makeContext() -> UnsafeMutablePointer<AVIOContext>? {
        guard let buffer = av_malloc(Self.bufferSize) else { return nil }
        let ctx = avio_alloc_context(buffer.assumingMemoryBound(to: UInt8.self), Int32(Self.bufferSize), 0,
                                     Unmanaged.passUnretained(self).toOpaque(),
                                     { opaque, buf, size in
                                         let input = Unmanaged<MemoryInput>.fromOpaque(opaque!).takeUnretainedValue()
                                         let n = min(Int(size), input.data.count - input.position)
                                         guard n > 0, let buf else { return segflow_averror_eof() }
                                         input.data.withUnsafeBufferPointer {
                                             buf.update(from: $0.baseAddress! + input.position, count: n)
                                         }
                                         input.position += n
                                         return Int32(n)
                                     }, nil,
                                     { opaque, offset, whence in
                                         let input = Unmanaged<MemoryInput>.fromOpaque(opaque!).takeUnretainedValue()
                                         let size = Int64(input.data.count)
                                         if whence & AVSEEK_SIZE != 0 { return size }
                                         let base: Int64
                                         switch whence & ~AVSEEK_FORCE {
                                         case SEEK_SET: base = 0
                                         case SEEK_CUR: base = Int64(input.position)
                                         case SEEK_END: base = size
                                         default: return -1
                                         }
                                         let target = base + offset
                                         guard target >= 0, target <= size else { return -1 }
                                         input.position = Int(target)
                                         return target
                                     })
        if ctx == nil { av_free(buffer) }
        return ctx
    }
}
