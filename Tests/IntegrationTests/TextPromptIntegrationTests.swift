import CLIPSeg
import Checkpoint
import Foundation
import Imaging
import Messaging
import Serving
import Tensor
import XCTest

/// Text prompts through segflow-text-encoder → segflow-prompt-decoder as separate
/// processes on the embedded broker, with a tiny random CLIPSeg checkpoint that uses the
/// real tensor names and CLIP's real vocabulary size (so the real tokenizer feeds it).
final class TextPromptIntegrationTests: XCTestCase {
    /// Writes a deterministic random checkpoint for `CLIPSegConfig.tinyTestFullVocabulary`.
    static func makeCheckpoint(at url: URL) throws {
        let config = CLIPSegConfig.tinyTestFullVocabulary
        let vb = WeightLoader.synthesizing(zeros: true)
        _ = try CLIPSegVisionEncoder(vb, config: config)
        _ = try CLIPSegTextEncoder(vb, config: config)
        _ = try CLIPSegDecoderHead(vb.pp("decoder"), config: config)
        var state: UInt64 = 0x5eed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        let tensors = vb.synthesizedTensors.map { item -> (name: String, tensor: Tensor) in
            let fanIn = item.shape.count > 1 ? item.shape.dropFirst().reduce(1, *) : 1
            let scale = item.shape.count > 1 ? 1 / Float(fanIn).squareRoot() : 0.5
            let offset: Float = item.name.hasSuffix("layer_norm1.weight") || item.name.hasSuffix("layer_norm2.weight") ? 1 : 0
            return (item.name, Tensor(shape: item.shape) { _ in next() * scale + offset })
        }
        try SafeTensorsWriter.write(tensors, to: url)
    }

    func testTextPromptThroughTextEncoderAndDecoderMatchesInProcess() async throws {
        let cluster = try await TestCluster(partitions: 4)
        defer { cluster.stop() }
        let ckpt = cluster.logDir.appendingPathComponent("clipseg-tiny.safetensors")
        try Self.makeCheckpoint(at: ckpt)
        let common = ["--model", "clipseg", "--checkpoint", ckpt.path, "--clipseg-config", "tiny-test"]
        try cluster.start("segflow-image-encoder", name: "encoder", extra: common + ["--embedding-dtype", "f32"])
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: common + ["--max-wait-ms", "4000"])
        try cluster.start("segflow-text-encoder", name: "text", extra: common)
        let png = try Fixtures.png("chelsea_crop")
        func text(_ id: String, image: String, _ t: String) -> ProducerRecord {
            var p = PromptRequest(requestID: id, imageID: image)
            p.text = t
            return record(SegflowTopics.text, key: image, p.encode(), requestID: id)
        }
        let longText = Array(repeating: "cat", count: 100).joined(separator: " ")
        try await cluster.send([
            record(SegflowTopics.images, key: "img", ImageRequest(requestID: "img-r", imageID: "img", image: .png(png), model: "clipseg").encode(),
                   requestID: "img-r"),
            text("t-cat", image: "img", "a photo of a cat"),
            text("t-empty", image: "img", "   "),
            text("t-long", image: "img", longText),
            text("t-noimage", image: "never-encoded", "a cat"),
            record(SegflowTopics.prompts, key: "img", { var p = PromptRequest(requestID: "t-wrongtopic", imageID: "img"); p.text = "a cat"; return p.encode() }(),
                   requestID: "t-wrongtopic"),
        ])
        let ids: Set<String> = ["t-cat", "t-empty", "t-long", "t-noimage", "t-wrongtopic"]
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) {
            Set(results($0).map(\.requestID)).isSuperset(of: ids)
        }
        let byID = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byID["t-empty"]?.error?.code, .invalidPrompt)
        XCTAssertEqual(byID["t-long"]?.error?.code, .invalidPrompt)
        XCTAssertTrue(byID["t-long"]?.error?.message.contains("too long") ?? false)
        XCTAssertEqual(byID["t-noimage"]?.error?.code, .embeddingNotFound)
        XCTAssertEqual(byID["t-wrongtopic"]?.error?.code, .invalidPrompt)
        let cat = try XCTUnwrap(byID["t-cat"], "no answer; text log: \(cluster.log("text")) decoder log: \(cluster.log("decoder"))")
        XCTAssertNil(cat.error, cat.error?.message ?? "")
        XCTAssertEqual(cat.model, "clipseg")

        // The same phrase in this process, without Kafka.
        let backend = try CLIPSegBackend(checkpoint: ckpt, config: .tinyTestFullVocabulary, parts: [.vision, .text, .decoder])
        let image = try PNG.decodeRGB(png)
        let local = try backend.segment(try backend.visionEmbedding(image), conditional: try backend.textEmbedding("a photo of a cat"))
        guard case let .rle(counts, h, w) = cat.masks.first?.encoding else { return XCTFail("no RLE mask") }
        XCTAssertEqual([Int(h), Int(w)], [image.height, image.width])
        XCTAssertEqual(counts, COCORLE(mask: local.mask).compressedCounts, "Kafka path and in-process path differ")
        XCTAssertEqual(cat.masks.first?.predictedIoU ?? -1, local.score, accuracy: 1e-6)
        XCTAssertTrue(cluster.processes.values.allSatisfy(\.isRunning))
    }
}
