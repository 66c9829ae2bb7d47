import Foundation
import Imaging
import Pipeline
import Video
import XCTest

/// `segflow track` on a real video file made here with FFmpeg's encoder (VideoWriter,
/// libx264): odd-sized crops of the CC0 photograph panned left by 12 px per frame, so the
/// cat moves 12 px left per frame in frame coordinates.
extension CommandLineTests {
    static let videoFrames = 6
    static let videoPan = 12
    /// VideoWriter's yuv420p files are even-sized (odd input is padded), so the test video
    /// is even; odd sizes are VideoReader's tests (FFV1 37×23) and TrackOutputTests'.
    static let videoSize = (width: 358, height: 278)
    /// The box on frame 0 (the README's chelsea box moved into the crop).
    static let videoBox = "50,5,320,275"
    /// Crops of chelsea.png: frame k starts at x = 10 + pan·k, y = 5 + dy·k.
    func makePanVideo(_ path: String, count: Int = videoFrames, pan: Int = videoPan, dy: Int = 2) throws -> [RGBImage] {
        let photo = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        let (w, h) = Self.videoSize
        let frames = try (0..<count).map { k -> RGBImage in
            let x0 = 10 + pan * k, y0 = 5 + dy * k
            var px = [UInt8]()
            for y in y0..<(y0 + h) { px += photo.pixels[((y * photo.width + x0) * 3)..<((y * photo.width + x0 + w) * 3)] }
            return try RGBImage(width: w, height: h, pixels: px)
        }
        let writer = try VideoWriter(path: path, width: w, height: h, options: .init(frameRate: 10, crf: 16))
        for f in frames { try writer.write(f) }
        try writer.finish()
        return frames
    }

    /// `mask` moved by (dx, dy), cut to its frame.
    func shifted(_ mask: BinaryMask, dx: Int, dy: Int) throws -> BinaryMask {
        var v = [UInt8](repeating: 0, count: mask.width * mask.height)
        for y in 0..<mask.height { for x in 0..<mask.width where mask[x, y] {
            let nx = x + dx, ny = y + dy
            if nx >= 0 && nx < mask.width && ny >= 0 && ny < mask.height { v[ny * mask.width + nx] = 1 }
        } }
        return try BinaryMask(width: mask.width, height: mask.height, values: v)
    }

    /// Checks a run's outputs; returns the per-frame masks from the JSON.
    func checkVideoTrackOutputs(dir: String, label: String, video: String) throws -> [BinaryMask] {
        let (w, h) = Self.videoSize
        let doc = try JSONDecoder().decode(TrackResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(label).json")))
        XCTAssertEqual(doc.version, 2)
        XCTAssertEqual(doc.source?.kind, "video")
        XCTAssertEqual(doc.source?.path, video)
        XCTAssertEqual(doc.source?.frameRate ?? 0, 10, accuracy: 1e-9)
        XCTAssertEqual(doc.frames.count, Self.videoFrames, "\(label): every frame tracked")
        XCTAssertNil(doc.lostAfterFrame)
        var masks: [BinaryMask] = []
        for (k, f) in doc.frames.enumerated() {
            XCTAssertEqual(f.index, k)
            XCTAssertEqual(f.file, "\(video)#\(k)")
            XCTAssertEqual(f.pts ?? -1, Double(k) / 10, accuracy: 1e-9)
            XCTAssertEqual([f.width, f.height], [w, h])
            XCTAssertEqual(f.objects.map(\.id), [1])
            let mask = try COCORLE(height: h, width: w, compressedCounts: f.objects[0].segmentation.counts).decode()
            XCTAssertEqual(mask.area, f.objects[0].area)
            XCTAssertGreaterThan(mask.area, w * h / 10, "\(label) frame \(k): the cat covers a good part of the frame")
            masks.append(mask)
            // The palette PNG holds the same mask as label 1, in DAVIS's colour.
            let rgb = try PNG.decodeRGB(contentsOfFile: "\(dir)/\(label)-palette/\(String(format: "%05d", k)).png")
            XCTAssertEqual([rgb.width, rgb.height], [w, h])
            var fromPalette = [UInt8](repeating: 0, count: w * h)
            for p in 0..<(w * h) {
                let c = (rgb.pixels[p * 3], rgb.pixels[p * 3 + 1], rgb.pixels[p * 3 + 2])
                XCTAssertTrue(c == (0, 0, 0) || c == (128, 0, 0), "\(label) frame \(k) pixel \(p): \(c) is not label 0 or 1")
                fromPalette[p] = c == (128, 0, 0) ? 1 : 0
            }
            XCTAssertEqual(try BinaryMask(width: w, height: h, values: fromPalette), mask, "\(label) frame \(k): palette PNG ≠ JSON")
            // Today's per-frame mask files are still written.
            let old = try BinaryMask(png: [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(label)-masks/mask_\(String(format: "%04d", k)).png"))))
            XCTAssertEqual(old, mask)
        }
        // The overlay video reads back with every frame.
        let overlay = try VideoReader(path: "\(dir)/\(label)-overlay.mp4")
        XCTAssertEqual([overlay.info.width, overlay.info.height], [w, h])
        XCTAssertEqual(try overlay.skipToEnd(), Self.videoFrames)
        // How well the mask follows the pan (frame 0's mask moved by the pan): printed, not
        // asserted — today's tracker drifts (issue 10, item 1, has the test that fails on it).
        // Measured with LiteMedSAM: 0.79, 0.58, 0.26, 0.15, 0.08 for frames 1–5.
        for k in 1..<masks.count {
            let expected = try shifted(masks[0], dx: -Self.videoPan * k, dy: -2 * k)
            print("\(label) frame \(k): IoU with frame 0's mask moved by the pan \(String(format: "%.3f", maskIoU(masks[k], expected)))")
        }
        return masks
    }

    func testTrackAVideoFileInProcessAndOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-videotrack-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let video = "\(dir)/pan.mp4"
        _ = try makePanVideo(video)
        var results: [[BinaryMask]] = []
        // --send-ahead 2 < 6 frames: the streaming client pulls frames as answers come back.
        for (label, route) in [("local", ["--in-process"]), ("kafka", ["--timeout", "120", "--send-ahead", "2"])] {
            let started = Date()
            let r = try run(["track", video, "--box", Self.videoBox, "--palette-dir", "\(dir)/\(label)-palette", "--json", "\(dir)/\(label).json",
                             "--overlay-video", "\(dir)/\(label)-overlay.mp4", "--out-dir", "\(dir)/\(label)-masks"] + route, timeout: 300)
            XCTAssertEqual(r.status, 0, r.output)
            print("track \(label): \(String(format: "%.1f", Date().timeIntervalSince(started))) s for \(Self.videoFrames) frames")
            XCTAssertTrue(r.output.contains("wrote overlay video: \(dir)/\(label)-overlay.mp4 (\(Self.videoFrames) frames)"), r.output)
            results.append(try checkVideoTrackOutputs(dir: dir, label: label, video: video))
        }
        for (k, (a, b)) in zip(results[0], results[1]).enumerated() {
            XCTAssertGreaterThanOrEqual(maskIoU(a, b), Self.wireVersusInProcessIoU, "frame \(k): Kafka vs in-process")
        }
    }

    /// A directory of frames named frame0 … frame5 (natural order matters past frame9 in
    /// general; here frame names must map to palette PNG names) tracks like the video.
    func testTrackADirectoryOfFramesWritesPalettePNGsByFrameName() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-frametrack-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: "\(dir)/frames", withIntermediateDirectories: true)
        let frames = try makePanVideo("\(dir)/unused.mkv")
        for (k, f) in frames.prefix(3).enumerated() { try PNG.write(f, toFile: "\(dir)/frames/frame\(k).png") }
        let r = try run(["track", "\(dir)/frames", "--box", Self.videoBox, "--in-process", "--palette-dir", "\(dir)/p", "--json", "\(dir)/t.json"],
                        timeout: 200)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/p").sorted(), ["frame0.png", "frame1.png", "frame2.png"])
        let doc = try JSONDecoder().decode(TrackResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/t.json")))
        XCTAssertEqual(doc.source?.kind, "images")
        XCTAssertEqual(doc.frames.map(\.file), (0..<3).map { "\(dir)/frames/frame\($0).png" })
        XCTAssertEqual(doc.frames.map(\.pts), [nil, nil, nil])
        // Single-object frames keep version 1's frame-level fields.
        XCTAssertEqual(doc.frames.map(\.segmentation), doc.frames.map { $0.objects[0].segmentation })
    }

    /// A video cut short: `--corrupt-frames fail` (default) stops with exit 1 naming the
    /// file and frame, writing no overlay video; `skip` tracks the frames before the cut and
    /// warns on stderr.
    func testTruncatedVideoFailsByDefaultAndSkipsOnRequest() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-trackcut-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let full = "\(dir)/full.mp4", cut = "\(dir)/cut.mp4"
        _ = try makePanVideo(full, count: 16, pan: 4, dy: 1)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        // The key frame can be three quarters of such a file: pick the longest cut (95 %,
        // 90 %, …) after which some frames, but not all, still decode.
        var kept = 0
        for percent in stride(from: 95, to: 50, by: -5) {
            try bytes.prefix(bytes.count * percent / 100).write(to: URL(fileURLWithPath: cut))
            let r = try VideoReader(path: cut, options: .init(corruptData: .skip))
            kept = (try? r.skipToEnd()) ?? 0
            if kept > 0 && kept < 16 { break }
        }
        XCTAssertTrue(kept > 0 && kept < 16, "no cut leaves a partial video (\(kept) frames)")
        let strict = try run(["track", cut, "--box", Self.videoBox, "--in-process", "--json", "\(dir)/a.json",
                              "--overlay-video", "\(dir)/a.mp4"], timeout: 200)
        XCTAssertEqual(strict.status, 1, strict.output)
        XCTAssertTrue(strict.output.contains("\(cut): corrupt or truncated video data at frame"), strict.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/a.mp4"), "a failed run left an overlay video")
        let lenient = try run(["track", cut, "--box", Self.videoBox, "--in-process", "--json", "\(dir)/b.json",
                               "--corrupt-frames", "skip"], timeout: 200)
        XCTAssertEqual(lenient.status, 0, lenient.output)
        XCTAssertTrue(lenient.output.contains("segflow: skipped: \(cut): corrupt or truncated"), lenient.output)
        let doc = try JSONDecoder().decode(TrackResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/b.json")))
        XCTAssertGreaterThan(doc.frames.count, 0)
        XCTAssertLessThanOrEqual(doc.frames.count, kept, "skip mode tracks at most the frames VideoReader salvages")
        // Nothing decodable at all: an error, not an empty success.
        try bytes.prefix(bytes.count / 10).write(to: URL(fileURLWithPath: cut))
        let nothing = try run(["track", cut, "--box", Self.videoBox, "--in-process", "--json", "\(dir)/c.json", "--corrupt-frames", "skip"], timeout: 200)
        XCTAssertNotEqual(nothing.status, 0, nothing.output)
        XCTAssertTrue(nothing.output.contains("no frame could be decoded"), nothing.output)
    }

    /// Inputs that are not frames are usage errors (exit 64) naming the file; --help
    /// documents inputs and outputs.
    func testTrackRefusesNonVideoInputAndExplainsItself() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-trackbad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("not a video at all\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.mp4"))
        let bad = try run(["track", "\(dir)/notes.mp4", "--box", "1,1,5,5", "--in-process", "--json", "\(dir)/t.json"], timeout: 60)
        XCTAssertEqual(bad.status, 64, bad.output)
        XCTAssertTrue(bad.output.contains("\(dir)/notes.mp4 is not a video"), bad.output)
        let noOutput = try run(["track", "\(dir)/notes.mp4", "--box", "1,1,5,5"], timeout: 60)
        XCTAssertEqual(noOutput.status, 64, noOutput.output)
        XCTAssertTrue(noOutput.output.contains("give at least one output"), noOutput.output)
        let help = try run(["track", "--help"], timeout: 60)
        XCTAssertEqual(help.status, 0)
        for word in ["video file", "directory of frame images", "--palette-dir", "--overlay-video", "DAVIS", "--json", "--corrupt-frames"] {
            XCTAssertTrue(help.output.contains(word), "track --help does not mention \(word)")
        }
    }
}
