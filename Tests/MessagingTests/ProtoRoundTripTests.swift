import Messaging
import XCTest

/// Fully populated examples of every message, reused by the invalid-input tests.
enum Samples {
    static let frame = VideoFrame(streamID: "cam-7 🎥", frameIndex: .max)

    static let imagePNG = ImageRequest(requestID: "req-1", imageID: "img-1",
                                       image: .png([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0xFF]),
                                       frame: frame, model: "sam_vit_b", replyTopic: "client.replies",
                                       createdAtMs: .min)

    static let imageRaw = ImageRequest(requestID: "req-2", imageID: "图像-2",
                                       image: .raw(RawImage(rgb8: Array(0..<18), width: 3, height: 2)),
                                       createdAtMs: .max)

    static func embedding(dataBytes: [UInt8]? = nil, shape: [UInt32] = [4, 2, 2], dtype: DType = .f32) -> ImageEmbedding {
        let count = shape.reduce(1) { $0 * Int($1) } * dtype.byteSize
        return ImageEmbedding(requestID: "req-3", imageID: "img-3", model: "lite_medsam",
                              originalHeight: 480, originalWidth: 640, inputHeight: 192, inputWidth: 256,
                              dtype: dtype, shape: shape, data: dataBytes ?? (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) },
                              encoderMs: 123.456, frame: frame, createdAtMs: 1_700_000_000_000)
    }

    static let prompt = PromptRequest(
        requestID: "req-4", imageID: "img-4",
        points: [.init(x: 0, y: 0, label: 1), .init(x: .greatestFiniteMagnitude, y: -.infinity, label: -1),
                 .init(x: .leastNonzeroMagnitude, y: 1023.5, label: 0)],
        boxes: [.init(x0: 1, y0: 2, x1: 300.25, y1: 400.75)],
        maskInput: FloatTensor(shape: [1, 2, 3], values: [0, -1.5, 2.25, .infinity, -0.0, 1e-30]),
        multimask: true, outputFormat: .png, replyTopic: "client.replies", text: "a cat ✓",
        textEmbedding: FloatTensor(shape: [4], values: [1, 2, 3, 4]), model: "sam_vit_h",
        createdAtMs: -1, returnLowResLogits: true, frame: frame)

    static let masks = MaskResult(
        requestID: "req-5", imageID: "img-5",
        masks: [
            .init(encoding: .rle(counts: "PPYo1", height: 480, width: 640), predictedIoU: 0.98, stabilityScore: 0.95,
                  bbox: .init(x: 0, y: 1, w: .max, h: 3), area: .max,
                  lowResLogits: FloatTensor(shape: [1, 1, 2], values: [-20, 20])),
            .init(encoding: .png([1, 2, 3]), predictedIoU: -0.5, stabilityScore: 0, bbox: .init(x: 0, y: 0, w: 0, h: 0), area: 0),
            // An automatic-mask record: point prompt and crop box travel too.
            .init(encoding: .rle(counts: "1", height: 1, width: 1), predictedIoU: 0.9, stabilityScore: 0.97,
                  bbox: .init(x: 1, y: 2, w: 3, h: 4), area: 12, pointCoords: [10.5, 0.15625], cropBox: .init(x: 0, y: 0, w: 640, h: 480)),
        ],
        timings: .init(queueMs: 1.5, decodeMs: 20.25, totalMs: 1e12), model: "sam_vit_b", frame: frame)

    static let failure = MaskResult(requestID: "req-6", imageID: "",
                                    error: .init(code: .embeddingNotFound, message: "no embedding for img-6 within 30 s"))

    static let report = ErrorReport(sourceTopic: SegflowTopics.prompts, partition: 2, offset: .max, key: Array("img-7".utf8),
                                    code: .invalidProtobuf, message: "bad bytes", service: "prompt-decoder",
                                    fullPayload: Array(repeating: 0xAB, count: 100), payloadLimit: 10,
                                    requestID: "req-7", reportedAtMs: 42)

    /// One encoding of each message type (used as mutation seeds).
    static var encodings: [[UInt8]] {
        [imagePNG.encode(), imageRaw.encode(), embedding().encode(), embedding().chunked(maxChunkBytes: 7)[1].encode(),
         prompt.encode(), masks.encode(), failure.encode(), report.encode()]
    }
}

final class ProtoRoundTripTests: XCTestCase {
    func testImageRequestRoundTrips() throws {
        XCTAssertEqual(try ImageRequest(bytes: Samples.imagePNG.encode()), Samples.imagePNG)
        XCTAssertEqual(try ImageRequest(bytes: Samples.imageRaw.encode()), Samples.imageRaw)
        let decoded = try ImageRequest(bytes: Samples.imageRaw.encode())
        XCTAssertNil(decoded.frame, "absent frame must stay absent")
        XCTAssertEqual(decoded.model, "")
    }

    func testImageEmbeddingRoundTripsWholeAndChunked() throws {
        for dtype in DType.allCases {
            let embedding = Samples.embedding(dtype: dtype)
            XCTAssertEqual(try ImageEmbedding(bytes: embedding.encode()), embedding)
            let chunks = embedding.chunked(maxChunkBytes: 5)
            XCTAssertEqual(chunks.count, (embedding.data.count + 4) / 5)
            for chunk in chunks {
                let decoded = try ImageEmbedding(bytes: chunk.encode())
                XCTAssertEqual(decoded, chunk)
                XCTAssertEqual(decoded.totalBytes, UInt64(embedding.data.count))
            }
            XCTAssertEqual(chunks.flatMap(\.data), embedding.data)
        }
    }

    func testPromptRequestRoundTripsIncludingExtremeFloats() throws {
        let decoded = try PromptRequest(bytes: Samples.prompt.encode())
        XCTAssertEqual(decoded, Samples.prompt)
        XCTAssertEqual(decoded.points[1].y, -.infinity)
        XCTAssertEqual(decoded.maskInput?.values[4].sign, .minus, "-0.0 keeps its sign")
        XCTAssertEqual(decoded.textEmbedding?.values, [1, 2, 3, 4])

        // NaN survives bit-exactly (Equatable cannot show it: NaN != NaN).
        var nan = PromptRequest(requestID: "r", imageID: "i", points: [.init(x: .nan, y: 1, label: 1)])
        nan.outputFormat = .rle
        XCTAssertTrue(try PromptRequest(bytes: nan.encode()).points[0].x.isNaN)

        let minimal = PromptRequest(requestID: "r", imageID: "i")
        let back = try PromptRequest(bytes: minimal.encode())
        XCTAssertEqual(back, minimal)
        XCTAssertNil(back.text, "empty text decodes as no text prompt")
        XCTAssertEqual(back.outputFormat, .rle, "unset output format means RLE")
    }

    func testMaskResultRoundTripsMasksAndErrors() throws {
        XCTAssertEqual(try MaskResult(bytes: Samples.masks.encode()), Samples.masks)
        XCTAssertEqual(try MaskResult(bytes: Samples.failure.encode()), Samples.failure)
        // A code from a newer schema survives as .unrecognized.
        let future = MaskResult(requestID: "r", imageID: "i", error: .init(code: .unrecognized(4242), message: "new"))
        XCTAssertEqual(try MaskResult(bytes: future.encode()).error?.code, .unrecognized(4242))
    }

    func testErrorReportRoundTripsAndTruncatesPayload() throws {
        let report = Samples.report
        XCTAssertEqual(report.payload.count, 10)
        XCTAssertTrue(report.payloadTruncated)
        XCTAssertEqual(report.payloadSize, 100)
        XCTAssertEqual(try ErrorReport(bytes: report.encode()), report)
    }

    func testErrorCodesAreStable() {
        // Wire values are a contract with every deployed service: never change them.
        let expected: [(ErrorCode, Int32, String)] = [
            (.unspecified, 0, "ERROR_CODE_UNSPECIFIED"), (.invalidProtobuf, 1, "INVALID_PROTOBUF"),
            (.invalidImage, 2, "INVALID_IMAGE"), (.imageTooLarge, 3, "IMAGE_TOO_LARGE"),
            (.unknownModel, 4, "UNKNOWN_MODEL"), (.invalidPrompt, 5, "INVALID_PROMPT"),
            (.embeddingNotFound, 6, "EMBEDDING_NOT_FOUND"), (.shapeMismatch, 7, "SHAPE_MISMATCH"),
            (.internal, 8, "INTERNAL"), (.invalidEmbedding, 9, "INVALID_EMBEDDING"),
            (.unsupported, 10, "UNSUPPORTED"), (.timeout, 11, "TIMEOUT"),
        ]
        for (code, raw, name) in expected {
            XCTAssertEqual(code.rawValue, raw, name)
            XCTAssertEqual(ErrorCode(rawValue: raw), code, name)
            XCTAssertEqual(code.description, name)
        }
    }

    func testLargeMessagesRoundTrip() throws {
        var random = SeededRandom(seed: 7)
        let big = Samples.embedding(dataBytes: random.bytes(256 * 64 * 64 * 4), shape: [256, 64, 64])
        let bytes = big.encode()
        XCTAssertGreaterThan(bytes.count, 4 * 1024 * 1024)
        XCTAssertEqual(try ImageEmbedding(bytes: bytes), big)
        let many = PromptRequest(requestID: "r", imageID: "i",
                                 points: (0..<5000).map { .init(x: Float($0), y: Float(-$0), label: Int32($0 % 2)) })
        XCTAssertEqual(try PromptRequest(bytes: many.encode()), many)
    }
}
