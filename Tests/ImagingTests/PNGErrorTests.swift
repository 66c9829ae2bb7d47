import Foundation
import Imaging
import Tensor
import XCTest

/// Hostile input: every case must end in a specific `ImagingError`, never a crash.
final class PNGErrorTests: XCTestCase {
    func testEmptyInput() {
        XCTAssertThrowsError(try PNG.decodeRGB([UInt8]())) { XCTAssertEqual($0 as? ImagingError, .emptyInput) }
        XCTAssertThrowsError(try PNG.decodeRGB(Data())) { XCTAssertEqual($0 as? ImagingError, .emptyInput) }
    }

    func testNonPNGBytes() {
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0x49, 0x46]
        XCTAssertThrowsError(try PNG.decodeRGB(jpeg)) {
            XCTAssertEqual($0 as? ImagingError, .notPNG(prefix: Array(jpeg.prefix(8))))
            XCTAssertTrue(String(describing: $0).contains("ff d8 ff e0"), String(describing: $0))
        }
        XCTAssertThrowsError(try PNG.decodeRGB(Array("hello".utf8))) {
            XCTAssertEqual($0 as? ImagingError, .notPNG(prefix: Array("hello".utf8)))
        }
        // Just the signature: passes the signature check, then libpng runs out of bytes.
        XCTAssertThrowsError(try PNG.decodeRGB(PNG.signature)) {
            guard case .truncated(let count, _) = $0 as? ImagingError else { return XCTFail("\($0)") }
            XCTAssertEqual(count, 8)
        }
    }

    /// Every prefix of a few fixtures: the signature, IHDR, IDAT, and the IDAT/IEND boundary.
    func testTruncatedAtEveryOffset() throws {
        for name in ["rgb8", "interlaced_rgba16", "palette4_trns", "gray16"] {
            let png = try Fixtures.bytes("\(name).png")
            let iend = 12 // IEND is length(4) + type(4) + crc(4), no data
            var truncatedErrors = 0
            for cut in 0..<png.count {
                let prefix = Array(png[..<cut])
                let error = assertSucceedsOrImagingError("\(name) cut at \(cut)") { _ = try PNG.decodeRGB(prefix) }
                switch error {
                case .emptyInput?: XCTAssertEqual(cut, 0)
                case .notPNG?: XCTAssertLessThan(cut, 8, "\(name) cut at \(cut)")
                case .truncated(let count, _)?:
                    XCTAssertEqual(count, cut)
                    truncatedErrors += 1
                case nil:
                    // Like PIL, a stream is complete once the image data is; only IEND may be missing.
                    XCTAssertGreaterThanOrEqual(cut, png.count - iend, "\(name) decoded although cut at \(cut)")
                case let other?: XCTFail("\(name) cut at \(cut): \(other)")
                }
            }
            XCTAssertGreaterThan(truncatedErrors, png.count - 8 - iend - 16, name)
        }
    }

    func testCorruptCriticalChunkCRC() throws {
        var png = try Fixtures.bytes("rgb8.png")
        png[8 + 8 + 3] ^= 0x01 // inside IHDR data (the width)
        XCTAssertThrowsError(try PNG.decodeRGB(png)) {
            guard case .corrupt(let message) = $0 as? ImagingError else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("CRC"), message)
        }
    }

    func testCorruptIDATCRC() throws {
        var png = try Fixtures.bytes("rgb8.png")
        let idat = try XCTUnwrap(indexOf("IDAT", in: png))
        png[idat + 6] ^= 0x40
        XCTAssertThrowsError(try PNG.decodeRGB(png)) {
            guard case .corrupt(let message) = $0 as? ImagingError else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("CRC"), message)
        }
    }

    /// PIL rejects a bad CRC on an ancillary chunk (gAMA here); so do we.
    func testCorruptAncillaryCRCIsRejectedLikePIL() throws {
        var png = try Fixtures.bytes("rgb8_gamma1.png")
        let gama = try XCTUnwrap(indexOf("gAMA", in: png))
        png[gama + 5] ^= 0x01
        XCTAssertThrowsError(try PNG.decodeRGB(png)) {
            guard case .corrupt = $0 as? ImagingError else { return XCTFail("\($0)") }
        }
    }

    /// Compressed data that is not zlib, with a correct chunk CRC.
    func testCorruptZlibStream() {
        let png = PNGBuilder.png(width: 4, height: 4, idat: [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC])
        XCTAssertThrowsError(try PNG.decodeRGB(png)) {
            guard case .corrupt = $0 as? ImagingError else { return XCTFail("\($0)") }
        }
    }

    func testInvalidIHDRValues() {
        for (w, h, depth, type) in [(UInt32(0), UInt32(4), UInt8(8), UInt8(2)), (4, 0, 8, 2), (4, 4, 3, 2),
                                    (4, 4, 8, 5), (4, 4, 16, 3), (0x8000_0000, 1, 8, 0)] {
            let png = PNGBuilder.png(width: w, height: h, bitDepth: depth, colorType: type)
            XCTAssertThrowsError(try PNG.decodeRGB(png), "\(w)x\(h) depth \(depth) type \(type)") {
                guard case .corrupt(let message) = $0 as? ImagingError else { return XCTFail("\($0)") }
                XCTAssertFalse(message.isEmpty)
            }
        }
    }

    /// A 60-byte file declaring 100000 × 100000 RGB (30 GB decoded) is refused from
    /// the IHDR alone, carrying the declared size and the limit.
    func testDecompressionBombIsRejectedBeforeAllocation() {
        let bomb = PNGBuilder.png(width: 100_000, height: 100_000)
        XCTAssertLessThan(bomb.count, 100)
        XCTAssertThrowsError(try PNG.decodeRGB(bomb)) {
            XCTAssertEqual($0 as? ImagingError,
                           .tooManyPixels(width: 100_000, height: 100_000, limit: PNG.defaultMaxPixels))
            XCTAssertTrue(String(describing: $0).contains("100000x100000"))
        }
    }

    func testPixelLimitIsConfigurableAndInclusive() throws {
        let png = try Fixtures.bytes("rgb8.png") // 17 × 11 = 187 pixels
        XCTAssertNoThrow(try PNG.decodeRGB(png, options: .init(maxPixels: 187)))
        XCTAssertThrowsError(try PNG.decodeRGB(png, options: .init(maxPixels: 186))) {
            XCTAssertEqual($0 as? ImagingError, .tooManyPixels(width: 17, height: 11, limit: 186))
        }
    }

    /// ~2000 deterministic mutations (bit flips, byte overwrites, truncations,
    /// insertions, deletions, chunk-length edits) of every fixture.
    func testSeededRandomMutations() throws {
        var rng = SplitMix64(seed: 0x5E6F_10E5)
        let fixtures = try Fixtures.allPNGs()
        var outcomes: [String: Int] = [:]
        for i in 0..<2000 {
            let (name, original) = fixtures[i % fixtures.count]
            var png = original
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits where !png.isEmpty {
                let at = Int(rng.next() % UInt64(png.count))
                switch rng.next() % 6 {
                case 0: png[at] ^= UInt8(1) << (rng.next() % 8)
                case 1: png[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: png.removeSubrange(at...)
                case 3: png.insert(contentsOf: (0..<(1 + rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
                case 4: png.removeSubrange(at..<min(png.count, at + 1 + Int(rng.next() % 32)))
                default:
                    // Big-endian chunk length of the IHDR or a random position: huge or bogus lengths.
                    let lengthAt = rng.next() % 2 == 0 ? 8 : at
                    if lengthAt + 4 <= png.count { png[lengthAt] = 0xFF; png[lengthAt + 1] = UInt8(truncatingIfNeeded: rng.next()) }
                }
            }
            let error = assertSucceedsOrImagingError("mutation \(i) of \(name)") {
                let image = try PNG.decodeRGB(png)
                XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
            }
            let key = error.map { String(describing: $0).prefix(while: { $0 != ":" && $0 != "(" }) }.map(String.init) ?? "decoded"
            outcomes[key, default: 0] += 1
        }
        // The mix must include both rejections and survivors, or the mutator is not doing its job.
        XCTAssertGreaterThan(outcomes.filter { $0.key != "decoded" }.values.reduce(0, +), 1000, "\(outcomes)")
        XCTAssertGreaterThan(outcomes["decoded", default: 0], 0, "\(outcomes)")
        print("mutation outcomes: \(outcomes.sorted { $0.key < $1.key })")
    }

    private func indexOf(_ tag: String, in png: [UInt8]) -> Int? {
        let t = Array(tag.utf8)
        return (0...(png.count - 4)).first { png[$0..<($0 + 4)].elementsEqual(t) }
    }
}


/// Image data that is well-framed (valid chunks, valid zlib) but the wrong length.
final class PNGImageDataLengthTests: XCTestCase {
    private let row: [UInt8] = [0, 7, 8, 9, 10] // filter 0 + 4 gray pixels

    /// Fewer scanlines than the IHDR promises: rejected (PIL: "image file is truncated").
    func testTooLittleImageDataIsAnError() {
        let png = PNGBuilder.png(width: 4, height: 4, bitDepth: 8, colorType: 0,
                                 idat: PNGBuilder.zlibStored(row + row + [0, 5]))
        XCTAssertThrowsError(try PNG.decodeRGB(png)) {
            guard case .corrupt(let message) = $0 as? ImagingError else { return XCTFail("\($0)") }
            XCTAssertFalse(message.isEmpty)
        }
    }

    /// Extra bytes after the last scanline are ignored, as PIL ignores them.
    func testExtraImageDataIsIgnored() throws {
        let png = PNGBuilder.png(width: 4, height: 2, bitDepth: 8, colorType: 0,
                                 idat: PNGBuilder.zlibStored(row + row + [0, 1, 2, 3]))
        XCTAssertEqual(try PNG.decodeRGB(png).pixels, [7, 8, 9, 10, 7, 8, 9, 10].flatMap { [$0, $0, $0] })
    }
}
