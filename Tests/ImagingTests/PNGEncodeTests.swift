import Foundation
import Imaging
import Tensor
import XCTest

/// Encode → decode round trips through libpng. When SEGFLOW_IMAGING_EXPORT_DIR is
/// set, the encoded PNGs and their source pixels are also written there so
/// Tests/Reference/make_png_fixtures.py --verify-swift can check them with PIL.
final class PNGEncodeTests: XCTestCase {
    private var rng = SplitMix64(seed: 42)

    private func randomBytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    func testGrayRoundTrip() throws {
        for (w, h) in [(1, 1), (13, 7), (64, 3)] {
            let gray = try GrayImage(width: w, height: h, pixels: randomBytes(w * h))
            let png = try PNG.encode(gray)
            XCTAssertEqual(png[25], 0, "IHDR colour type must be gray")
            XCTAssertEqual(try PNG.readHeader(png).bitDepth, 8)
            let decoded = try PNG.decodeRGB(png)
            XCTAssertEqual(decoded.pixels, gray.pixels.flatMap { [$0, $0, $0] }, "\(w)x\(h)")
            try export(png, raw: gray.pixels, mode: "L", width: w, height: h, name: "gray_\(w)x\(h)")
        }
    }

    func testRGBRoundTrip() throws {
        for (w, h) in [(1, 1), (17, 11), (100, 37)] {
            let rgb = try RGBImage(width: w, height: h, pixels: randomBytes(w * h * 3))
            let png = try PNG.encode(rgb)
            XCTAssertEqual(png[25], 2, "IHDR colour type must be RGB")
            XCTAssertEqual(try PNG.decodeRGB(png), rgb, "\(w)x\(h)")
            try export(png, raw: rgb.pixels, mode: "RGB", width: w, height: h, name: "rgb_\(w)x\(h)")
        }
    }

    /// Alpha is written (colour type 6); decoding to RGB drops it without compositing.
    func testRGBARoundTrip() throws {
        let (w, h) = (19, 5)
        var pixels = randomBytes(w * h * 4)
        for p in 0..<(w * h) { pixels[p * 4 + 3] = [0, 1, 128, 255][p % 4] }
        let rgba = try RGBAImage(width: w, height: h, pixels: pixels)
        let png = try PNG.encode(rgba)
        XCTAssertEqual(png[25], 6, "IHDR colour type must be RGBA")
        XCTAssertEqual(try PNG.decodeRGB(png), rgba.rgb)
        XCTAssertEqual(rgba.rgb.withAlpha(7).rgb, rgba.rgb)
        try export(png, raw: pixels, mode: "RGBA", width: w, height: h, name: "rgba_\(w)x\(h)")
    }

    /// Incompressible data exercises the retry path when the first output buffer guess is too small.
    func testLargeIncompressibleImage() throws {
        let rgb = try RGBImage(width: 512, height: 512, pixels: randomBytes(512 * 512 * 3))
        let png = try PNG.encode(rgb)
        XCTAssertGreaterThan(png.count, rgb.pixels.count)
        XCTAssertEqual(try PNG.decodeRGB(png), rgb)
    }

    func testFileRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-imaging-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rgb = try RGBImage(width: 9, height: 4, pixels: randomBytes(9 * 4 * 3))
        let path = dir.appendingPathComponent("rgb.png").path
        try PNG.write(rgb, toFile: path)
        XCTAssertEqual(try PNG.decodeRGB(contentsOfFile: path), rgb)
        let gray = try GrayImage(width: 3, height: 2, pixels: [0, 255, 0, 255, 0, 255])
        let grayPath = dir.appendingPathComponent("gray.png").path
        try PNG.write(gray, toFile: grayPath)
        XCTAssertEqual(try PNG.decodeRGB(contentsOfFile: grayPath).pixels, gray.pixels.flatMap { [$0, $0, $0] })
        XCTAssertThrowsError(try PNG.write(gray, toFile: "/nonexistent-dir/x.png")) {
            guard case .fileIO = $0 as? ImagingError else { return XCTFail("\($0)") }
        }
    }

    func testImageInitValidatesSizes() {
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, pixels: [1, 2, 3])) {
            XCTAssertEqual($0 as? ImagingError, .bufferSizeMismatch(expected: 12, actual: 3))
        }
        XCTAssertThrowsError(try GrayImage(width: 0, height: 2, pixels: [])) {
            XCTAssertEqual($0 as? ImagingError, .invalidDimensions(width: 0, height: 2))
        }
        XCTAssertThrowsError(try RGBAImage(width: Int.max, height: 2, pixels: [])) {
            XCTAssertEqual($0 as? ImagingError, .invalidDimensions(width: Int.max, height: 2))
        }
        XCTAssertEqual(try RGBImage(width: 2, height: 1, fill: (1, 2, 3)).pixels, [1, 2, 3, 1, 2, 3])
    }

    private func export(_ png: [UInt8], raw: [UInt8], mode: String, width: Int, height: Int, name: String) throws {
        try Self.export(png, raw: raw, mode: mode, width: width, height: height, name: name)
    }

    static func export(_ png: [UInt8], raw: [UInt8], mode: String, width: Int, height: Int, name: String) throws {
        guard let dir = ProcessInfo.processInfo.environment["SEGFLOW_IMAGING_EXPORT_DIR"] else { return }
        let base = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try Data(png).write(to: base.appendingPathComponent("\(name).png"))
        try Data(raw).write(to: base.appendingPathComponent("\(name).raw"))
        // exports.json is rebuilt from the .raw/.meta files so parallel tests cannot clobber it.
        let meta = ["mode": mode, "width": width, "height": height] as [String: Any]
        try JSONSerialization.data(withJSONObject: meta).write(to: base.appendingPathComponent("\(name).meta"))
        var all: [String: Any] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) where file.hasSuffix(".meta") {
            let data = try Data(contentsOf: base.appendingPathComponent(file))
            all[String(file.dropLast(5))] = try JSONSerialization.jsonObject(with: data)
        }
        try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]).write(to: base.appendingPathComponent("exports.json"))
    }
}
