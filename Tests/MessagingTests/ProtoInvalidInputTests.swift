import Messaging
import XCTest

/// Hostile and broken bytes must throw a MessagingError naming the problem — never crash.
final class ProtoInvalidInputTests: XCTestCase {
    /// Every decoder applied to `bytes`; returns how many threw.
    @discardableResult
    private func decodeWithAll(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> (threw: Int, reencodeMismatches: [String]) {
        var threw = 0
        var mismatches: [String] = []
        func attempt<T>(_ name: String, _ decode: ([UInt8]) throws -> T, _ encode: (T) -> [UInt8]) {
            do {
                let value = try decode(bytes)
                // Whatever decodes must re-encode to something that decodes to the same
                // bytes again (compared as bytes: NaN floats defeat ==).
                let once = encode(value)
                do {
                    if encode(try decode(once)) != once { mismatches.append(name) }
                } catch {
                    mismatches.append("\(name): re-decode threw \(error)")
                }
            } catch let error as MessagingError {
                threw += 1
                XCTAssertFalse(error.description.isEmpty, file: file, line: line)
            } catch {
                XCTFail("\(name) threw a non-MessagingError \(error)", file: file, line: line)
            }
        }
        attempt("ImageRequest", ImageRequest.init(bytes:), { $0.encode() })
        attempt("ImageEmbedding", ImageEmbedding.init(bytes:), { $0.encode() })
        attempt("PromptRequest", PromptRequest.init(bytes:), { $0.encode() })
        attempt("MaskResult", MaskResult.init(bytes:), { $0.encode() })
        attempt("ErrorReport", ErrorReport.init(bytes:), { $0.encode() })
        return (threw, mismatches)
    }

    func testEmptyInputIsMissingRequiredFields() {
        XCTAssertThrowsError(try ImageRequest(bytes: [])) { error in
            XCTAssertEqual(error as? MessagingError, .missingField(message: "ImageRequest", field: "image (png or raw)"))
        }
        XCTAssertThrowsError(try PromptRequest(bytes: [])) { error in
            XCTAssertEqual(error as? MessagingError, .missingField(message: "PromptRequest", field: "request_id"))
            XCTAssertEqual((error as? MessagingError)?.errorCode, .invalidProtobuf)
        }
    }

    func testTruncatedBytesThrowInvalidProtobuf() {
        let embedding = Samples.embedding(dataBytes: Array(repeating: 1, count: 64 * 4), shape: [64]).encode()
        XCTAssertThrowsError(try ImageEmbedding(bytes: Array(embedding.dropLast()))) { error in
            XCTAssertEqual(error as? MessagingError, .invalidProtobuf(message: "ImageEmbedding", byteCount: embedding.count - 1))
        }
        // Cutting inside the first field (request_id) can never leave a valid message.
        for type in Samples.encodings {
            for cut in 1..<4 {
                XCTAssertEqual(decodeWithAll(Array(type.prefix(cut))).threw, 5, "prefix \(cut) of \(type.prefix(8))")
            }
        }
    }

    func testInvalidUTF8InStringIsRejected() {
        // field 1 (request_id), wire type 2, length 2, bytes FF FE
        XCTAssertThrowsError(try PromptRequest(bytes: [0x0A, 0x02, 0xFF, 0xFE])) { error in
            guard case let .invalidField(message, field, _, reason, _)? = error as? MessagingError else {
                return XCTFail("expected invalidField, got \(error)")
            }
            XCTAssertEqual(message, "PromptRequest")
            XCTAssertEqual(field, "request_id")
            XCTAssertEqual(reason, "not valid UTF-8")
        }
    }

    func testRawImageSizeMismatchNamesTheSizes() {
        let bad = ImageRequest(requestID: "r", imageID: "i", image: .raw(RawImage(rgb8: [1, 2, 3], width: 2, height: 2)))
        XCTAssertThrowsError(try ImageRequest(bytes: bad.encode())) { error in
            let e = error as? MessagingError
            XCTAssertEqual(e?.errorCode, .invalidImage)
            XCTAssertTrue(e?.description.contains("needs 12 bytes") == true, e?.description ?? "")
            XCTAssertTrue(e?.description.contains("3 bytes") == true, e?.description ?? "")
        }
        let zero = ImageRequest(requestID: "r", imageID: "i", image: .raw(RawImage(rgb8: [], width: 0, height: 5)))
        XCTAssertThrowsError(try ImageRequest(bytes: zero.encode())) { XCTAssertEqual(($0 as? MessagingError)?.errorCode, .invalidImage) }
    }

    func testEmbeddingShapeAndChunkValidation() {
        var wrongTotal = Samples.embedding()
        wrongTotal.totalBytes += 4
        XCTAssertThrowsError(try ImageEmbedding(bytes: wrongTotal.encode())) { error in
            XCTAssertEqual((error as? MessagingError)?.errorCode, .shapeMismatch)
            XCTAssertTrue("\(error)".contains("[4, 2, 2]"), "\(error)")
        }
        var shortData = Samples.embedding()
        shortData.data.removeLast()
        XCTAssertThrowsError(try ImageEmbedding(bytes: shortData.encode())) { XCTAssertEqual(($0 as? MessagingError)?.errorCode, .shapeMismatch) }

        var badIndex = Samples.embedding().chunked(maxChunkBytes: 16)[0]
        badIndex.chunkIndex = badIndex.chunkCount
        XCTAssertThrowsError(try ImageEmbedding(bytes: badIndex.encode())) { XCTAssertEqual(($0 as? MessagingError)?.errorCode, .invalidEmbedding) }

        var zeroDim = Samples.embedding()
        zeroDim.shape = [4, 0, 2]
        XCTAssertThrowsError(try ImageEmbedding(bytes: zeroDim.encode())) { XCTAssertEqual(($0 as? MessagingError)?.errorCode, .shapeMismatch) }

        // Overflowing shapes must not trap.
        var huge = Samples.embedding()
        huge.shape = [.max, .max, .max, .max]
        XCTAssertThrowsError(try ImageEmbedding(bytes: huge.encode())) { XCTAssertEqual(($0 as? MessagingError)?.errorCode, .shapeMismatch) }

        // A later field occurrence wins in protobuf: append dtype = 7 (field 8, varint).
        XCTAssertThrowsError(try ImageEmbedding(bytes: Samples.embedding().encode() + [0x40, 0x07])) { error in
            XCTAssertTrue("\(error)".contains("field 'dtype' = 7"), "\(error)")
        }
    }

    func testPromptTensorAndFormatValidation() {
        let wrong = PromptRequest(requestID: "r", imageID: "i", maskInput: FloatTensor(shape: [1, 256, 256], data: [0, 0, 0, 0]))
        XCTAssertThrowsError(try PromptRequest(bytes: wrong.encode())) { error in
            XCTAssertEqual((error as? MessagingError)?.errorCode, .shapeMismatch)
            XCTAssertTrue("\(error)".contains("mask_input.data_f32le"), "\(error)")
            XCTAssertTrue("\(error)".contains("262144"), "\(error)")
        }
        // output_format = 9 (field 7, varint)
        XCTAssertThrowsError(try PromptRequest(bytes: PromptRequest(requestID: "r", imageID: "i").encode() + [0x38, 0x09])) { error in
            XCTAssertEqual((error as? MessagingError)?.errorCode, .unsupported)
        }
    }

    func testMaskResultIsMasksOrErrorAndZeroMasksIsAnAnswer() throws {
        // Regression: a valid answer with zero masks (everything, nothing past the filters)
        // was rejected, and the client waited for its timeout.
        let none = try MaskResult(bytes: MaskResult(requestID: "r", imageID: "i").encode())
        XCTAssertEqual(none.masks, [])
        XCTAssertNil(none.error)
        var both = Samples.masks
        both.error = .init(code: .internal, message: "x")
        XCTAssertThrowsError(try MaskResult(bytes: both.encode())) { XCTAssertTrue("\($0)".contains("an error result carries no masks"), "\($0)") }
        let unspecified = MaskResult(requestID: "r", imageID: "i", error: .init(code: .unspecified, message: "?"))
        XCTAssertThrowsError(try MaskResult(bytes: unspecified.encode())) { XCTAssertTrue("\($0)".contains("error.code"), "\($0)") }
    }

    func testErrorReportValidation() {
        var noCode = Samples.report
        noCode.code = .unspecified
        XCTAssertThrowsError(try ErrorReport(bytes: noCode.encode()))
        var lying = Samples.report
        lying.payloadSize = 1
        XCTAssertThrowsError(try ErrorReport(bytes: lying.encode())) { XCTAssertTrue("\($0)".contains("payload_size"), "\($0)") }
    }

    /// 2000 seeded mutations of valid messages (bit flips, byte overwrites, truncations,
    /// insertions, deletions, splices) and random buffers, each fed to all five decoders.
    func testSeededMutationsNeverCrash() {
        var random = SeededRandom(seed: 0x5E6F_1011)
        let seeds = Samples.encodings
        var threw = 0
        var decoded = 0
        var mismatches: [String] = []
        for iteration in 0..<2000 {
            var bytes = seeds[iteration % seeds.count]
            let rounds = Int.random(in: 1...4, using: &random)
            for _ in 0..<rounds {
                switch Int.random(in: 0..<7, using: &random) {
                case 0 where !bytes.isEmpty:
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                    bytes[bit / 8] ^= UInt8(1 << (bit % 8))
                case 1 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                case 2:
                    bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
                case 3:
                    let at = Int.random(in: 0...bytes.count, using: &random)
                    bytes.insert(contentsOf: random.bytes(Int.random(in: 1...8, using: &random)), at: at)
                case 4 where !bytes.isEmpty:
                    let start = Int.random(in: 0..<bytes.count, using: &random)
                    bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &random)))
                case 5:
                    let other = seeds[Int.random(in: 0..<seeds.count, using: &random)]
                    bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
                        + other.suffix(Int.random(in: 0...other.count, using: &random))
                default:
                    bytes = random.bytes(Int.random(in: 0...64, using: &random))
                }
            }
            let result = decodeWithAll(bytes)
            threw += result.threw
            decoded += 5 - result.threw
            mismatches += result.reencodeMismatches.map { "iteration \(iteration): \($0)" }
        }
        print("mutation test: \(threw) decodes threw, \(decoded) decoded")
        XCTAssertEqual(mismatches, [], "decoded values must re-encode stably")
        // Most mutations must be rejected (a decoder that accepts anything would fail here),
        // and some must still decode (the test would be vacuous if all bytes were garbage).
        XCTAssertGreaterThan(threw, 7000, "threw \(threw), decoded \(decoded)")
        XCTAssertGreaterThan(decoded, 50, "threw \(threw), decoded \(decoded)")
    }
}
