import Imaging
import XCTest

final class MaskOverlayTests: XCTestCase {
    private func square(width: Int, height: Int, x0: Int, y0: Int, size: Int) throws -> BinaryMask {
        var mask = try BinaryMask(width: width, height: height)
        for y in y0..<(y0 + size) { for x in x0..<(x0 + size) { mask[x, y] = true } }
        return mask
    }

    func testMaskPNGIsGray0And255AndReadsBack() throws {
        let mask = try square(width: 10, height: 8, x0: 2, y0: 3, size: 4)
        let png = try mask.pngData()
        XCTAssertEqual(png[25], 0, "gray colour type")
        let decoded = try PNG.decodeRGB(png)
        XCTAssertEqual(Set(decoded.pixels), [0, 255])
        XCTAssertEqual(try BinaryMask(png: png), mask)
        XCTAssertEqual(mask.area, 16)
        XCTAssertEqual(mask.boundingBox, BoundingBox(x: 2, y: 3, width: 4, height: 4))
        try PNGEncodeTests.export(png, raw: mask.grayImage().pixels, mode: "L", width: 10, height: 8, name: "mask_square")
    }

    func testMaskFromLogitsAndGray() throws {
        let mask = try BinaryMask(width: 2, height: 2, logits: [-1, 0, 0.5, .nan])
        XCTAssertEqual(mask.bits, [0, 0, 1, 0])
        let gray = try GrayImage(width: 2, height: 2, pixels: [0, 1, 200, 255])
        XCTAssertEqual(BinaryMask(gray, threshold: 127).bits, [0, 0, 1, 1])
        XCTAssertEqual(BinaryMask(gray).bits, [0, 1, 1, 1])
        XCTAssertThrowsError(try BinaryMask(width: 2, height: 2, logits: [0])) {
            XCTAssertEqual($0 as? ImagingError, .bufferSizeMismatch(expected: 4, actual: 1))
        }
    }

    func testEmptyMaskBoxIsZero() throws {
        XCTAssertEqual(try BinaryMask(width: 5, height: 5).boundingBox, BoundingBox(x: 0, y: 0, width: 0, height: 0))
    }

    func testOverlayBlendsAndOutlines() throws {
        let image = try RGBImage(width: 12, height: 10, fill: (100, 100, 100))
        let a = try square(width: 12, height: 10, x0: 1, y0: 1, size: 5)
        let b = try square(width: 12, height: 10, x0: 6, y0: 4, size: 5)
        let out = try Overlay.render(image, masks: [a, b])
        let ca = Overlay.palette[0], cb = Overlay.palette[1]
        // Interior of a: 0.5·100 + 0.5·colour, rounded.
        let blendA = (UInt8((50 + Float(ca.r) / 2).rounded()), UInt8((50 + Float(ca.g) / 2).rounded()), UInt8((50 + Float(ca.b) / 2).rounded()))
        XCTAssertTrue(out[3, 3] == blendA, "\(out[3, 3])")
        // Boundary pixels are the mask colour, fully opaque.
        XCTAssertTrue(out[1, 1] == (ca.r, ca.g, ca.b))
        XCTAssertTrue(out[10, 8] == (cb.r, cb.g, cb.b))
        // Outside every mask the image is untouched.
        XCTAssertTrue(out[11, 0] == (100, 100, 100))
        // Without outline, the border pixel is blended like the interior.
        let plain = try Overlay.render(image, masks: [a], options: .init(outline: false))
        XCTAssertTrue(plain[1, 1] == blendA)
        XCTAssertEqual(Overlay.boundary(of: a).count, 16) // perimeter of a 5×5 square
        // Colours are distinct across the palette.
        XCTAssertEqual(Set(Overlay.palette.map { [$0.r, $0.g, $0.b] }).count, Overlay.palette.count)
        try PNGEncodeTests.export(PNG.encode(out), raw: out.pixels, mode: "RGB", width: 12, height: 10, name: "overlay")
    }

    func testOverlayRejectsSizeMismatch() throws {
        let image = try RGBImage(width: 4, height: 4)
        let mask = try BinaryMask(width: 4, height: 5)
        XCTAssertThrowsError(try Overlay.render(image, masks: [mask])) {
            XCTAssertEqual($0 as? ImagingError, .sizeMismatch(expectedWidth: 4, expectedHeight: 4, width: 4, height: 5))
        }
    }
}
