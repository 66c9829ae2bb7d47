import Checkpoint
import CLIP
import CLIPSeg
import Foundation
import Tensor
import XCTest

/// The image-embedding wire format and the errors bad inputs produce.
final class CLIPSegInputTests: XCTestCase {
    func sampleEmbedding() -> CLIPSegImageEmbedding {
        var seed: UInt32 = 12345
        func next() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(Int32(bitPattern: seed)) / Float(Int32.max) * 3 }
        let acts = (0..<3).map { _ in Tensor(shape: [1, 1 + 2 * 3, 5], data: (0..<35).map { _ in next() }) }
        return CLIPSegImageEmbedding(activations: acts, extractLayers: [3, 6, 9], gridHeight: 2, gridWidth: 3,
                                     originalHeight: 480, originalWidth: 640, inputHeight: 32, inputWidth: 48)
    }

    func testEmbeddingRoundTripsExactlyInF32() throws {
        let e = sampleEmbedding()
        let bytes = e.encoded(dtype: .f32)
        // Header: magic, version 1, dtype, k, 7 UInt32 sizes, k layer indices.
        XCTAssertEqual(Array(bytes[0..<8]), Array("SGCS".utf8) + [1, 0, 0, 3])
        XCTAssertEqual(Array(bytes[8..<12]), [0xE0, 0x01, 0, 0], "original height 480, little-endian")
        XCTAssertEqual(bytes.count, 36 + 4 * 3 + 3 * 7 * 5 * 4)
        let (d, dtype) = try CLIPSegImageEmbedding.decode(bytes)
        XCTAssertEqual(dtype, .f32)
        XCTAssertEqual(d, e)
    }

    func testEmbeddingF16IsHalfSizeAndClose() throws {
        let e = sampleEmbedding()
        let bytes = e.encoded(dtype: .f16)
        XCTAssertEqual(bytes.count, 36 + 4 * 3 + 3 * 7 * 5 * 2)
        let d = try CLIPSegImageEmbedding.decode(bytes).embedding
        for (a, b) in zip(d.activations, e.activations) {
            for (x, y) in zip(a.data, b.data) { XCTAssertEqual(x, y, accuracy: abs(y) * 1e-3 + 1e-6) }  // binary16: 11-bit mantissa
        }
    }

    func testEmbeddingDecodeRejectsCorruptInput() {
        let good = sampleEmbedding().encoded()
        func decodeError(_ bytes: [UInt8]) -> CLIPSegImageEmbedding.DecodeError? {
            do { _ = try CLIPSegImageEmbedding.decode(bytes); return nil } catch { return error }
        }
        XCTAssertEqual(decodeError(Array(good.dropLast())), .truncated(needed: good.count, available: good.count - 1))
        XCTAssertEqual(decodeError(good + [0]), .trailingBytes(1))
        var bad = good; bad[0] = UInt8(ascii: "X")
        XCTAssertEqual(decodeError(bad), .badMagic)
        bad = good; bad[4] = 2
        XCTAssertEqual(decodeError(bad), .unsupportedVersion(2))
        bad = good; bad[6] = 7
        XCTAssertEqual(decodeError(bad), .unknownDType(7))
        bad = good; bad[7] = 0
        if case .badHeader? = decodeError(bad) {} else { XCTFail("zero activations accepted") }
        bad = good; bad[24...27] = [0xff, 0xff, 0xff, 0xff]  // grid height 2³²−1: must not allocate
        if case .badHeader? = decodeError(bad) {} else { XCTFail("huge grid accepted") }
        XCTAssertEqual(decodeError([]), .truncated(needed: 4, available: 0))
    }

    func testBadTokenIdsAreRejectedWithTheOffendingValue() throws {
        let text = try XCTUnwrap(try Fixtures.model.get().textEncoder)
        // The text tower is CLIP's, so its errors are CLIPError.
        func error(_ ids: [[Int]]) -> CLIPError? {
            do { _ = try text.textFeatures(ids); return nil } catch { return error }
        }
        XCTAssertEqual(error([[997, 5, 7]]), .missingEndOfText(row: 0, eosTokenID: 998))
        XCTAssertEqual(error([[997, 998], [997, 5]]), .missingEndOfText(row: 1, eosTokenID: 998))
        XCTAssertEqual(error([[997, 998], [997, 1000]]), .tokenOutOfRange(id: 1000, row: 1, position: 1, vocabularySize: 1000))
        XCTAssertEqual(error([[997, -1, 998]]), .tokenOutOfRange(id: -1, row: 0, position: 1, vocabularySize: 1000))
        XCTAssertEqual(error([Array(repeating: 998, count: 17)]), .invalidSequenceLength(length: 17, maxPositions: 16))
        XCTAssertEqual(error([]), .invalidSequenceLength(length: 0, maxPositions: 16))
        XCTAssertEqual(error([[997, 998], [998]]), .raggedTokenRows(lengths: [2, 1]))
    }

    func testBadPixelValuesAndMismatchedDecoderInputs() throws {
        let model = try Fixtures.model.get()
        let vision = try XCTUnwrap(model.visionEncoder)
        XCTAssertThrowsError(try vision.activations(Tensor(zeros: [1, 3, 90, 96]))) { error in
            XCTAssertEqual(error as? CLIPError, .badPixelValues(shape: [1, 3, 90, 96], channels: 3, patchSize: 16))
        }
        XCTAssertThrowsError(try vision.activations(Tensor(zeros: [1, 1, 96, 96])))
        let acts = try vision.activations(Tensor(zeros: [1, 3, 32, 48]))  // non-square grid 2×3
        let decoder = try XCTUnwrap(model.decoder)
        XCTAssertEqual(try decoder(activations: acts, conditionalEmbeddings: Tensor(zeros: [2, 16]), gridHeight: 2, gridWidth: 3).shape,
                       [2, 32, 48])
        XCTAssertThrowsError(try decoder(activations: acts, conditionalEmbeddings: Tensor(zeros: [1, 15]), gridHeight: 2, gridWidth: 3)) {
            XCTAssertEqual($0 as? CLIPSegError, .shapeMismatch(what: "conditional embeddings", expected: [1, 16], actual: [1, 15]))
        }
        XCTAssertThrowsError(try decoder(activations: Array(acts.prefix(2)), conditionalEmbeddings: Tensor(zeros: [1, 16]),
                                         gridHeight: 2, gridWidth: 3))
        XCTAssertThrowsError(try decoder(activations: acts, conditionalEmbeddings: Tensor(zeros: [1, 16]), gridHeight: 6, gridWidth: 6)) {
            XCTAssertEqual($0 as? CLIPSegError, .shapeMismatch(what: "activation", expected: [1, 37, 32], actual: [1, 7, 32]))
        }
    }
}
