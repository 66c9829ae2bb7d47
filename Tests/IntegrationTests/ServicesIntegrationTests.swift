import Foundation
import Imaging
import Messaging
import Pipeline
import SAM
import Serving
import XCTest

/// The services as separate processes on the embedded broker (issue: Kafka microservices).
final class ServicesIntegrationTests: XCTestCase {
    let images = ["chelsea", "coffee", "chelsea_crop"]

    func prompts(for image: String) -> [PromptRequest] {
        switch image {
        case "coffee": return [PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: 140, y0: 20, x1: 470, y1: 300)]),
                               PromptRequest(requestID: "", imageID: "", points: [.init(x: 300, y: 150, label: 1)], multimask: true)]
        case "chelsea": return [PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: 60, y0: 10, x1: 330, y1: 290)]),
                                PromptRequest(requestID: "", imageID: "", points: [.init(x: 190, y: 150, label: 1), .init(x: 20, y: 20, label: 0)])]
        default: return [PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 90)],
                                       multimask: true)]
        }
    }

    /// Sends every image and its prompts (prompts first, so some must wait for embeddings)
    /// and returns request id → (image, prompt).
    func submit(_ cluster: TestCluster, tag: String) async throws -> [String: (image: String, prompt: PromptRequest)] {
        var expected: [String: (String, PromptRequest)] = [:]
        var records: [ProducerRecord] = []
        for image in images {
            let imageID = "\(tag)-\(image)"
            for (i, var p) in prompts(for: image).enumerated() {
                p.requestID = "\(imageID)-p\(i)"
                p.imageID = imageID
                expected[p.requestID] = (image, p)
                records.append(record(SegflowTopics.prompts, key: imageID, p.encode(), requestID: p.requestID))
            }
        }
        for image in images {
            let imageID = "\(tag)-\(image)"
            let req = ImageRequest(requestID: "\(imageID)-img", imageID: imageID, image: .png(try Fixtures.png(image)))
            records.append(record(SegflowTopics.images, key: imageID, req.encode(), requestID: req.requestID))
        }
        try await cluster.send(records)
        return expected
    }

    /// The in-process answer for the same image and prompt, from an embedding rounded
    /// through f16 exactly as the wire carries it (or not, for f32).
    func inProcess(_ sam: Sam, image: String, prompt: PromptRequest, f16: Bool) throws -> [String] {
        rleCounts(try inProcessMasks(sam, image: try PNG.decodeRGB(try Fixtures.png(image)), prompt: prompt, f16: f16))
    }

    func counts(_ r: MaskResult) -> [String] { rleCounts(r.masks) }

    func testImagesAndPromptsThroughOneEncoderAndTwoDecoders() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster()
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder", extra: ["--embedding-dtype", "f32"])
        try cluster.start("segflow-prompt-decoder", name: "decoder-1")
        try cluster.start("segflow-prompt-decoder", name: "decoder-2")
        let expected = try await submit(cluster, tag: "a")
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: expected.keys)
        }
        let byID = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(byID.keys), Set(expected.keys), "every request answered; logs: \(cluster.log("encoder"))")
        let sam = try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM)
        for (id, (image, prompt)) in expected {
            guard let r = byID[id] else { continue }
            XCTAssertNil(r.error, "\(id): \(r.error?.message ?? "")")
            XCTAssertEqual(counts(r), try inProcess(sam, image: image, prompt: prompt, f16: false), "\(id): masks differ from in-process")
        }
        // Encode once: three images, three embeddings, no matter how many prompts.
        XCTAssertEqual(cluster.log("encoder").components(separatedBy: "] encoded").count - 1, images.count)
    }

    func testKillingADecoderLosesNoRequest() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster()
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")   // f16 embeddings (default)
        try cluster.start("segflow-prompt-decoder", name: "decoder-1")
        try cluster.start("segflow-prompt-decoder", name: "decoder-2")
        let first = try await submit(cluster, tag: "b1")
        // Wait for the first answers, then kill -9 one decoder while work is in flight.
        _ = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { !$0.isEmpty }
        let second = try await submit(cluster, tag: "b2")
        cluster.kill9("decoder-1")
        let all = Set(first.keys).union(second.keys)
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: all)
        }
        let answered = results(got)
        XCTAssertEqual(Set(answered.map(\.requestID)), all, "no request lost; decoder-2 log: \(cluster.log("decoder-2").suffix(2000))")
        XCTAssertTrue(answered.allSatisfy { $0.error == nil }, "\(answered.compactMap(\.error))")
        // Duplicates (redelivered after the kill) are recognisable and identical.
        let grouped = Dictionary(grouping: answered, by: \.requestID)
        for (id, copies) in grouped where copies.count > 1 {
            XCTAssertTrue(copies.allSatisfy { counts($0) == counts(copies[0]) }, "duplicate answers for \(id) differ")
        }
        XCTAssertTrue(cluster.processes["decoder-2"]!.isRunning)
    }

    func testBadInputYieldsErrorResultsAndDeadLettersAndServicesStayUp() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster()
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--max-wait-ms", "4000"])
        let png = try Fixtures.png("chelsea_crop")
        var corrupt = png; for i in 40..<min(400, corrupt.count) { corrupt[i] ^= 0x5a }
        let nan = Float.nan
        // A good image so prompts can target it.
        let good = ImageRequest(requestID: "good-img", imageID: "good", image: .png(png))
        // An embedding with a shape this model cannot use (64×32×32 instead of 256×64×64).
        let wrongShape = Messaging.ImageEmbedding(requestID: "ws-emb", imageID: "wrongshape", model: "litemedsam",
                                                  originalHeight: 100, originalWidth: 120, inputHeight: 213, inputWidth: 256,
                                                  dtype: .f32, shape: [64, 32, 32], data: [UInt8](repeating: 0, count: 64 * 32 * 32 * 4))
        let cases: [(id: String, topic: String, key: String, value: [UInt8], code: ErrorCode)] = [
            ("bad-proto-img", SegflowTopics.images, "x", [0x0a, 0xff, 0xff, 0xff], .invalidProtobuf),
            ("corrupt-png", SegflowTopics.images, "c", ImageRequest(requestID: "corrupt-png", imageID: "c", image: .png(corrupt)).encode(), .invalidImage),
            ("truncated-png", SegflowTopics.images, "t", ImageRequest(requestID: "truncated-png", imageID: "t", image: .png(Array(png.prefix(300)))).encode(), .invalidImage),
            ("unknown-model", SegflowTopics.images, "u", ImageRequest(requestID: "unknown-model", imageID: "u", image: .png(png), model: "sam-vit-z").encode(), .unknownModel),
            ("too-large", SegflowTopics.images, "l", ImageRequest(requestID: "too-large", imageID: "l", image: .png(pngBombHeader())).encode(), .imageTooLarge),
            ("raw-size", SegflowTopics.images, "r", ImageRequest(requestID: "raw-size", imageID: "r",
                                                                 image: .raw(RawImage(rgb8: [1, 2, 3], width: 100_000, height: 100_000))).encode(), .invalidImage),
            ("bad-proto-prompt", SegflowTopics.prompts, "good", [0x12, 0x80], .invalidProtobuf),
            ("nan-point", SegflowTopics.prompts, "good", PromptRequest(requestID: "nan-point", imageID: "good", points: [.init(x: nan, y: 3, label: 1)]).encode(), .invalidPrompt),
            ("out-of-range", SegflowTopics.prompts, "good", PromptRequest(requestID: "out-of-range", imageID: "good", boxes: [.init(x0: 0, y0: 0, x1: 5000, y1: 10)]).encode(), .invalidPrompt),
            ("bad-mask-input", SegflowTopics.prompts, "good", PromptRequest(requestID: "bad-mask-input", imageID: "good", points: [.init(x: 5, y: 5, label: 1)],
                                                                            maskInput: FloatTensor(shape: [1, 8, 8], values: .init(repeating: 0, count: 64))).encode(), .shapeMismatch),
            ("unknown-image", SegflowTopics.prompts, "never", PromptRequest(requestID: "unknown-image", imageID: "never", points: [.init(x: 5, y: 5, label: 1)]).encode(), .embeddingNotFound),
            ("wrong-shape", SegflowTopics.prompts, "wrongshape", PromptRequest(requestID: "wrong-shape", imageID: "wrongshape", points: [.init(x: 5, y: 5, label: 1)]).encode(), .shapeMismatch),
        ]
        var records = [record(SegflowTopics.images, key: "good", good.encode(), requestID: "good-img")]
        records += wrongShape.chunked().map { record(SegflowTopics.embeddings, key: "wrongshape", $0.encode(), requestID: "ws-emb") }
        records += cases.map { record($0.topic, key: $0.key, $0.value, requestID: $0.id) }
        // A corrupt embedding record has no requester to answer; it must still not vanish.
        records.append(record(SegflowTopics.embeddings, key: "garbage", [0xff, 0x01, 0x02], requestID: "garbage-emb"))
        try await cluster.send(records)
        let ids = Set(cases.map(\.id))
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(180)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: ids)
        }
        let byID = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        for c in cases {
            XCTAssertEqual(byID[c.id]?.error?.code, c.code, "\(c.id): \(byID[c.id]?.error?.message ?? "no answer")")
            XCTAssertFalse(byID[c.id]?.error?.message.isEmpty ?? true, "\(c.id): readable message")
        }
        // Every rejection is also on the dead-letter topic with its source coordinates.
        let dead = try await cluster.collect(topic: SegflowTopics.deadLetter, timeout: .seconds(60)) { seen in
            Set(seen.compactMap { try? Messaging.ErrorReport(bytes: $0.value).requestID }).isSuperset(of: ids)
        }.compactMap { try? Messaging.ErrorReport(bytes: $0.value) }
        for c in cases {
            let report = dead.first { $0.requestID == c.id }
            XCTAssertNotNil(report, "\(c.id): dead letter")
            XCTAssertEqual(report?.sourceTopic, c.topic)
            XCTAssertGreaterThanOrEqual(report?.offset ?? -1, 0)
        }
        let garbage = try await cluster.collect(topic: SegflowTopics.deadLetter, timeout: .seconds(60)) { seen in
            seen.contains { (try? Messaging.ErrorReport(bytes: $0.value))?.sourceTopic == SegflowTopics.embeddings }
        }.compactMap { try? Messaging.ErrorReport(bytes: $0.value) }.first { $0.sourceTopic == SegflowTopics.embeddings }
        XCTAssertEqual(garbage?.code, .invalidProtobuf, "corrupt embedding record must reach the dead-letter topic")
        XCTAssertEqual(garbage?.service, "prompt-decoder")
        // Still healthy: a good prompt is answered and both processes are alive.
        try await cluster.send([ProducerRecord(topic: SegflowTopics.prompts, key: "good",
                                               value: PromptRequest(requestID: "after", imageID: "good", points: [.init(x: 50, y: 40, label: 1)]).encode(),
                                               headers: [.requestID("after"), .traceID("trace-42")])])
        let after = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(60)) { results($0).contains { $0.requestID == "after" } }
        let answer = results(after).first { $0.requestID == "after" }
        // The trace id travels from request to result.
        let answerRecord = after.first { (try? MaskResult(bytes: $0.value))?.requestID == "after" }
        XCTAssertEqual(answerRecord?.headers.first { $0.name == KafkaHeader.traceIDName }?.stringValue, "trace-42")
        XCTAssertNil(answer?.error)
        XCTAssertEqual(answer?.masks.count, 1)
        XCTAssertTrue(cluster.processes.values.allSatisfy(\.isRunning))
    }
}
