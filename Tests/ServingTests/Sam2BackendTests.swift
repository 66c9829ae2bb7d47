import Backends
import Foundation
import Imaging
import Messaging
import SAM2
import XCTest

/// SAM 2 through the backend seam the services use: the wire record of its three feature
/// levels, the prompt path, and the errors a forged or foreign record gets.
final class Sam2BackendTests: XCTestCase {
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("SAM2Tests/Fixtures")
    }
    static let backend = Result {
        try ModelRegistry.load(ModelLoadRequest(model: "sam2.1-hiera-t", checkpoint: fixtures.appendingPathComponent("sam2_tiny").path))
    }
    /// f16 features on the wire vs f32 in-process, on the tiny random model's 56×40 answer:
    /// its logits sit close to 0 on many pixels, so f16's 2⁻¹¹ relative rounding of the
    /// features flips a few of them (measured: 1 of 67 foreground pixels).
    static let f16MaskIoU = 0.95

    func image() throws -> RGBImage { try PNG.decodeRGB(contentsOfFile: Self.fixtures.appendingPathComponent("image.png").path) }
    func context(_ dtype: Messaging.DType) -> EmbeddingContext {
        EmbeddingContext(requestID: "r", imageID: "img", dtype: dtype, encoderMs: 1, frame: nil, createdAtMs: 0)
    }
    let request = PromptRequest(requestID: "p", imageID: "img", points: [.init(x: 20.5, y: 15, label: 1)],
                                boxes: [.init(x0: 10, y0: 8, x1: 45, y1: 33)], multimask: true, model: "sam2.1-hiera-t")

    func testTheRegistryLoadsSam2AndTheWireCarriesAllThreeLevels() throws {
        let b = try Self.backend.get()
        XCTAssertEqual(b.modelName, "sam2.1-hiera-t")
        XCTAssertEqual(b.maskInputSide, 32)
        let e = try b.embed(image())
        let direct = try b.answer(request, embedding: e)
        XCTAssertEqual(direct.count, 3)
        // f32: the record restores the very same features, so the answer is identical.
        let w32 = try b.wire(e, context: context(.f32))
        XCTAssertEqual(w32.shape, [4, 32, 8, 8])
        let back = try XCTUnwrap(try b.embedding(fromWire: w32) as? Sam2BackendEmbedding)
        XCTAssertEqual(back.features, (e as? Sam2BackendEmbedding)?.features)
        XCTAssertEqual(try b.answer(request, embedding: back), direct)
        // f16 halves the bytes; masks stay close.
        let w16 = try b.wire(e, context: context(.f16))
        XCTAssertEqual(w16.data.count * 2, w32.data.count)
        let viaF16 = try b.answer(request, embedding: try b.embedding(fromWire: w16))
        for (a, c) in zip(direct, viaF16) {
            XCTAssertEqual(a.predictedIoU, c.predictedIoU, accuracy: 1e-2)
            let (ma, mc) = (try WireMask.decode(a), try WireMask.decode(c))
            var inter = 0, union = 0
            for j in 0..<ma.bits.count { inter += Int(ma.bits[j] & mc.bits[j]); union += Int(ma.bits[j] | mc.bits[j]) }
            XCTAssertGreaterThanOrEqual(Double(inter) / Double(max(union, 1)), Self.f16MaskIoU)
        }
    }

    func testForgedOrForeignRecordsAreRefusedWithTheirCode() throws {
        let b = try Self.backend.get()
        let good = try b.wire(try b.embed(image()), context: context(.f32))
        var shape = good; shape.shape = [32, 8, 8]; shape.data = Array(good.data.prefix(32 * 64 * 4))
        XCTAssertThrowsError(try b.embedding(fromWire: shape)) { e in
            XCTAssertEqual((e as? ServingError)?.code, .shapeMismatch)
            XCTAssertTrue("\(e)".contains("[4, 32, 8, 8]"), "\(e)")
        }
        var foreign = good; foreign.model = "litemedsam"
        XCTAssertThrowsError(try b.embedding(fromWire: foreign)) { e in XCTAssertEqual((e as? ServingError)?.code, .shapeMismatch) }
        var nan = good
        nan.data.replaceSubrange(0..<4, with: [0, 0, 0xC0, 0x7F])  // a float32 NaN
        XCTAssertThrowsError(try b.embedding(fromWire: nan)) { e in XCTAssertEqual((e as? ServingError)?.code, .invalidEmbedding) }
        var short = good; short.data.removeLast(4)
        XCTAssertThrowsError(try b.embedding(fromWire: short)) { e in XCTAssertEqual((e as? ServingError)?.code, .shapeMismatch) }
    }

    func testUnsupportedAndBadPromptsAreNamed() throws {
        let b = try Self.backend.get()
        let e = try b.embed(image())
        var everything = request; everything.points = []; everything.boxes = []; everything.everything = AutomaticMaskParams()
        XCTAssertThrowsError(try b.answer(everything, embedding: e)) { err in XCTAssertEqual((err as? ServingError)?.code, .unsupported) }
        var outside = request; outside.points = [.init(x: 80, y: 5, label: 1)]
        XCTAssertThrowsError(try b.answer(outside, embedding: e)) { err in
            XCTAssertEqual((err as? ServingError)?.code, .invalidPrompt)
            XCTAssertTrue("\(err)".contains("point[0].x"), "\(err)")
        }
        var mask = request; mask.maskInput = FloatTensor(shape: [1, 64, 64], values: [Float](repeating: 0, count: 64 * 64))
        XCTAssertThrowsError(try b.answer(mask, embedding: e)) { err in
            XCTAssertEqual((err as? ServingError)?.code, .shapeMismatch)
            XCTAssertTrue("\(err)".contains("32"), "\(err)")
        }
    }

    func testAMissingCheckpointSaysWhichFilesToBring() throws {
        XCTAssertThrowsError(try ModelRegistry.load(ModelLoadRequest(model: "sam2.1-hiera-l"))) { e in
            XCTAssertTrue("\(e)".contains("sam2.1_hiera_large.pt") && "\(e)".contains("facebook/sam2.1-hiera-large"), "\(e)")
        }
        XCTAssertThrowsError(try ModelRegistry.load(ModelLoadRequest(model: "sam2.1-hiera-t", checkpoint: "/nonexistent/sam2.pt"))) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/sam2.pt"), "\(e)")
        }
    }
}
