import Foundation
import Imaging
import Pipeline
import Video
import XCTest

final class FrameSourceTests: XCTestCase {
    func testNaturalOrder() {
        let names = ["frame10.png", "frame2.png", "frame1.png", "frame02.png", "Frame3.png", "frame100.png", "frame9.jpg", "a", "00010.png", "00009.png"]
        XCTAssertEqual(names.sorted(by: NaturalOrder.areInIncreasingOrder),
                       ["00009.png", "00010.png", "Frame3.png", "a", "frame1.png", "frame02.png", "frame2.png", "frame9.jpg", "frame10.png", "frame100.png"])
        // Digit runs longer than any integer still compare by value.
        XCTAssertTrue(NaturalOrder.areInIncreasingOrder("x99999999999999999999999", "x100000000000000000000000"))
        XCTAssertFalse(NaturalOrder.areInIncreasingOrder("same", "same"))
    }

    /// A directory of frames: natural order (frame2 before frame10), non-images skipped
    /// with a note, stems for the per-frame outputs.
    func testDirectoryOfFramesInNaturalOrder() throws {
        let dir = try temporaryDirectory("frames-dir")
        let frames = try panFrames(width: 20, height: 10, count: 12)
        for (i, f) in frames.enumerated() { try PNG.write(f, toFile: "\(dir)/frame\(i).png") }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(dir)/readme.txt"))
        let source = try FrameSource([dir])
        guard case .images = source.kind else { return XCTFail("\(source.kind)") }
        XCTAssertEqual(source.count, 12)
        XCTAssertEqual(source.notes.count, 1)
        XCTAssertTrue(source.notes[0].contains("readme.txt"), source.notes[0])
        var got: [SourceFrame] = []
        while let f = try source.next() { got.append(f) }
        XCTAssertEqual(got.map(\.stem), (0..<12).map { "frame\($0)" }, "frame2 must come before frame10")
        XCTAssertEqual(got.map(\.image), frames)
        XCTAssertEqual(got.map(\.index), Array(0..<12))
        XCTAssertTrue(got.allSatisfy { $0.pts == nil && $0.fileBytes != nil })
    }

    func testGlobAndExplicitList() throws {
        let dir = try temporaryDirectory("frames-glob")
        let frames = try panFrames(width: 16, height: 8, count: 3)
        for (i, name) in ["f10", "f9", "f1"].enumerated() { try PNG.write(frames[i], toFile: "\(dir)/\(name).png") }
        let globbed = try FrameSource(["\(dir)/f*.png"])
        var stems: [String] = []
        while let f = try globbed.next() { stems.append(f.stem) }
        XCTAssertEqual(stems, ["f1", "f9", "f10"])
        // Named files keep the order given.
        let listed = try FrameSource(["\(dir)/f10.png", "\(dir)/f1.png"])
        stems = []
        while let f = try listed.next() { stems.append(f.stem) }
        XCTAssertEqual(stems, ["f10", "f1"])
    }

    /// Told apart by content: a video named .png is still a video.
    func testVideoIsRecognisedByContentNotName() throws {
        let dir = try temporaryDirectory("frames-video")
        let path = "\(dir)/misnamed.png"
        let w = try VideoWriter(path: "\(dir)/clip.mkv", width: 32, height: 16)
        for f in try panFrames(width: 32, height: 16, count: 5) { try w.write(f) }
        try w.finish()
        try FileManager.default.moveItem(atPath: "\(dir)/clip.mkv", toPath: path)
        let source = try FrameSource([path])
        guard case .video(let info) = source.kind else { return XCTFail("\(source.kind)") }
        XCTAssertEqual(info.codec, "h264")
        var frames: [SourceFrame] = []
        while let f = try source.next() { frames.append(f) }
        XCTAssertEqual(frames.count, 5)
        XCTAssertEqual(frames.map(\.stem), ["00000", "00001", "00002", "00003", "00004"])
        XCTAssertEqual(frames[3].name, "\(path)#3")
        XCTAssertNil(frames[0].fileBytes)
        XCTAssertEqual(frames[1].pts ?? -1, 1.0 / 25, accuracy: 1e-9)
    }

    func testBadCombinationsAreErrorsNamingTheInput() throws {
        let dir = try temporaryDirectory("frames-bad")
        let frames = try panFrames(width: 16, height: 8, count: 1)
        try PNG.write(frames[0], toFile: "\(dir)/a.png")
        try PNG.write(try RGBImage(width: 8, height: 8), toFile: "\(dir)/b.png")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.txt"))
        // A non-image file among several inputs.
        XCTAssertThrowsError(try FrameSource(["\(dir)/a.png", "\(dir)/notes.txt"])) { e in
            XCTAssertTrue("\(e)".contains("notes.txt"), "\(e)")
        }
        // A single non-image, non-video file: the video reader's error names it.
        XCTAssertThrowsError(try FrameSource(["\(dir)/notes.txt"])) { e in
            guard case .notAVideo(let p, _)? = e as? VideoError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, "\(dir)/notes.txt")
        }
        XCTAssertThrowsError(try FrameSource(["\(dir)/missing.mp4"])) { e in
            XCTAssertTrue("\(e)".contains("missing.mp4"), "\(e)")
        }
        // Frames of different sizes: the second is named.
        let mixed = try FrameSource(["\(dir)/a.png", "\(dir)/b.png"])
        XCTAssertNotNil(try mixed.next())
        XCTAssertThrowsError(try mixed.next()) { e in
            XCTAssertTrue("\(e)".contains("b.png") && "\(e)".contains("8x8") && "\(e)".contains("16x8"), "\(e)")
        }
        XCTAssertThrowsError(try FrameSource(["\(dir)/a.png", "\(dir)/b.png"], videoOptions: .init(maxFrames: 1))) { e in
            XCTAssertTrue("\(e)".contains("limit of 1"), "\(e)")
        }
    }
}
