import CFFmpeg
import Foundation

/// What every FFmpeg call site shares: error text and the library's log level.
enum FFmpeg {
    /// av_strerror's text for an AVERROR code ("Invalid data found when processing input").
    static func message(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if av_strerror(code, &buffer, buffer.count) < 0 { return "error \(code)" }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static let eagain = segflow_averror_eagain()
    static let eof = segflow_averror_eof()
    static let noPTS = segflow_av_nopts_value()

    /// FFmpeg logs to stderr by itself (e.g. "partial file", "decode_slice_header
    /// error"); the reader turns every failure into a VideoError instead, so the
    /// library stays quiet unless SEGFLOW_FFMPEG_LOGLEVEL asks for its own messages
    /// (quiet, panic, fatal, error, warning, info, verbose, debug).
    static let configureLogging: Void = {
        let levels: [String: Int32] = ["quiet": AV_LOG_QUIET, "panic": AV_LOG_PANIC, "fatal": AV_LOG_FATAL,
                                       "error": AV_LOG_ERROR, "warning": AV_LOG_WARNING, "info": AV_LOG_INFO,
                                       "verbose": AV_LOG_VERBOSE, "debug": AV_LOG_DEBUG]
        let asked = ProcessInfo.processInfo.environment["SEGFLOW_FFMPEG_LOGLEVEL"].flatMap { levels[$0.lowercased()] }
        av_log_set_level(asked ?? AV_LOG_QUIET)
    }()

    /// A stream's time base as a Double (0 when unset).
    static func seconds(_ ticks: Int64, _ base: AVRational) -> Double? {
        guard ticks != noPTS, base.den != 0 else { return nil }
        return Double(ticks) * Double(base.num) / Double(base.den)
    }

    static func rate(_ r: AVRational) -> Double? {
        guard r.num > 0, r.den > 0 else { return nil }
        return Double(r.num) / Double(r.den)
    }
}
