import Foundation
import Imaging
import Video
import XCTest

/// VideoReader against PyAV on clips PyAV encoded (Tests/Reference/make_video_fixtures.py):
/// H.264 with B-frames in MP4, odd-sized FFV1 in Matroska, full-range MJPEG in AVI, VP9 in WebM.
final class VideoReaderReferenceTests: XCTestCase {
    // The decoders are bit-exact: Debian's libavcodec 59 and PyAV's FFmpeg 8 give identical
    // YUV planes on all four clips (measured with a C harness over both libraries, max |Δ| 0).
    // The RGB conversion is not: libswscale 6.7 and 9.x (FFmpeg 8 rewrote swscale's
    // internals) round differently, and 6.7 treats the last chroma rows differently
    // (vertical edge). Measured against a float BT.601 reference of the same YUV:
    // VideoReader mean 0.32–0.38, PyAV 0.25–0.38; VideoReader vs PyAV (same flags): mean
    // ≤ 0.234, 99.9th percentile ≤ 4, max 11 (H.264 clip, bottom two rows only).
    // A wrong range (limited vs full) or matrix (BT.709 for BT.601) moves the mean by
    // several levels, so these bounds catch it.
    /// Mean |Δ| over a clip, VideoReader vs PyAV with the same libswscale flags.
    static let referenceMeanTolerance = 0.5
    /// Share of samples that may differ by more than `referenceBulkTolerance` levels.
    static let referenceOutlierShare = 0.005
    static let referenceBulkTolerance = 4
    /// Largest |Δ| anywhere (the last chroma rows, see above).
    static let referenceMaxTolerance = 16

    /// PyAV's default `to_ndarray(format="rgb24")` (BILINEAR only: libswscale's fast
    /// unscaled path, nearest-neighbour chroma) is not what VideoReader computes; the
    /// difference is chroma rounding and upsampling, mean ≤ 1.32 measured per frame.
    static let defaultConversionMeanTolerance = 3.0

    func clip(_ name: String) throws -> (Fixtures.Clip, URL) {
        let c = try XCTUnwrap(try Fixtures.cases().clips[name], name)
        return (c, try Fixtures.url(c.file))
    }

    func checkClip(_ name: String) throws {
        let (c, url) = try clip(name)
        let reader = try VideoReader(path: url.path)
        XCTAssertEqual(reader.info.width, c.width)
        XCTAssertEqual(reader.info.height, c.height)
        XCTAssertEqual(reader.info.codec, c.codec)
        XCTAssertEqual(reader.info.frameCount, c.nb_frames, "\(name): container frame count")
        if let rate = c.frame_rate { XCTAssertEqual(reader.info.frameRate ?? 0, rate, accuracy: 1e-9) }
        let frames = try readAll(reader)
        XCTAssertEqual(frames.count, c.count, name)
        XCTAssertEqual(frames.map(\.index), Array(0..<c.count))
        for (f, p) in zip(frames, c.pts) {
            // Both sides compute pts × time base from the same integers.
            XCTAssertEqual(f.pts ?? -1, p ?? -1, accuracy: 1e-12, "\(name) frame \(f.index) pts")
        }
        let exact = try Fixtures.stackedFrames("\(name).frames.png", width: c.width, height: c.height, count: c.count)
        let pyDefault = try Fixtures.stackedFrames("\(name).default.frames.png", width: c.width, height: c.height, count: c.count)
        var worst = 0, total = 0, outliers = 0, samples = 0, worstDefault = 0, meanDefault = 0.0
        for (i, f) in frames.enumerated() where i < exact.count {
            for (a, b) in zip(f.image.pixels, exact[i].pixels) {
                let d = abs(Int(a) - Int(b))
                worst = max(worst, d); total += d; samples += 1
                if d > Self.referenceBulkTolerance { outliers += 1 }
            }
            let e = difference(f.image, pyDefault[i])
            worstDefault = max(worstDefault, e.max)
            meanDefault = max(meanDefault, e.mean)
            XCTAssertLessThanOrEqual(e.mean, Self.defaultConversionMeanTolerance, "\(name) frame \(i) vs PyAV's default conversion")
        }
        let mean = Double(total) / Double(max(samples, 1)), share = Double(outliers) / Double(max(samples, 1))
        XCTAssertLessThanOrEqual(mean, Self.referenceMeanTolerance, "\(name): mean |Δ| vs PyAV")
        XCTAssertLessThanOrEqual(share, Self.referenceOutlierShare, "\(name): share of samples off by more than \(Self.referenceBulkTolerance)")
        XCTAssertLessThanOrEqual(worst, Self.referenceMaxTolerance, "\(name): max |Δ| vs PyAV")
        print("\(name) (\(c.codec) \(c.pix_fmt) \(c.width)x\(c.height)): vs PyAV same flags mean \(String(format: "%.3f", mean)), "
              + "> \(Self.referenceBulkTolerance): \(String(format: "%.4f", share * 100))%, max \(worst); "
              + "vs PyAV default conversion max \(worstDefault), worst frame mean \(String(format: "%.3f", meanDefault))")
    }

    func testH264WithBFramesInMP4MatchesPyAV() throws { try checkClip("pan_h264") }
    func testOddSizedFFV1InMatroskaMatchesPyAV() throws { try checkClip("odd_ffv1") }
    func testFullRangeMJPEGInAVIMatchesPyAV() throws { try checkClip("pan_mjpeg") }
    func testVP9InWebMMatchesPyAV() throws { try checkClip("pan_vp9") }

    /// In-memory input decodes exactly what the file gives.
    func testMemoryInputEqualsFileInput() throws {
        let (_, url) = try clip("pan_h264")
        let fromFile = try readAll(VideoReader(path: url.path))
        let fromMemory = try readAll(VideoReader(data: [UInt8](try Data(contentsOf: url)), name: "pan_h264 in memory"))
        XCTAssertEqual(fromFile, fromMemory)
    }

    func testTwoDecoderThreadsGiveTheSameFrames() throws {
        let (_, url) = try clip("pan_h264")
        let one = try readAll(VideoReader(path: url.path))
        let two = try readAll(VideoReader(path: url.path, options: .init(threads: 2)))
        XCTAssertEqual(one, two)
    }

    /// The frame-count guard: a stream with more frames than the limit fails, naming it;
    /// the container's count is checked before any decoding.
    func testFrameCountGuard() throws {
        let (_, mp4) = try clip("pan_h264")
        XCTAssertThrowsError(try VideoReader(path: mp4.path, options: .init(maxFrames: 5))) { e in
            XCTAssertEqual(e as? VideoError, .tooManyFrames(path: mp4.path, limit: 5))
        }
        // Matroska records no count: the guard trips while decoding.
        let (_, mkv) = try clip("odd_ffv1")
        let reader = try VideoReader(path: mkv.path, options: .init(maxFrames: 4))
        XCTAssertNil(reader.info.frameCount)
        for _ in 0..<4 { XCTAssertNotNil(try reader.next()) }
        XCTAssertThrowsError(try reader.next()) { e in
            XCTAssertEqual(e as? VideoError, .tooManyFrames(path: mkv.path, limit: 4))
        }
        XCTAssertNil(try reader.next(), "a reader that failed stays finished")
    }

    func testPixelGuardIsCheckedBeforeDecoding() throws {
        let (_, mp4) = try clip("pan_h264")
        XCTAssertThrowsError(try VideoReader(path: mp4.path, options: .init(maxPixels: 64 * 48 - 1))) { e in
            XCTAssertEqual(e as? VideoError, .frameTooLarge(path: mp4.path, width: 64, height: 48, limit: 64 * 48 - 1))
        }
    }
}
