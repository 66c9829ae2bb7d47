import Foundation
import Imaging
import XCTest

/// Fixture access and small PNG-building helpers shared by the test files.
enum Fixtures {
    static func url(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw XCTSkip("fixture \(name) missing from bundle") as Error
        }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    struct PNGCase: Decodable {
        let png: String
        let rgb: String
        let width: Int
        let height: Int
        let pil_mode: String
    }

    struct RLECase: Decodable {
        let png: String
        let height: Int
        let width: Int
        let counts: String
        let uncompressed: [Int]
        let area: Int
        let bbox: [Int]
    }

    static func pngCases() throws -> [String: PNGCase] {
        try JSONDecoder().decode([String: PNGCase].self, from: Data(contentsOf: url("png_cases.json")))
    }

    static func rleCases() throws -> [String: RLECase] {
        try JSONDecoder().decode([String: RLECase].self, from: Data(contentsOf: url("rle_cases.json")))
    }

    /// Every fixture PNG, sorted by name so derived random tests are deterministic.
    static func allPNGs() throws -> [(name: String, bytes: [UInt8])] {
        try pngCases().keys.sorted().map { ($0, try bytes("\($0).png")) }
    }
}

/// Builds PNG streams chunk by chunk, with correct CRCs, for hostile-input tests.
enum PNGBuilder {
    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    /// zlib.compress(bytes(16)) — a valid stream of 16 zero bytes.
    static let tinyZlib: [UInt8] = [120, 156, 99, 96, 64, 5, 0, 0, 16, 0, 1]

    /// Wraps raw scanlines in a zlib stream of one stored block (no compression),
    /// so tests can state exact samples without a zlib dependency.
    static func zlibStored(_ raw: [UInt8]) -> [UInt8] {
        precondition(raw.count < 65536)
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        let len = UInt16(raw.count), nlen = ~len
        return [0x78, 0x01, 0x01, UInt8(len & 0xFF), UInt8(len >> 8), UInt8(nlen & 0xFF), UInt8(nlen >> 8)]
            + raw + PNGBuilder.be32(b << 16 | a)
    }

    static func png(width: UInt32, height: UInt32, bitDepth: UInt8 = 8, colorType: UInt8 = 2,
                    idat: [UInt8] = tinyZlib) -> [UInt8] {
        let ihdr = be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0]
        return PNG.signature + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
    }
}

/// Asserts that `body` either succeeds or throws an `ImagingError` (any other
/// error type fails the test; a crash fails the whole run).
func assertSucceedsOrImagingError(_ label: @autoclosure () -> String, _ body: () throws -> Void,
                                  file: StaticString = #filePath, line: UInt = #line) -> ImagingError? {
    do {
        try body()
        return nil
    } catch let error as ImagingError {
        return error
    } catch {
        XCTFail("\(label()): unexpected error type \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}

/// The JPEG/WebP reference cases written by Tests/Reference/make_jpeg_webp_fixtures.py.
enum ImageFixtures {
    struct Case: Decodable {
        let file: String
        let rgb: String
        let format: String
        let width: Int
        let height: Int
        let pil_mode: String
        /// JPEG only: whether PIL decodes the file with its final EOI marker cut off.
        let pil_accepts_without_eoi: Bool?
        /// JPEG only: a progressive file cut to its DC scan (see ImageDecoderParityTests).
        let dc_only_progressive: Bool?
    }

    struct Manifest: Decodable {
        let versions: [String: String]
        let cases: [String: Case]
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: Fixtures.url("jpeg_webp_cases.json")))
    }

    /// Cases sorted by name, optionally of one format ("jpeg" / "webp").
    static func cases(_ format: String? = nil) throws -> [(name: String, case: Case)] {
        try manifest().cases.sorted { $0.key < $1.key }
            .filter { format == nil || $0.value.format == format }
            .map { ($0.key, $0.value) }
    }
}

/// Finds JPEG marker segments (before the first SOS) for hostile-input tests.
enum JPEGBuilder {
    /// Offset of the 0xFF of the first marker `code` found walking the segments from SOI.
    static func markerOffset(_ jpeg: [UInt8], _ code: UInt8) -> Int? {
        var i = 2
        while i + 4 <= jpeg.count, jpeg[i] == 0xFF {
            if jpeg[i + 1] == code { return i }
            if jpeg[i + 1] == 0xDA { return nil }
            i += 2 + (Int(jpeg[i + 2]) << 8 | Int(jpeg[i + 3]))
        }
        return nil
    }

    /// The file with its SOF0/SOF2 frame size set to `width` × `height`.
    static func withFrameSize(_ jpeg: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = jpeg
        let sof = markerOffset(jpeg, 0xC0) ?? markerOffset(jpeg, 0xC2)!
        out[sof + 5] = UInt8(height >> 8); out[sof + 6] = UInt8(height & 0xFF)
        out[sof + 7] = UInt8(width >> 8); out[sof + 8] = UInt8(width & 0xFF)
        return out
    }
}

/// A decoded image has the reference's size and byte count.
func assertGeometry(_ image: RGBImage, width: Int, height: Int, bytes: Int, _ name: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual([image.width, image.height, image.pixels.count], [width, height, bytes], "\(name): width, height, bytes",
                   file: file, line: line)
}
