import CLIPSeg
import Foundation
import Imaging
import Logging
import Messaging
import Serving
import Client
import XCTest

/// CLIPSeg one-shot through segflow-image-encoder → segflow-prompt-decoder as separate
/// processes: example pairs registered on the prompt-pairs topic, the visual prompt's
/// conditional embedding computed in the image-encoder (where the vision tower runs) and
/// forwarded with the query's embedding, the FiLM decoder answering in the prompt-decoder.
/// Answers equal the in-process backend's; bad prompts get stable codes.
final class OneShotIntegrationTests: XCTestCase {
    static var clipsegFixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CLIPSegTests/Fixtures")
    }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: Self.clipsegFixtures.appendingPathComponent(name))) }
    /// The parity tests' tiny random CLIPSeg (transformers' names and init scale, so its masks
    /// are neither empty nor full). Its text tower has a 1000-token vocabulary, but one-shot
    /// paths never load the text tower, and the `tiny-test` preset's vision tower and decoder
    /// are this checkpoint's.
    static var checkpoint: URL { clipsegFixtures.appendingPathComponent("clipseg_tiny.safetensors") }

    func testOneShotThroughEncoderAndDecoderMatchesInProcessAndErrorsHaveStableCodes() async throws {
        let cluster = try await TestCluster(partitions: 4)
        defer { cluster.stop() }
        let ckpt = Self.checkpoint
        let common = ["--model", "clipseg", "--checkpoint", ckpt.path, "--clipseg-config", "tiny-test"]
        try cluster.start("segflow-image-encoder", name: "encoder", extra: common + ["--embedding-dtype", "f32"])
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: common + ["--max-wait-ms", "20000"])

        let pairA = PromptPair(promptID: "a", image: try bytes("visual_prompt.png"), mask: try bytes("visual_prompt_mask.png"))
        let pairB = PromptPair(promptID: "b", image: try bytes("visual_prompt_b.png"), mask: try bytes("visual_prompt_b_mask.png"))
        let imageA = try ImageDecoder.decodeRGB(pairA.image)
        let empty = PromptPair(promptID: "empty", image: pairA.image,
                               mask: try BinaryMask(width: imageA.width, height: imageA.height).pngData())
        let classes = PromptPair(promptID: "classes", image: pairA.image, mask: pairA.mask, numLabels: 2)
        let mismatched = PromptPair(promptID: "mismatched", image: pairB.image, mask: pairA.mask)
        let query = try Fixtures.png("chelsea_crop")
        let queryImage = try ImageDecoder.decodeRGB(query)

        // In this process, without Kafka: the same backend calls the CLI's --in-process makes.
        let local = try CLIPSegBackend(checkpoint: ckpt, config: .tinyTestFullVocabulary, parts: [.vision, .decoder])
        func inProcess(_ pairs: [PromptPair]) throws -> [MaskResult.Mask] {
            let examples = try pairs.map { try InContextExample.decode($0, maxPixels: ImageDecoder.defaultMaxPixels) }
            return try local.segment(queryImage, examples: examples, request: InContextRequest(promptIDs: pairs.map(\.promptID))).masks
        }

        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let sc = SegflowClient(client: cluster.client, logger: logger)
        try await sc.register([pairA, pairB, empty, classes, mismatched])
        let cases: [(String, [PromptPair])] = [("one", [pairA]), ("two", [pairA, pairB])]
        let remote = try await sc.segmentInContext(cases.map { (.png(query), "q-\($0.0)", nil) }, model: "clipseg",
                                                   inContext: { InContextRequest(promptIDs: cases[$0].1.map(\.promptID)) },
                                                   timeout: .seconds(120))
        for ((name, pairs), r) in zip(cases, remote) {
            XCTAssertEqual(r.model, "clipseg")
            XCTAssertEqual(r.masks.count, 1, name)
            let area = Int(r.masks.first?.area ?? 0)
            XCTAssertTrue(area > 0 && area < queryImage.width * queryImage.height, "\(name): area \(area) should be a partial mask")
            XCTAssertEqual(r.masks, try inProcess(pairs), "\(name): Kafka masks differ from in-process; encoder log: \(cluster.log("encoder"))")
        }
        // Averaging changes the conditioning, so the two answers differ (the test would not see a dropped pair otherwise).
        XCTAssertNotEqual(try inProcess([pairA]), try inProcess([pairA, pairB]))

        let messages = try await expectInContextErrors(sc, query: query, model: "clipseg", [
            ("unregistered", InContextRequest(promptIDs: ["never-registered"]), .promptNotFound),
            ("empty mask", InContextRequest(promptIDs: ["empty"]), .invalidPrompt),
            ("class-index mask", InContextRequest(promptIDs: ["classes"]), .invalidPrompt),
            ("mask of another size", InContextRequest(promptIDs: ["mismatched"]), .shapeMismatch),
            ("task", InContextRequest(promptIDs: ["a"], task: "semantic"), .invalidPrompt),
            ("raw output", InContextRequest(promptIDs: ["a"], returnRaw: true), .unsupported),
        ])
        XCTAssertTrue(messages["empty mask"]?.contains("prompt pair empty") ?? false, "\(messages)")
        // Still serving after the errors, and the decoder answered (not the encoder).
        let again = try await sc.segmentInContext(image: .png(query), imageID: "q-again", model: "clipseg",
                                                  inContext: InContextRequest(promptIDs: ["b"]), timeout: .seconds(60))
        XCTAssertEqual(again.masks, try inProcess([pairB]))
        XCTAssertTrue(cluster.log("encoder").contains("forwarded example prompt"), cluster.log("encoder"))
        XCTAssertTrue(cluster.processes.values.allSatisfy(\.isRunning))
    }
}

extension CommandLineTests {
    /// The README's one-shot example as a user runs it: in-process and through the embedded
    /// broker (f16 embeddings on the wire, hence an IoU bound rather than equal bytes).
    func testCLIPSegOneShotCLIInProcessAndOverTheEmbeddedBroker() throws {
        let fx = OneShotIntegrationTests.clipsegFixtures.path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-oneshot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let clipseg = ["--model", "clipseg", "--checkpoint", OneShotIntegrationTests.checkpoint.path, "--clipseg-config", "tiny-test"]
        let prompts = ["--prompt-image", "\(fx)/visual_prompt.png", "--prompt-mask", "\(fx)/visual_prompt_mask.png",
                       "--prompt-image", "\(fx)/visual_prompt_b.png", "--prompt-mask", "\(fx)/visual_prompt_b_mask.png"]
        var masks: [BinaryMask] = []
        for (label, extra) in [("local", ["--in-process"]), ("kafka", [String]())] {
            let r = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + prompts + extra
                            + ["--out", dir.appendingPathComponent("\(label).png").path, "--json", dir.appendingPathComponent("\(label).json").path])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("clipseg from 2 example(s)"), r.output)
            masks.append(try BinaryMask(png: [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(label).png")))))
        }
        XCTAssertEqual(masks[0].width, 120)
        XCTAssertTrue(masks[0].area > 0 && masks[0].area < 120 * 100, "area \(masks[0].area) should be a partial mask")
        XCTAssertGreaterThanOrEqual(maskIoU(masks[0], masks[1]), Self.wireVersusInProcessIoU, "in-process vs embedded broker")

        // Usage errors name what is missing or wrong, before any compute.
        let neither = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + ["--out", dir.appendingPathComponent("x.png").path])
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.output.contains("--prompt-image"), neither.output)
        let both = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + prompts + ["--text", "a cat", "--out", dir.appendingPathComponent("x.png").path])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.output.contains("cannot be combined with"), both.output)
        let blank = dir.appendingPathComponent("blank.png").path
        try PNG.write(try BinaryMask(width: 88, height: 72).grayImage(), toFile: blank)
        let empty = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + ["--in-process", "--prompt-image", "\(fx)/visual_prompt.png",
                             "--prompt-mask", blank, "--out", dir.appendingPathComponent("x.png").path])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.output.contains("no foreground"), empty.output)
    }

    /// `--refine sam` after a one-shot answer (as after a text prompt): in-process and over
    /// the embedded broker, SAM's mask goes to --out and its record into the JSON.
    func testCLIPSegOneShotRefinedBySAMCLI() throws {
        try Fixtures.requireCheckpoint()
        let fx = OneShotIntegrationTests.clipsegFixtures.path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-oneshot-sam-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let clipseg = ["--model", "clipseg", "--checkpoint", OneShotIntegrationTests.checkpoint.path, "--clipseg-config", "tiny-test",
                       "--prompt-image", "\(fx)/visual_prompt.png", "--prompt-mask", "\(fx)/visual_prompt_mask.png"]
        let plain = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + ["--in-process", "--out", dir.appendingPathComponent("plain.png").path])
        XCTAssertEqual(plain.status, 0, plain.output)
        let clipsegMask = try BinaryMask(png: [UInt8](try Data(contentsOf: dir.appendingPathComponent("plain.png"))))
        // SAM's mask from the one-shot mask's box and centre point, both routes.
        var refined: [BinaryMask] = []
        for (label, extra) in [("refined-local", ["--in-process"]), ("refined-kafka", [String]())] {
            let json = dir.appendingPathComponent("\(label).json")
            let r = try run(["segment", "\(fx)/chelsea_crop.png"] + clipseg + extra
                            + ["--refine", "sam", "--out", dir.appendingPathComponent("\(label).png").path, "--json", json.path])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("SAM refined"), r.output)
            let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
            XCTAssertNotNil(doc?["sam"], "the JSON keeps SAM's result next to CLIPSeg's masks")
            refined.append(try BinaryMask(png: [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(label).png")))))
        }
        XCTAssertNotEqual(refined[0], clipsegMask, "--out holds SAM's mask, not CLIPSeg's")
        XCTAssertGreaterThanOrEqual(maskIoU(refined[0], refined[1]), Self.wireVersusInProcessIoU, "refined: in-process vs embedded broker")
    }
}
