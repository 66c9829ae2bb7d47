import Foundation
import SAM
import Tensor
import XCTest

final class EmbeddingCodecTests: XCTestCase {
    func sample() -> ImageEmbedding {
        let t = Tensor(shape: [1, 8, 4, 4]) { i in Float(i % 13) * 0.37 - 2.1 + Float(i) * 1e-3 }
        return ImageEmbedding(model: .liteMedSAM, embedding: t, originalSize: (300, 451), inputSize: (170, 256))
    }

    func testF32RoundTripIsExact() throws {
        let e = sample()
        let bytes = EmbeddingCodec.encode(e, dtype: .f32)
        XCTAssertEqual(Array(bytes.prefix(4)), Array("SGFE".utf8))
        let (d, dtype) = try EmbeddingCodec.decode(bytes)
        XCTAssertEqual(dtype, .f32)
        XCTAssertEqual(d, e)
    }

    /// binary16 has an 11-bit significand: relative rounding error ≤ 2⁻¹¹ ≈ 4.9e-4.
    static let f16RelativeError: Float = 1.0 / 2048

    func testF16RoundTripWithinHalfPrecision() throws {
        let e = sample()
        let bytes = EmbeddingCodec.encode(e, dtype: .f16)
        XCTAssertLessThan(bytes.count, EmbeddingCodec.encode(e, dtype: .f32).count)
        let (d, dtype) = try EmbeddingCodec.decode(bytes)
        XCTAssertEqual(dtype, .f16)
        XCTAssertEqual(d.embedding.shape, e.embedding.shape)
        XCTAssertEqual(d.originalSize.height, 300); XCTAssertEqual(d.inputSize.width, 256)
        for (a, b) in zip(d.embedding.data, e.embedding.data) {
            XCTAssertLessThanOrEqual(abs(a - b), Self.f16RelativeError * abs(b) + 1e-7)
        }
    }

    func testMalformedInputsAreRejected() {
        let good = EmbeddingCodec.encode(sample())
        XCTAssertThrowsError(try EmbeddingCodec.decode([])) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .truncated(needed: 4, available: 0)) }
        var bad = good; bad[0] = 0x58
        XCTAssertThrowsError(try EmbeddingCodec.decode(bad)) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .badMagic) }
        bad = good; bad[4] = 9
        XCTAssertThrowsError(try EmbeddingCodec.decode(bad)) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .unsupportedVersion(9)) }
        bad = good; bad[6] = 7
        XCTAssertThrowsError(try EmbeddingCodec.decode(bad)) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .unknownDType(7)) }
        bad = good; bad[8] = UInt8(ascii: "X")
        XCTAssertThrowsError(try EmbeddingCodec.decode(bad)) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .unknownModel("Xitemedsam")) }
        XCTAssertThrowsError(try EmbeddingCodec.decode(Array(good.dropLast()))) {
            guard case .truncated = $0 as? EmbeddingCodec.DecodeError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try EmbeddingCodec.decode(good + [0])) { XCTAssertEqual($0 as? EmbeddingCodec.DecodeError, .trailingBytes(1)) }
        // A header claiming a 2^31-element shape must be refused before allocating.
        let nameEnd = 8 + "litemedsam".utf8.count
        bad = good
        let shapeStart = nameEnd + 16 + 1 + 4  // second dimension
        bad[shapeStart..<(shapeStart + 4)] = [0, 0, 0, 0x80]
        XCTAssertThrowsError(try EmbeddingCodec.decode(bad)) {
            guard case .badShape = $0 as? EmbeddingCodec.DecodeError else { return XCTFail("\($0)") }
        }
    }

    func testSeededMutationsNeverCrash() {
        let good = EmbeddingCodec.encode(sample(), dtype: .f16)
        var state: UInt64 = 42
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        var decoded = 0, rejected = 0
        for _ in 0..<2000 {
            var b = good
            switch next() % 3 {
            case 0: b[next() % b.count] ^= UInt8(1 << (next() % 8))
            case 1: b = Array(b.prefix(next() % b.count))
            default: b.insert(UInt8(next() % 256), at: next() % b.count)
            }
            do { _ = try EmbeddingCodec.decode(b); decoded += 1 } catch is EmbeddingCodec.DecodeError { rejected += 1 } catch {
                XCTFail("unexpected error type \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 500)
        XCTAssertGreaterThan(decoded, 50, "bit flips in the data section should still decode")
    }
}
