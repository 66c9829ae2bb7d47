/// Every failure of the Video module. Each case names the file (or the in-memory
/// input's name) and what failed, so a command line can print it as it is.
public enum VideoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file at the path (or it is not readable).
    case notFound(path: String)
    /// libavformat could not read the input as any container it knows.
    case notAVideo(path: String, reason: String)
    /// A container without a video stream (e.g. audio only).
    case noVideoStream(path: String)
    /// A video stream whose codec Debian's libavcodec cannot decode.
    case unsupportedCodec(path: String, codec: String)
    /// The demuxer or decoder rejected data in the middle of the stream (a corrupt
    /// packet, or a file truncated inside its media data). `frameIndex` is the index
    /// the next delivered frame would have had.
    case corruptData(path: String, frameIndex: Int, reason: String)
    /// The stream declares, or turns out to have, more frames than the reader's limit.
    case tooManyFrames(path: String, limit: Int)
    /// A frame larger than the pixel limit (decompression-bomb guard), checked from the
    /// stream's parameters before any frame-sized allocation.
    case frameTooLarge(path: String, width: Int, height: Int, limit: Int)
    /// No encoder for the requested output (neither libx264 nor MPEG-4 Part 2).
    case encoderUnavailable(path: String, reason: String)
    /// Opening, encoding or muxing the output failed.
    case writeFailed(path: String, reason: String)
    /// A frame given to a writer whose size differs from the first frame's.
    case frameSizeChanged(path: String, frameIndex: Int, expected: String, got: String)
    /// A writer used after `finish()` or after a failure.
    case writerClosed(path: String)

    public var description: String {
        switch self {
        case let .notFound(p): "cannot read \(p): no such file or not readable"
        case let .notAVideo(p, r): "\(p) is not a video libavformat can read (\(r))"
        case let .noVideoStream(p): "\(p) has no video stream"
        case let .unsupportedCodec(p, c): "\(p): video codec \(c) is not supported by this libavcodec"
        case let .corruptData(p, i, r): "\(p): corrupt or truncated video data at frame \(i) (\(r))"
        case let .tooManyFrames(p, l): "\(p): more than \(l) frames (the reader's limit; raise it with --max-frames)"
        case let .frameTooLarge(p, w, h, l): "\(p): \(w)x\(h) frames exceed the limit of \(l) pixels"
        case let .encoderUnavailable(p, r): "cannot write \(p): \(r)"
        case let .writeFailed(p, r): "cannot write \(p): \(r)"
        case let .frameSizeChanged(p, i, e, g): "\(p): frame \(i) is \(g), the video is \(e)"
        case let .writerClosed(p): "\(p): the video writer is already closed"
        }
    }
}
