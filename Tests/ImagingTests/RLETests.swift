import Imaging
import Tensor
import XCTest

/// COCO RLE against pycocotools: compressed strings byte-identical, uncompressed
/// counts identical, decode inverts encode, area and toBbox equal.
final class RLETests: XCTestCase {
    func testMatchesPycocotools() throws {
        let cases = try Fixtures.rleCases()
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            let mask = try BinaryMask(png: Fixtures.bytes(c.png))
            XCTAssertEqual(mask.width, c.width, name)
            XCTAssertEqual(mask.height, c.height, name)
            let rle = COCORLE(mask: mask)
            XCTAssertEqual(rle.counts, c.uncompressed, name)
            XCTAssertEqual(rle.compressedCounts, c.counts, name)
            XCTAssertEqual(rle.area, c.area, name)
            XCTAssertEqual(mask.area, c.area, name)
            let bbox = [rle.boundingBox.x, rle.boundingBox.y, rle.boundingBox.width, rle.boundingBox.height]
            XCTAssertEqual(bbox, c.bbox, "\(name) RLE bbox")
            let maskBox = mask.boundingBox
            XCTAssertEqual([maskBox.x, maskBox.y, maskBox.width, maskBox.height], c.bbox, "\(name) mask bbox")

            let parsed = try COCORLE(height: c.height, width: c.width, compressedCounts: c.counts)
            XCTAssertEqual(parsed, rle, name)
            XCTAssertEqual(try parsed.decode(), mask, name)
        }
    }

    func testRandomMasksRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for i in 0..<200 {
            let w = 1 + Int(rng.next() % 40), h = 1 + Int(rng.next() % 40)
            let density = Double(rng.next() % 100) / 100
            let values = (0..<(w * h)).map { _ in Double(rng.next() % 1000) / 1000 < density ? UInt8(1) : 0 }
            let mask = try BinaryMask(width: w, height: h, values: values)
            let rle = COCORLE(mask: mask)
            XCTAssertEqual(rle.counts.reduce(0, +), w * h)
            let back = try COCORLE(height: h, width: w, compressedCounts: rle.compressedCounts)
            XCTAssertEqual(back.counts, rle.counts, "case \(i)")
            XCTAssertEqual(try back.decode(), mask, "case \(i)")
            XCTAssertEqual(rle.boundingBox, mask.boundingBox, "case \(i)")
            XCTAssertEqual(rle.area, mask.area, "case \(i)")
        }
    }

    func testColumnMajorOrder() throws {
        // 2×3 mask, row-major [[0,1,1],[0,0,1]]: column-major 0,0,1,0,1,1 → runs [2,1,1,2].
        let mask = try BinaryMask(width: 3, height: 2, values: [0, 1, 1, 0, 0, 1])
        XCTAssertEqual(COCORLE(mask: mask).counts, [2, 1, 1, 2])
        // First pixel foreground → leading zero-length background run.
        let first = try BinaryMask(width: 2, height: 1, values: [1, 0])
        XCTAssertEqual(COCORLE(mask: first).counts, [0, 1, 1])
    }

    func testMalformedStringsAreRejected() throws {
        let bad: [(string: String, reason: String)] = [
            ("0", "sum to 0"),                  // one run of 0, not 2×2 = 4
            ("3", "sum to 3"),
            ("4P", "ends inside"),              // 'P' (32) has the continuation bit, then the string ends
            ("4 ", "outside"),                  // space is below '0'
            ("4p", "outside"),                  // 'p' (112) is above 'o'
            ("4é", "outside"),                  // non-ASCII
            ("@", "negative"),                  // 16: sign bit (0x10) set, no continuation → -16
            (String(repeating: "o", count: 20) + "0", "too long"), // more than 60 bits
        ]
        for (string, expected) in bad {
            XCTAssertThrowsError(try COCORLE(height: 2, width: 2, compressedCounts: string), string) {
                guard case .invalidRLE(let reason) = $0 as? ImagingError else { return XCTFail("\($0)") }
                XCTAssertTrue(reason.contains(expected), "\(string): \(reason)")
            }
        }
        XCTAssertThrowsError(try COCORLE(height: 2, width: 2, counts: [1, -1, 4]))
        XCTAssertThrowsError(try COCORLE(height: 2, width: 2, counts: [1, Int.max, Int.max]))
        XCTAssertThrowsError(try COCORLE(height: 0, width: 0, counts: []).decode())
        // Zero-length runs are legal in parsed RLEs and add nothing to area or box.
        let sparse = try COCORLE(height: 2, width: 2, counts: [0, 0, 3, 1])
        XCTAssertEqual(sparse.area, 1)
        XCTAssertEqual(sparse.boundingBox, BoundingBox(x: 1, y: 1, width: 1, height: 1))
        XCTAssertEqual(try sparse.decode().boundingBox, sparse.boundingBox)
    }

    /// Seeded garbage strings: parse either succeeds (and then decodes consistently) or throws invalidRLE.
    func testRandomStringsNeverCrash() {
        var rng = SplitMix64(seed: 99)
        var accepted = 0
        for _ in 0..<3000 {
            let length = Int(rng.next() % 8)
            let s = String(decoding: (0..<length).map { _ in UInt8(40 + rng.next() % 80) }, as: UTF8.self)
            let h = 1 + Int(rng.next() % 6), w = 1 + Int(rng.next() % 6)
            do {
                let rle = try COCORLE(height: h, width: w, compressedCounts: s)
                let mask = try rle.decode()
                XCTAssertEqual(COCORLE(mask: mask).area, rle.area)
                accepted += 1
            } catch {
                // The do-block only throws ImagingError (typed throws); check the case.
                guard case .invalidRLE = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertLessThan(accepted, 3000)
    }
}
