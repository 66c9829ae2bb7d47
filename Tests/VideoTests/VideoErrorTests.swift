import Foundation
import Imaging
import Video
import XCTest

/// Bad input gives an error naming the file and what failed — never a crash, never a hang.
final class VideoErrorTests: XCTestCase {
    func makeVideo(_ dir: String, _ file: String, count: Int = 10, width: Int = 64, height: Int = 48) throws -> String {
        let path = "\(dir)/\(file)"
        let w = try VideoWriter(path: path, width: width, height: height)
        for f in try panFrames(width: width, height: height, count: count) { try w.write(f) }
        try w.finish()
        return path
    }

    func testMissingFileAndDirectory() throws {
        let dir = try temporaryDirectory("video-missing")
        XCTAssertThrowsError(try VideoReader(path: "\(dir)/nope.mp4")) { e in
            XCTAssertEqual(e as? VideoError, .notFound(path: "\(dir)/nope.mp4"))
            XCTAssertTrue("\(e)".contains("\(dir)/nope.mp4"))
        }
        XCTAssertThrowsError(try VideoReader(path: dir)) { e in
            XCTAssertEqual(e as? VideoError, .notAVideo(path: dir, reason: "it is a directory"))
        }
    }

    func testNonVideoFilesAreRefusedClearly() throws {
        let dir = try temporaryDirectory("video-nonvideo")
        let text = "\(dir)/notes.dat"
        try Data("just some words, not a container\n".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try VideoReader(path: text)) { e in
            guard case .notAVideo(let p, let reason)? = e as? VideoError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, text)
            XCTAssertFalse(reason.isEmpty)
            XCTAssertTrue("\(e)".hasPrefix("\(text) is not a video"), "\(e)")
        }
        let empty = "\(dir)/empty.mp4"
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        XCTAssertThrowsError(try VideoReader(path: empty)) { e in
            guard case .notAVideo(let p, _)? = e as? VideoError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, empty)
        }
        XCTAssertThrowsError(try VideoReader(data: [], name: "nothing")) { e in
            XCTAssertEqual(e as? VideoError, .notAVideo(path: "nothing", reason: "empty input (0 bytes)"))
        }
        var noise = SystemRandomNumberGenerator()
        let random = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &noise) }
        XCTAssertThrowsError(try readAll(VideoReader(data: random, name: "noise"))) { e in
            XCTAssertNotNil(e as? VideoError, "\(e)")
        }
    }

    /// An audio-only container (a WAV written here) has no video stream.
    func testAudioOnlyFileHasNoVideoStream() throws {
        let dir = try temporaryDirectory("video-audio")
        let path = "\(dir)/tone.wav"
        let samples = (0..<8000).map { i in Int16(8000 * sin(Double(i) * 2 * .pi * 440 / 8000)) }
        var wav = [UInt8]()
        func u32(_ v: UInt32) { wav += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u16(_ v: UInt16) { wav += withUnsafeBytes(of: v.littleEndian, Array.init) }
        wav += Array("RIFF".utf8); u32(UInt32(36 + samples.count * 2)); wav += Array("WAVEfmt ".utf8)
        u32(16); u16(1); u16(1); u32(8000); u32(16000); u16(2); u16(16)
        wav += Array("data".utf8); u32(UInt32(samples.count * 2))
        for s in samples { u16(UInt16(bitPattern: s)) }
        try Data(wav).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try VideoReader(path: path)) { e in
            XCTAssertEqual(e as? VideoError, .noVideoStream(path: path))
            XCTAssertEqual("\(e)", "\(path) has no video stream")
        }
    }

    /// A file cut short: an MP4 (index at the front) loses its media data; a Matroska file
    /// ends inside a cluster. Either gives a named error under `.fail`, and `.skip` returns
    /// the frames before the cut (with warnings) — never a crash.
    func testTruncatedFiles() throws {
        let dir = try temporaryDirectory("video-truncated")
        for file in ["cut.mp4", "cut.mkv"] {
            let path = try makeVideo(dir, file, count: 20)
            let full = try Data(contentsOf: URL(fileURLWithPath: path))
            let cutPath = "\(dir)/short-\(file)"
            try full.prefix(full.count * 6 / 10).write(to: URL(fileURLWithPath: cutPath))
            let all = try readAll(VideoReader(path: path))
            XCTAssertEqual(all.count, 20)

            let strict = try VideoReader(path: cutPath)
            var got = 0
            do {
                while try strict.next() != nil { got += 1 }
                // Matroska has no index of its frames: a cut at a cluster boundary is a shorter
                // file. Then the frames must be a prefix of the original's.
                XCTAssertLessThan(got, 20, "\(file): a truncated file decoded every frame")
                XCTAssertEqual(file, "cut.mkv", "an MP4 whose index lists missing frames must fail")
            } catch {
                let e = error
                guard case .corruptData(let p, let index, _) = e else { XCTFail("\(file): \(e)"); continue }
                XCTAssertEqual(p, cutPath)
                XCTAssertEqual(index, got)
                XCTAssertTrue("\(e)".contains("corrupt or truncated"), "\(e)")
            }
            XCTAssertLessThan(got, 20)

            let lenient = try VideoReader(path: cutPath, options: .init(corruptData: .skip))
            var salvaged: [VideoFrame] = []
            do { while let f = try lenient.next() { salvaged.append(f) } } catch {
                let e = error
                // Past maxConsecutiveErrors failures in a row even .skip stops, with the error.
                guard case .corruptData = e else { XCTFail("\(file): \(e)"); continue }
            }
            XCTAssertGreaterThanOrEqual(salvaged.count, got, "\(file): .skip salvaged fewer frames than .fail delivered")
            XCTAssertLessThan(salvaged.count, 20)
            for (a, b) in zip(salvaged, all) { XCTAssertEqual(a.image, b.image, "\(file) frame \(a.index) differs before the cut") }
            print("\(file) cut at 60%: .fail delivered \(got) frames, .skip \(salvaged.count) (skipped \(lenient.skippedCount): \(lenient.warnings.prefix(2)))")
        }
    }

    /// Garbage written over the middle of the media data: no crash; either frames (the decoder
    /// conceals damage) or a named corruptData error.
    func testCorruptedMiddleDoesNotCrash() throws {
        let dir = try temporaryDirectory("video-corrupt")
        let path = try makeVideo(dir, "c.mkv", count: 12)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var rng = SplitMix(seed: 7)
        for i in (bytes.count / 2)..<(bytes.count / 2 + 600) { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        for policy in VideoReader.CorruptDataPolicy.allCases {
            let reader = try VideoReader(data: bytes, name: "corrupted.mkv", options: .init(corruptData: policy))
            do {
                let frames = try readAll(reader)
                XCTAssertLessThanOrEqual(frames.count, 12)
            } catch let e as VideoError {
                guard case .corruptData(let p, _, _) = e else { return XCTFail("\(e)") }
                XCTAssertEqual(p, "corrupted.mkv")
            }
        }
    }
}

/// Deterministic noise for corruption tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
