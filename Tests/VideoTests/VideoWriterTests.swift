import Foundation
import Imaging
import Video
import XCTest

/// VideoWriter → VideoReader round trips on panned crops of a photograph.
final class VideoWriterTests: XCTestCase {
    /// Lossy yuv420p at the default quality (x264 CRF 20): chroma is subsampled 2×2 and
    /// the pan has sharp fur, so PSNR, not equality. Measured ≈ 34–38 dB for libx264 on
    /// these crops; 30 dB fails a wrong colour matrix/range or a shifted frame.
    static let minimumPSNR = 30.0

    func roundTrip(width: Int, height: Int, count: Int, file: String, options: VideoWriter.Options = .init()) throws
        -> (written: [RGBImage], read: [VideoFrame], reader: VideoReader, writer: VideoWriter) {
        let dir = try temporaryDirectory("videowriter")
        let path = "\(dir)/\(file)"
        let frames = try panFrames(width: width, height: height, count: count)
        let writer = try VideoWriter(path: path, width: width, height: height, options: options)
        for f in frames { try writer.write(f) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the file must appear only on finish()")
        try writer.finish()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [file], "no partial file left behind")
        let reader = try VideoReader(path: path)
        let read = try readAll(reader)
        return (frames, read, reader, writer)
    }

    func checkQuality(_ written: [RGBImage], _ read: [VideoFrame], minimum: Double = minimumPSNR, label: String) {
        var worst = Double.infinity
        for (w, r) in zip(written, read) {
            // Odd sizes come back padded by one column/row: compare the original area.
            let cropped = crop(r.image, width: w.width, height: w.height)
            let p = psnr(w, cropped)
            worst = min(worst, p)
            XCTAssertGreaterThanOrEqual(p, minimum, "\(label) frame \(r.index)")
        }
        print("\(label): worst PSNR \(String(format: "%.2f", worst)) dB over \(read.count) frames")
    }

    func crop(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        if image.width == width && image.height == height { return image }
        var px = [UInt8]()
        for y in 0..<height { px += image.pixels[(y * image.width * 3)..<(y * image.width * 3 + width * 3)] }
        return try! RGBImage(width: width, height: height, pixels: px)
    }

    func testH264MP4RoundTripKeepsCountTimingAndPixels() throws {
        let (written, read, reader, writer) = try roundTrip(width: 96, height: 64, count: 15, file: "pan.mp4",
                                                           options: .init(frameRate: 12))
        XCTAssertEqual(writer.encoderName, "libx264", "Debian's libavcodec has libx264; this build should use it")
        XCTAssertEqual(reader.info.codec, "h264")
        XCTAssertEqual(reader.info.frameCount, 15)
        XCTAssertEqual(reader.info.frameRate ?? 0, 12, accuracy: 1e-9)
        XCTAssertEqual(reader.info.duration ?? 0, 15.0 / 12, accuracy: 1e-6)
        XCTAssertEqual(read.count, 15)
        for f in read { XCTAssertEqual(f.pts ?? -1, Double(f.index) / 12, accuracy: 1e-9, "pts of frame \(f.index)") }
        checkQuality(written, read, label: "libx264 96x64")
    }

    /// yuv420p needs even sizes: 37×23 is written as 38×24, the last column/row repeated.
    func testOddSizeIsPaddedToEven() throws {
        let (written, read, reader, writer) = try roundTrip(width: 37, height: 23, count: 4, file: "odd.mp4")
        XCTAssertEqual([writer.encodedWidth, writer.encodedHeight], [38, 24])
        XCTAssertEqual([reader.info.width, reader.info.height], [38, 24])
        XCTAssertEqual(read.count, 4)
        checkQuality(written, read, label: "odd size")
        // The padding repeats the edge: column 37 ≈ column 36 (lossy, so a bound, not equality).
        let f = read[0].image
        var diff = 0
        for y in 0..<23 { for c in 0..<3 { diff = max(diff, abs(Int(f.pixels[(y * 38 + 37) * 3 + c]) - Int(f.pixels[(y * 38 + 36) * 3 + c]))) } }
        XCTAssertLessThan(diff, 40, "the padded column is not a copy of the last one")
    }

    func testPaddingRepeatsTheLastColumnAndRow() throws {
        let image = try RGBImage(width: 3, height: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let padded = try VideoWriter.paddedToEven(image)
        XCTAssertEqual(padded.width, 4); XCTAssertEqual(padded.height, 2)
        XCTAssertEqual(padded.pixels, [1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9,
                                       1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9])
    }

    func testOtherContainersAndCodecs() throws {
        for (file, codec, expectCodec) in [("pan.mkv", VideoWriter.Codec.automatic, "h264"), ("pan.avi", .mpeg4, "mpeg4"),
                                           ("pan.webm", .automatic, "vp9"), ("pan.mov", .automatic, "h264")] {
            let (written, read, reader, _) = try roundTrip(width: 64, height: 48, count: 6, file: file, options: .init(codec: codec))
            XCTAssertEqual(reader.info.codec, expectCodec, file)
            XCTAssertEqual(read.count, 6, file)
            // MPEG-4 Part 2 and realtime VP9 are coarser than x264 at these settings (measured ≈ 28–33 dB).
            checkQuality(written, read, minimum: expectCodec == "h264" ? Self.minimumPSNR : 25, label: file)
        }
    }

    func testWriterErrorsNameTheFile() throws {
        let dir = try temporaryDirectory("videowriter-errors")
        XCTAssertThrowsError(try VideoWriter(path: "\(dir)/x.unknownext", width: 8, height: 8)) { e in
            guard case .writeFailed(let p, _)? = e as? VideoError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, "\(dir)/x.unknownext")
        }
        XCTAssertThrowsError(try VideoWriter(path: "\(dir)/no/such/dir/x.mp4", width: 8, height: 8)) { e in
            XCTAssertTrue("\(e)".contains("no/such/dir/x.mp4"), "\(e)")
        }
        let w = try VideoWriter(path: "\(dir)/size.mp4", width: 16, height: 16)
        XCTAssertThrowsError(try w.write(try RGBImage(width: 8, height: 8))) { e in
            XCTAssertEqual(e as? VideoError, .frameSizeChanged(path: "\(dir)/size.mp4", frameIndex: 0, expected: "16x16", got: "8x8"))
        }
        XCTAssertThrowsError(try w.finish()) { e in XCTAssertEqual(e as? VideoError, .writerClosed(path: "\(dir)/size.mp4")) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "a failed writer leaves no file")
    }

    /// A writer dropped without finish() (a failed run) leaves nothing behind.
    func testAbandonedWriterRemovesItsPartialFile() throws {
        let dir = try temporaryDirectory("videowriter-abandon")
        do {
            let w = try VideoWriter(path: "\(dir)/a.mp4", width: 32, height: 32)
            try w.write(try RGBImage(width: 32, height: 32, fill: (200, 10, 10)))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
