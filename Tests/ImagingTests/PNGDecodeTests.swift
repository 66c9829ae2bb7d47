import Foundation
import Imaging
import XCTest

/// Decoded bytes must equal PIL's `Image.open(f).convert("RGB")` for every colour
/// type, bit depth, tRNS form, interlacing and gAMA case in the fixtures.
final class PNGDecodeTests: XCTestCase {
    func testEveryFixtureMatchesPIL() throws {
        let cases = try Fixtures.pngCases()
        XCTAssertGreaterThanOrEqual(cases.count, 25)
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            let png = try Fixtures.bytes(c.png)
            let expected = try Fixtures.bytes(c.rgb)
            let image = try PNG.decodeRGB(png)
            assertGeometry(image, width: c.width, height: c.height, bytes: expected.count, name)
            if image.pixels != expected {
                let first = zip(image.pixels, expected).enumerated().first { $0.element.0 != $0.element.1 }
                XCTFail("\(name) (PIL mode \(c.pil_mode)): first mismatch at byte \(first?.offset ?? -1): "
                        + "got \(first?.element.0 ?? 0), PIL \(first?.element.1 ?? 0)")
            }
        }
    }

    /// The behaviours the fixtures exist to pin down, spelled out on one pixel each.
    func testSixteenBitAndAlphaSemantics() throws {
        // 16-bit gray: min(v, 255) (PIL I;16 saturation), not v >> 8.
        let g16 = PNGBuilder.png(width: 3, height: 1, bitDepth: 16, colorType: 0,
                                 idat: PNGBuilder.zlibStored([0, 0x00, 0x64, 0x01, 0x00, 0xFF, 0xFF]))
        XCTAssertEqual(try PNG.decodeRGB(g16).pixels, [100, 100, 100, 255, 255, 255, 255, 255, 255])
        // 16-bit RGB: high byte.
        let rgb16 = PNGBuilder.png(width: 1, height: 1, bitDepth: 16, colorType: 2,
                                   idat: PNGBuilder.zlibStored([0, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF]))
        XCTAssertEqual(try PNG.decodeRGB(rgb16).pixels, [0x12, 0xAB, 0x00])
        // RGBA8 with alpha 0: colour kept, alpha dropped (no compositing onto black/white).
        let rgba = PNGBuilder.png(width: 1, height: 1, bitDepth: 8, colorType: 6,
                                  idat: PNGBuilder.zlibStored([0, 200, 100, 50, 0]))
        XCTAssertEqual(try PNG.decodeRGB(rgba).pixels, [200, 100, 50])
    }

    func testDecodeFromDataAndFileAgree() throws {
        let url = try Fixtures.url("interlaced_rgba16.png")
        let fromFile = try PNG.decodeRGB(contentsOfFile: url.path)
        let fromData = try PNG.decodeRGB(Data(contentsOf: url))
        let fromBytes = try PNG.decodeRGB(Fixtures.bytes("interlaced_rgba16.png"))
        XCTAssertEqual(fromFile, fromData)
        XCTAssertEqual(fromFile, fromBytes)
        XCTAssertEqual(fromFile.pixels, try Fixtures.bytes("interlaced_rgba16.rgb"))
    }

    func testMissingFileIsFileIOError() {
        XCTAssertThrowsError(try PNG.decodeRGB(contentsOfFile: "/nonexistent/segflow.png")) { error in
            guard case ImagingError.fileIO(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/segflow.png")
        }
    }

    func testReadHeader() throws {
        let header = try PNG.readHeader(Fixtures.bytes("interlaced_palette4_trns.png"))
        XCTAssertEqual(header.width, 17)
        XCTAssertEqual(header.height, 11)
        XCTAssertEqual(header.bitDepth, 4)
        XCTAssertEqual(header.colorType, 3)
        XCTAssertTrue(header.interlaced)
    }
}
