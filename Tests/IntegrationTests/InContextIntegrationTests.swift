import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import Serving
import Client
import Embedded
import XCTest

/// SegGPT / Painter through the services (embedded broker, the same service code a
/// cluster runs): prompt pairs registered once on the compacted prompt-pairs topic and
/// referenced by id; answers equal the in-process backend's; bad prompts get stable codes.
final class InContextIntegrationTests: XCTestCase {
    static var dir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SegGPTTests/Fixtures")
    }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent(name))) }

    func testSegGPTOverKafkaEqualsInProcessAndErrorsHaveStableCodes() async throws {
        let backend = try ModelRegistry.load(ModelLoadRequest(model: "seggpt", checkpoint: Self.dir.appendingPathComponent("seggpt_tiny").path))
        let segmenter = try XCTUnwrap(backend.inContext)
        let query = try bytes("query.png")
        let pairA = PromptPair(promptID: "a", image: try bytes("prompt_a.png"), mask: try bytes("mask_a.png"))
        // prompt_b with a mask of its own size: its top-left quarter.
        let imageB = try ImageDecoder.decodeRGB(try bytes("prompt_b.png"))
        let maskB = try BinaryMask(width: imageB.width, height: imageB.height,
                                   values: (0..<(imageB.width * imageB.height)).map { i in
                                       (i % imageB.width < imageB.width / 2 && i / imageB.width < imageB.height / 2) ? 1 : 0 })
        let pairB = PromptPair(promptID: "b", image: try bytes("prompt_b.png"), mask: try maskB.pngData())
        let classes = PromptPair(promptID: "classes", image: try bytes("prompt_a.png"), mask: try bytes("classes_a.png"), numLabels: 3)
        // A mask of another size than its image, and a mask that is not an image.
        let mismatched = PromptPair(promptID: "mismatched", image: try bytes("query.png"), mask: try bytes("mask_a.png"))
        let garbage = PromptPair(promptID: "garbage", image: try bytes("prompt_a.png"), mask: Array("not a png".utf8))
        let cases: [(String, InContextRequest)] = [
            ("one", InContextRequest(promptIDs: ["a"], returnRaw: true)),
            ("ensemble", InContextRequest(promptIDs: ["a", "b"], returnRaw: true)),
            ("semantic", InContextRequest(promptIDs: ["classes"], task: "semantic", numLabels: 3, returnRaw: true)),
        ]
        let queryImage = try ImageDecoder.decodeRGB(query)
        func local(_ r: InContextRequest, _ pairs: [PromptPair]) throws -> InContextAnswer {
            let examples = try pairs.map { try InContextExample.decode($0, maxPixels: ImageDecoder.defaultMaxPixels) }
            return try segmenter.segment(query: queryImage, examples: examples, request: r)
        }

        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let stack = try await EmbeddedStack.start(backends: BackendSet([backend]), logger: logger)
        do {
            let sc = SegflowClient(client: stack.client, logger: logger)
            try await sc.register([pairA, pairB, classes, mismatched, garbage])
            let remote = try await sc.segmentInContext(cases.map { (.png(query), "q-\($0.0)", nil) }, model: "seggpt",
                                                       inContext: { cases[$0].1 }, timeout: .seconds(120))
            let pairsFor: [String: PromptPair] = ["a": pairA, "b": pairB, "classes": classes]
            for ((name, request), r) in zip(cases, remote) {
                let l = try local(request, request.promptIDs.map { pairsFor[$0]! })
                XCTAssertEqual(r.masks, l.masks, "\(name): Kafka masks differ from in-process")
                XCTAssertEqual(r.rawOutput?.values, l.raw.data, "\(name): raw output differs")
                XCTAssertEqual(r.model, "seggpt")
                XCTAssertFalse(r.masks.isEmpty, name)
            }
            XCTAssertTrue(remote[2].masks.allSatisfy { $0.label > 0 }, "class-map answers carry their labels")

            // Stable codes for prompts that cannot be answered; the service keeps running.
            _ = try await expectInContextErrors(sc, query: query, model: "seggpt", [
                ("unregistered", InContextRequest(promptIDs: ["never-registered"]), .promptNotFound),
                ("mismatched", InContextRequest(promptIDs: ["mismatched"]), .shapeMismatch),
                ("garbage", InContextRequest(promptIDs: ["garbage"]), .invalidPrompt),
                ("depth task", InContextRequest(promptIDs: ["a"], task: "depth"), .invalidPrompt),
            ])
            // Still serving after the errors.
            let again = try await sc.segmentInContext(image: .png(query), imageID: "q-again", model: "seggpt",
                                                      inContext: InContextRequest(promptIDs: ["a"]), timeout: .seconds(60))
            XCTAssertEqual(again.masks, try local(InContextRequest(promptIDs: ["a"]), [pairA]).masks)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }
}
