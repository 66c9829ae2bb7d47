import Foundation
import Imaging
import Pipeline
import Video
import XCTest

/// Independent readers of what Segflow writes, run when SEGFLOW_REFERENCE_PYTHON names a
/// Python with av, pillow, numpy and pycocotools (skipped otherwise; the committed
/// goldens of VideoReaderReferenceTests and TrackOutputTests run everywhere):
/// PyAV decodes VideoWriter's files, PIL opens the palette PNGs, pycocotools decodes the
/// track JSON's RLE.
final class VideoReferenceTests: XCTestCase {
    // Same decoded YUV on both sides; the RGB conversion differs between libswscale 6.7
    // and PyAV's 9.x as measured in VideoReaderReferenceTests, so its tolerances apply.

    func testPyAVReadsWhatVideoWriterWrites() throws {
        _ = try referencePython()
        let dir = try temporaryDirectory("ref-video")
        for (file, w, h) in [("a.mp4", 64, 48), ("odd.mkv", 37, 23), ("b.webm", 48, 32)] {
            let path = "\(dir)/\(file)"
            let writer = try VideoWriter(path: path, width: w, height: h, options: .init(frameRate: 10))
            for f in try panFrames(width: w, height: h, count: 7) { try writer.write(f) }
            try writer.finish()
            let ours = try readAll(VideoReader(path: path))
            let py = try runReference(["--check-video", path]) as? [String: Any] ?? [:]
            XCTAssertEqual(py["count"] as? Int, 7, file)
            XCTAssertEqual(py["width"] as? Int, writer.encodedWidth, file)
            XCTAssertEqual(py["height"] as? Int, writer.encodedHeight, file)
            let pts = (py["pts"] as? [Double]) ?? []
            XCTAssertEqual(pts.count, ours.count)
            for (a, b) in zip(ours, pts) { XCTAssertEqual(a.pts ?? -1, b, accuracy: 1e-9, "\(file) pts") }
            let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".pyav.rgb")))
            let n = writer.encodedWidth * writer.encodedHeight * 3
            XCTAssertEqual(raw.count, n * ours.count)
            var worst = 0, worstMean = 0.0
            for (i, f) in ours.enumerated() where raw.count >= (i + 1) * n {
                let theirs = try RGBImage(width: writer.encodedWidth, height: writer.encodedHeight, pixels: Array(raw[(i * n)..<((i + 1) * n)]))
                let d = difference(f.image, theirs)
                worst = max(worst, d.max); worstMean = max(worstMean, d.mean)
            }
            XCTAssertLessThanOrEqual(worst, VideoReaderReferenceTests.referenceMaxTolerance, "\(file): VideoReader and PyAV disagree")
            XCTAssertLessThanOrEqual(worstMean, VideoReaderReferenceTests.referenceMeanTolerance, "\(file): VideoReader and PyAV disagree")
            print("\(file): PyAV reads \(py["count"] ?? "?") frames (\(py["codec"] ?? "?")), vs VideoReader max |Δ| \(worst), worst frame mean \(String(format: "%.3f", worstMean))")
        }
    }

    func testPILOpensPalettePNGAsModeP() throws {
        _ = try referencePython()
        let dir = try temporaryDirectory("ref-palette")
        var v = [UInt8](repeating: 0, count: 33 * 19)
        for i in v.indices { v[i] = UInt8((i * 7) % 256) }  // every index 0…255 appears
        let map = try LabelMap(width: 33, height: 19, labels: v)
        try PNG.writeIndexed(map, toFile: "\(dir)/p.png")
        let py = try runReference(["--check-palette-png", "\(dir)/p.png"]) as? [String: Any] ?? [:]
        XCTAssertEqual(py["mode"] as? String, "P")
        XCTAssertEqual(py["format"] as? String, "PNG")
        XCTAssertEqual(py["width"] as? Int, 33)
        XCTAssertEqual(py["height"] as? Int, 19)
        XCTAssertEqual(py["palette"] as? [Int], DAVISPalette.colors.flatMap { [Int($0.r), Int($0.g), Int($0.b)] })
        XCTAssertEqual(py["labels"] as? [Int], v.map(Int.init))
    }

    func testPycocotoolsDecodesTheTrackJSON() throws {
        _ = try referencePython()
        let dir = try temporaryDirectory("ref-rle")
        let frames = try panFrames(width: 45, height: 29, count: 3)
        let outputs = try TrackOutputs(options: .init(json: "\(dir)/t.json"), model: "m", streamID: "s", source: nil)
        var expected: [[Any]] = []
        for (i, f) in frames.enumerated() {
            // Masks from the pixels themselves (bright fur), different per frame and object.
            let objs = try [1, 2].map { id -> TrackedObject in
                let values = (0..<(45 * 29)).map { p in f.pixels[p * 3 + id - 1] > UInt8(100 + 20 * id) ? UInt8(1) : 0 }
                return TrackedObject(id: id, mask: try BinaryMask(width: 45, height: 29, values: values), score: nil)
            }
            try outputs.add(SourceFrame(index: i, pts: nil, image: f, name: "f\(i)", stem: "f\(i)", fileBytes: nil), objects: objs)
            for o in objs {
                let b = COCORLE(mask: o.mask).boundingBox
                expected.append([i, o.id, o.mask.area, [b.x, b.y, b.width, b.height], o.mask.bits.map { $0 != 0 ? 1 : 0 }])
            }
        }
        try outputs.finish(lostAfterFrame: nil)
        let py = try runReference(["--check-rle", "\(dir)/t.json"]) as? [[Any]] ?? []
        XCTAssertEqual(py.count, expected.count)
        for (p, e) in zip(py, expected) {
            XCTAssertEqual(p[0] as? Int, e[0] as? Int)
            XCTAssertEqual(p[1] as? Int, e[1] as? Int)
            XCTAssertEqual(p[2] as? Int, e[2] as? Int, "mask area by pycocotools' decode")
            XCTAssertEqual(p[3] as? Int, e[2] as? Int, "pycocotools' area()")
            XCTAssertEqual(p[4] as? [Int], e[3] as? [Int], "toBbox")
            XCTAssertEqual(p[5] as? [Int], e[4] as? [Int], "decoded mask, row-major")
        }
    }
}

