import Foundation
import Imaging
import Tensor
import XCTest

/// Hostile JPEG / WebP / unknown input through ImageDecoder: every case ends in a
/// specific ImagingError naming the detected format, never a crash.
final class ImageDecoderErrorTests: XCTestCase {
    private func error(_ bytes: [UInt8], options: ImageDecoder.Options = .init(),
                       file: StaticString = #filePath, line: UInt = #line) -> ImagingError? {
        do {
            _ = try ImageDecoder.decodeRGB(bytes, options: options)
            XCTFail("decoded although it should not", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testEmptyInput() {
        XCTAssertEqual(error([]), .emptyInput)
        XCTAssertThrowsError(try ImageDecoder.header([UInt8]())) { XCTAssertEqual($0 as? ImagingError, .emptyInput) }
        XCTAssertThrowsError(try ImageDecoder.decodeRGB(Data())) { XCTAssertEqual($0 as? ImagingError, .emptyInput) }
    }

    func testUnsupportedFormatNamesWhatItSaw() {
        let gif = Array("GIF89a".utf8) + [1, 0, 1, 0, 0]
        XCTAssertEqual(error(gif), .unsupportedFormat(prefix: gif))
        XCTAssertEqual(error(gif)?.description,
                       "unsupported image format (first bytes 47 49 46 38 39 61 01 00 01 00 00: GIF); PNG, JPEG and WebP are supported")
        XCTAssertTrue(error(Array("BM\u{0}\u{0}".utf8))!.description.contains(": BMP)"))
        XCTAssertTrue(error([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0])!.description.contains(": TIFF)"))
        XCTAssertTrue(error([0, 0, 0, 0x1C] + Array("ftypavif".utf8))!.description.contains(": AVIF)"))
        XCTAssertTrue(error(Array("RIFF\u{4}\u{0}\u{0}\u{0}WAVE".utf8))!.description.contains("not WebP"))
        let text = Array("hello world".utf8)
        XCTAssertEqual(error(text), .unsupportedFormat(prefix: Array(text.prefix(12))))
        XCTAssertEqual(error(text + text), .unsupportedFormat(prefix: Array((text + text).prefix(12))))
        XCTAssertThrowsError(try ImageDecoder.header(gif)) { XCTAssertEqual($0 as? ImagingError, .unsupportedFormat(prefix: gif)) }
    }

    /// One wrong magic byte is enough to stop detection; the real format is never guessed.
    func testWrongMagic() throws {
        var jpeg = try Fixtures.bytes("jpeg_baseline_420.jpg")
        jpeg[2] = 0x00 // FF D8 00: not a JPEG marker after SOI
        XCTAssertEqual(error(jpeg), .unsupportedFormat(prefix: Array(jpeg.prefix(12))))
        var webp = try Fixtures.bytes("webp_lossy.webp")
        webp[8] = UInt8(ascii: "X") // RIFF....XEBP
        guard case .unsupportedFormat? = error(webp) else { return XCTFail("\(String(describing: error(webp)))") }
    }

    /// Inputs shorter than a magic number but consistent with it are truncated files of that format.
    func testPartialSignatureIsTruncation() {
        XCTAssertEqual(error([0xFF, 0xD8]), .truncatedImage(format: .jpeg, byteCount: 2, message: "data ends inside the JPEG signature"))
        XCTAssertEqual(error(Array("RIFF".utf8)), .truncatedImage(format: .webp, byteCount: 4, message: "data ends inside the WebP signature"))
        XCTAssertEqual(error(Array(PNG.signature.prefix(5))), .truncated(byteCount: 5, message: "data ends inside the PNG signature"))
    }

    /// Every prefix of a baseline and a progressive JPEG (except the full file and,
    /// where PIL accepts it, the file without EOI) is a truncated JPEG.
    func testTruncatedJPEGAtEveryOffset() throws {
        for name in ["jpeg_baseline_420", "jpeg_progressive_444_odd", "jpeg_cmyk", "jpeg_gray_progressive"] {
            let jpeg = try Fixtures.bytes("\(name).jpg")
            for cut in 1..<(jpeg.count - 2) {
                let e = error(Array(jpeg[..<cut]))
                guard case .truncatedImage(.jpeg, let count, let message)? = e else {
                    XCTFail("\(name) cut at \(cut)/\(jpeg.count): \(String(describing: e))"); continue
                }
                XCTAssertEqual(count, cut)
                XCTAssertTrue(e!.description.hasPrefix("truncated JPEG (\(cut) bytes): "), e!.description)
                XCTAssertFalse(message.isEmpty)
            }
        }
    }

    func testTruncatedWebPAtEveryOffset() throws {
        for name in ["webp_lossy", "webp_lossless", "webp_alpha_lossy", "webp_animated"] {
            let webp = try Fixtures.bytes("\(name).webp")
            for cut in 1..<webp.count {
                let e = error(Array(webp[..<cut]))
                guard case .truncatedImage(.webp, let count, _)? = e else {
                    XCTFail("\(name) cut at \(cut)/\(webp.count): \(String(describing: e))"); continue
                }
                XCTAssertEqual(count, cut)
            }
        }
    }

    func testCorruptJPEGMarkers() throws {
        let jpeg = try Fixtures.bytes("jpeg_baseline_420.jpg")
        // A Huffman table with an impossible class/index byte.
        var badDHT = jpeg
        let dht = try XCTUnwrap(JPEGBuilder.markerOffset(jpeg, 0xC4))
        badDHT[dht + 4] = 0x3F
        guard case .corruptImage(.jpeg, let m1)? = error(badDHT) else { return XCTFail("\(String(describing: error(badDHT)))") }
        XCTAssertTrue(error(badDHT)!.description.hasPrefix("corrupt JPEG: "), m1)
        // SOF claiming 2 components: PIL refuses it ("cannot handle 2-layer images").
        var twoComponents = jpeg
        let sof = try XCTUnwrap(JPEGBuilder.markerOffset(jpeg, 0xC0))
        twoComponents[sof + 9] = 2
        guard case .unsupportedImage(.jpeg, let reason)? = error(twoComponents) else { return XCTFail("\(String(describing: error(twoComponents)))") }
        XCTAssertTrue(reason.contains("2-component"), reason)
        // SOF whose length does not match its component list (one stray byte appended).
        var longSOF = jpeg
        longSOF[sof + 3] += 1
        longSOF.insert(0x11, at: sof + 2 + Int(jpeg[sof + 3]))
        guard case .corruptImage(.jpeg, _)? = error(longSOF) else { return XCTFail("\(String(describing: error(longSOF)))") }
        // A scan before any frame header: SOI then the SOS segment.
        let sos = try XCTUnwrap(jpeg.indices.dropLast().first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        let noFrame = [0xFF, 0xD8] + Array(jpeg[sos...])
        guard case .corruptImage(.jpeg, _)? = error(noFrame) else { return XCTFail("\(String(describing: error(noFrame)))") }
        // Zero height in the SOF (DNL-defined height, which neither libjpeg nor PIL support).
        let zero = JPEGBuilder.withFrameSize(jpeg, width: 64, height: 0)
        guard case .corruptImage(.jpeg, _)? = error(zero) else { return XCTFail("\(String(describing: error(zero)))") }
        XCTAssertThrowsError(try ImageDecoder.header(zero))
    }

    /// Files libjpeg alone would decode but PIL's marker walk refuses (see PILJPEGMarkerCheck).
    func testMarkerStructurePILRefusesIsRefused() throws {
        let jpeg = try Fixtures.bytes("jpeg_baseline_420.jpg")
        // TEM (FF 01) after SOI: libjpeg skips it, PIL raises "no marker found".
        let tem = [0xFF, 0xD8, 0xFF, 0x01] + Array(jpeg[2...])
        guard case .corruptImage(.jpeg, let m)? = error(tem) else { return XCTFail("\(String(describing: error(tem)))") }
        XCTAssertTrue(m.contains("0xFF01"), m)
        XCTAssertThrowsError(try ImageDecoder.header(tem))
        // A DQT segment holding one byte less than its 64-entry table.
        let dqt = try XCTUnwrap(JPEGBuilder.markerOffset(jpeg, 0xDB))
        var shortDQT = jpeg
        let length = Int(jpeg[dqt + 2]) << 8 | Int(jpeg[dqt + 3])
        shortDQT[dqt + 2] = UInt8((length - 1) >> 8); shortDQT[dqt + 3] = UInt8((length - 1) & 0xFF)
        shortDQT.remove(at: dqt + 2 + length - 1)
        guard case .corruptImage(.jpeg, let q)? = error(shortDQT) else { return XCTFail("\(String(describing: error(shortDQT)))") }
        XCTAssertTrue(q.contains("quantization"), q)
        // Junk bytes and fill bytes between markers are skipped by both: still decodes identically.
        let app0 = try XCTUnwrap(JPEGBuilder.markerOffset(jpeg, 0xE0))
        let afterAPP0 = app0 + 2 + (Int(jpeg[app0 + 2]) << 8 | Int(jpeg[app0 + 3]))
        let padded = [0xFF, 0xD8, 0xFF, 0xFF] + Array(jpeg[2..<afterAPP0]) + [0x00, 0x12] + Array(jpeg[afterAPP0...])
        XCTAssertEqual(try ImageDecoder.decodeRGB(padded), try ImageDecoder.decodeRGB(jpeg))
    }

    /// 12-bit samples: Debian's libjpeg-turbo (8-bit build) and PIL ("cannot handle 12-bit layers") refuse them.
    func testTwelveBitJPEGIsUnsupported() throws {
        var jpeg = try Fixtures.bytes("jpeg_baseline_444.jpg")
        let sof = try XCTUnwrap(JPEGBuilder.markerOffset(jpeg, 0xC0))
        jpeg[sof + 4] = 12
        guard case .unsupportedImage(.jpeg, let reason)? = error(jpeg) else { return XCTFail("\(String(describing: error(jpeg)))") }
        XCTAssertTrue(reason.contains("12"), reason)
    }

    func testCorruptWebP() throws {
        // VP8L signature byte (0x2F) replaced.
        var lossless = try Fixtures.bytes("webp_lossless.webp")
        XCTAssertEqual(Array(lossless[12..<16]), Array("VP8L".utf8))
        lossless[20] = 0x00
        guard case .corruptImage(.webp, _)? = error(lossless) else { return XCTFail("\(String(describing: error(lossless)))") }
        // VP8 key-frame start code (9D 01 2A) broken.
        var lossy = try Fixtures.bytes("webp_lossy.webp")
        XCTAssertEqual(Array(lossy[23..<26]), [0x9D, 0x01, 0x2A])
        lossy[23] = 0x00
        guard case .corruptImage(.webp, _)? = error(lossy) else { return XCTFail("\(String(describing: error(lossy)))") }
        XCTAssertTrue(error(lossy)!.description.hasPrefix("corrupt WebP: "))
        // Lossy bitstream bytes overwritten after the frame header: a decode-time failure.
        var garbage = try Fixtures.bytes("webp_lossless.webp")
        for i in 30..<garbage.count { garbage[i] = 0xFF }
        guard case .corruptImage(.webp, _)? = error(garbage) else { return XCTFail("\(String(describing: error(garbage)))") }
    }

    /// A ~3 KB JPEG declaring 60000 × 60000 (10.8 GB as RGB): header() reports the
    /// declared size, decodeRGB refuses it from the SOF alone (not a truncation error
    /// after trying to decode).
    func testJPEGDecompressionBombIsRejectedFromTheHeader() throws {
        let bomb = JPEGBuilder.withFrameSize(try Fixtures.bytes("jpeg_progressive_420.jpg"), width: 60000, height: 60000)
        XCTAssertLessThan(bomb.count, 10_000)
        XCTAssertEqual(try ImageDecoder.header(bomb), ImageDecoder.Header(format: .jpeg, width: 60000, height: 60000))
        XCTAssertEqual(error(bomb), .tooManyPixels(width: 60000, height: 60000, limit: ImageDecoder.defaultMaxPixels, format: .jpeg))
        XCTAssertTrue(error(bomb)!.description.hasPrefix("JPEG declares 60000x60000 = 3600000000 pixels"), error(bomb)!.description)
    }

    /// VP8L (lossless) header claiming 16384 × 16384, and an animated VP8X canvas of the same size.
    func testWebPDecompressionBombIsRejectedFromTheHeader() throws {
        var vp8l = try Fixtures.bytes("webp_lossless.webp")
        // 14-bit width-1 and height-1 after the 0x2F signature byte, little-endian bit packing.
        let bits: UInt32 = 16383 | (16383 << 14) | (UInt32(vp8l[24]) & 0xF0) << 24
        for k in 0..<4 { vp8l[21 + k] = UInt8((bits >> (8 * UInt32(k))) & 0xFF) }
        XCTAssertEqual(try ImageDecoder.header(vp8l), ImageDecoder.Header(format: .webp, width: 16384, height: 16384))
        XCTAssertEqual(error(vp8l), .tooManyPixels(width: 16384, height: 16384, limit: ImageDecoder.defaultMaxPixels, format: .webp))

        var anim = try Fixtures.bytes("webp_animated.webp")
        XCTAssertEqual(Array(anim[12..<16]), Array("VP8X".utf8))
        for k in 0..<3 { anim[24 + k] = UInt8((16383 >> (8 * k)) & 0xFF); anim[27 + k] = UInt8((16383 >> (8 * k)) & 0xFF) }
        XCTAssertEqual(try ImageDecoder.header(anim), ImageDecoder.Header(format: .webp, width: 16384, height: 16384))
        XCTAssertEqual(error(anim), .tooManyPixels(width: 16384, height: 16384, limit: ImageDecoder.defaultMaxPixels, format: .webp))
    }

    func testPNGBombThroughImageDecoder() {
        let bomb = PNGBuilder.png(width: 100_000, height: 100_000)
        XCTAssertEqual(error(bomb), .tooManyPixels(width: 100_000, height: 100_000, limit: ImageDecoder.defaultMaxPixels))
        XCTAssertTrue(error(bomb)!.description.hasPrefix("PNG declares"))
    }

    /// Same rule as PNG: width × height ≤ maxPixels passes, one pixel fewer allowed fails.
    func testPixelLimitIsInclusiveForEveryFormat() throws {
        for (file, format, w, h) in [("jpeg_odd_420_17x13.jpg", ImageFormat.jpeg, 17, 13),
                                     ("webp_lossy_odd_17x13.webp", .webp, 17, 13), ("rgb8.png", .png, 17, 11)] {
            let bytes = try Fixtures.bytes(file)
            XCTAssertNoThrow(try ImageDecoder.decodeRGB(bytes, options: .init(maxPixels: w * h)), file)
            XCTAssertEqual(error(bytes, options: .init(maxPixels: w * h - 1)),
                           .tooManyPixels(width: w, height: h, limit: w * h - 1, format: format), file)
        }
        XCTAssertEqual(ImageDecoder.defaultMaxPixels, PNG.defaultMaxPixels)
    }

    /// ~3000 deterministic mutations of every JPEG/WebP fixture: each either decodes
    /// to a consistent image or throws ImagingError.
    func testSeededRandomMutations() throws {
        var rng = SplitMix64(seed: 0x1A9E_DEC0)
        let files = try ImageFixtures.cases().map { try Fixtures.bytes($0.case.file) }
        var outcomes: [String: Int] = [:]
        for i in 0..<3000 {
            var bytes = files[i % files.count]
            switch rng.next() % 4 {
            case 0:
                for _ in 0...(rng.next() % 4) { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 << (rng.next() % 8)) }
            case 1:
                bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            case 2:
                // Header bytes (markers, RIFF/VP8 headers) are where decoders go wrong.
                let i = Int(rng.next() % UInt64(min(bytes.count, 200)))
                bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01][Int(rng.next() % 5)]
            default:
                bytes.removeSubrange(Int(rng.next() % UInt64(bytes.count))..<bytes.count)
                if bytes.isEmpty { bytes = [0xFF] }
            }
            let options = ImageDecoder.Options(maxPixels: 1 << 16)
            do {
                let image = try ImageDecoder.decodeRGB(bytes, options: options)
                XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
                XCTAssertLessThanOrEqual(image.width * image.height, options.maxPixels)
                outcomes["decoded", default: 0] += 1
            } catch {
                // Typed throws: `error` is an ImagingError here.
                let key = String(describing: error).prefix(while: { $0 != ":" && $0 != "(" })
                outcomes[String(key), default: 0] += 1
            }
        }
        // Both outcomes happen (libjpeg decodes most entropy-data damage, as PIL does).
        XCTAssertGreaterThan(outcomes["decoded", default: 0], 100, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.count, 3, "\(outcomes)")
    }
}
