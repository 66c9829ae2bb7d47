import Backends
import Client
import Embedded
import Foundation
import Imaging
import Logging
import Messaging
import SAM
import XCTest

/// `SegflowClient.segmentBatch`, the folder path over Kafka: answers come back per image in
/// order, equal to in-process; an image the encoder refuses fails only its own item, at once.
final class BatchClientTests: XCTestCase {
    func testABadImageFailsOnlyItsItemAndTheOthersEqualInProcess() async throws {
        try Fixtures.requireCheckpoint()
        let sam = try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM)
        let backend = SAMBackend(sam)
        let chelsea = try Fixtures.png("chelsea")
        let coffee = [UInt8](try Data(contentsOf: Fixtures.dir.appendingPathComponent("coffee.png")))
        // A PNG signature followed by junk: the encoder answers INVALID_IMAGE.
        let corrupt = Array(PNG.signature) + Array("not really a PNG at all".utf8)
        func prompt() -> PromptRequest {
            PromptRequest(requestID: "prm-" + UUID().uuidString, imageID: "image-" + UUID().uuidString,
                          boxes: [.init(x0: 60, y0: 10, x1: 330, y1: 290)], model: "litemedsam")
        }
        let items = [chelsea, corrupt, coffee].map { SegflowClient.BatchItem(image: .png($0), prompt: prompt()) }

        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let stack = try await EmbeddedStack.start(backends: BackendSet([backend]), embeddingDType: .f32, logger: logger)
        var answers: [(Int, Result<MaskResult, ServingError>)] = []
        let t0 = Date()
        do {
            try await SegflowClient(client: stack.client, logger: logger).segmentBatch(items, timeout: .seconds(120)) { answers.append(($0, $1)) }
        } catch {
            await stack.stop()
            throw error
        }
        let elapsed = Date().timeIntervalSince(t0)
        await stack.stop()

        XCTAssertEqual(answers.map(\.0), [0, 1, 2], "one answer per image, in order")
        guard answers.count == 3 else { return }
        if case let .failure(e) = answers[1].1 {
            XCTAssertEqual(e.code, .invalidImage, "\(e)")
        } else { XCTFail("the corrupt image was answered with masks") }
        // Not the decoder's 30 s wait for an embedding that never comes.
        XCTAssertLessThan(elapsed, 25, "the failed image held the batch up")
        for (i, bytes) in [(0, chelsea), (2, coffee)] {
            guard case let .success(r) = answers[i].1 else { XCTFail("image \(i): \(answers[i].1)"); continue }
            let img = try PNG.decodeRGB(bytes)
            let local = try backend.segment(img, request: items[i].prompt).result
            XCTAssertEqual(r.masks.map(\.encoding), local.masks.map(\.encoding), "image \(i): Kafka and in-process masks differ")
            XCTAssertEqual(r.imageID, items[i].prompt.imageID)
        }
    }
}
