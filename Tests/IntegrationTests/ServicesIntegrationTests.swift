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
            // width × height × 3 overflows Int64: once a trap that crash-looped every encoder.
            ("raw-overflow", SegflowTopics.images, "o", ImageRequest(requestID: "raw-overflow", imageID: "o",
                                                                     image: .raw(RawImage(rgb8: [1, 2, 3], width: .max, height: .max))).encode(), .imageTooLarge),
            ("reply-to-own-topic", SegflowTopics.images, "g2", ImageRequest(requestID: "reply-to-own-topic", imageID: "g2", image: .png(png),
                                                                            replyTopic: SegflowTopics.prompts).encode(), .invalidPrompt),
            ("bad-proto-prompt", SegflowTopics.prompts, "good", [0x12, 0x80], .invalidProtobuf),
            ("too-many-boxes", SegflowTopics.prompts, "good", PromptRequest(requestID: "too-many-boxes", imageID: "good",
                                                                            boxes: .init(repeating: .init(x0: 1, y0: 1, x1: 20, y1: 20), count: RequestLimits.maxBoxes + 1)).encode(), .invalidPrompt),
            ("prompt-reply-to-images", SegflowTopics.prompts, "good", PromptRequest(requestID: "prompt-reply-to-images", imageID: "good", points: [.init(x: 5, y: 5, label: 1)],
                                                                                    replyTopic: SegflowTopics.images).encode(), .invalidPrompt),
            ("illegal-reply-topic", SegflowTopics.prompts, "good", PromptRequest(requestID: "illegal-reply-topic", imageID: "good", points: [.init(x: 5, y: 5, label: 1)],
                                                                                 replyTopic: "no spaces/allowed").encode(), .invalidPrompt),
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
        // No request-id header: the id is read from the body although validation fails.
        let headerless = PromptRequest(requestID: "id-in-body", imageID: "good", points: [.init(x: 5, y: 5, label: 1)],
                                       maskInput: FloatTensor(shape: [1, 8, 8], data: [1, 2, 3]))
        records.append(ProducerRecord(topic: SegflowTopics.prompts, key: "good", value: headerless.encode()))
        // A corrupt embedding record has no requester to answer; it must still not vanish.
        records.append(record(SegflowTopics.embeddings, key: "garbage", [0xff, 0x01, 0x02], requestID: "garbage-emb"))
        try await cluster.send(records)
        let ids = Set(cases.map(\.id))
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(180)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: ids.union(["id-in-body"]))
        }
        let byID = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        for c in cases {
            XCTAssertEqual(byID[c.id]?.error?.code, c.code, "\(c.id): \(byID[c.id]?.error?.message ?? "no answer")")
            XCTAssertFalse(byID[c.id]?.error?.message.isEmpty ?? true, "\(c.id): readable message")
        }
        let bodyID = results(got).first { $0.requestID == "id-in-body" }
        XCTAssertEqual(bodyID?.error?.code, .shapeMismatch, "\(bodyID?.error?.message ?? "no answer naming the body's request id")")
        XCTAssertEqual(bodyID?.imageID, "good")
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

    /// The wire's partitioning rule broken by a client (librdkafka's default CRC32
    /// partitioner, as kcat or an unconfigured confluent-kafka use): with two decoders a
    /// prompt lands on a partition whose embedding lives with the other decoder. The
    /// decoder re-routes it to murmur2(image id)'s partition and every prompt is answered.
    func testPromptsFromACRC32PartitioningClientAreAnsweredByTwoDecoders() async throws {
        try Fixtures.requireCheckpoint()
        let partitions = 8
        let cluster = try await TestCluster(partitions: partitions)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder-1")
        try cluster.start("segflow-prompt-decoder", name: "decoder-2")
        // Image ids whose CRC32 partition differs from their murmur2 partition.
        let imageIDs = (0..<200).map { "crc-\($0)" }.filter {
            KafkaPartitioner.crc32Partition(key: Array($0.utf8), partitions: partitions)
                != KafkaPartitioner.murmur2Partition(key: Array($0.utf8), partitions: partitions)
        }.prefix(4)
        XCTAssertEqual(imageIDs.count, 4)
        let png = try Fixtures.png("chelsea_crop")
        try await cluster.send(imageIDs.map { id in
            record(SegflowTopics.images, key: id, ImageRequest(requestID: "\(id)-img", imageID: id, image: .png(png)).encode(), requestID: "\(id)-img")
        })
        let crcProducer = try Producer(config: ProducerConfig(client: cluster.client, partitioner: "consistent_random"))
        let reports = try await crcProducer.send(imageIDs.map { id in
            record(SegflowTopics.prompts, key: id, PromptRequest(requestID: "\(id)-p", imageID: id, boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 90)]).encode(),
                   requestID: "\(id)-p")
        })
        await crcProducer.close()
        for (id, report) in zip(imageIDs, reports) {
            XCTAssertEqual(report.partition, KafkaPartitioner.crc32Partition(key: Array(id.utf8), partitions: partitions), "\(id): the client really used CRC32")
        }
        let wanted = Set(imageIDs.map { "\($0)-p" })
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: wanted)
        }
        let answers = results(got).filter { wanted.contains($0.requestID) }
        XCTAssertEqual(Set(answers.map(\.requestID)), wanted, "decoder logs: \(cluster.log("decoder-1").suffix(1500)) \(cluster.log("decoder-2").suffix(1500))")
        XCTAssertTrue(answers.allSatisfy { $0.error == nil && $0.masks.count == 1 }, "\(answers.compactMap(\.error))")
        let reroutes = (cluster.log("decoder-1") + cluster.log("decoder-2")).components(separatedBy: "re-routed a prompt").count - 1
        XCTAssertGreaterThanOrEqual(reroutes, imageIDs.count)
    }

    /// A restarted decoder restores only a cache-sized tail of the embeddings topic: with
    /// `--cache-mb 4` its window is 8 chunk records (two f16 LiteMedSAM embeddings; the
    /// cache itself holds one f32 embedding). It starts 8 records before the end, answers
    /// a prompt for the newest image with no encoder running, and answers an image
    /// outside the window with EMBEDDING_NOT_FOUND instead of replaying history.
    func testRestartedDecoderRestoresOnlyTheCacheWindow() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 1)
        defer { cluster.stop() }
        var rng = SeededRandomBytes(seed: 7)
        func embedding(_ id: String) -> Messaging.ImageEmbedding {
            Messaging.ImageEmbedding(requestID: "\(id)-emb", imageID: id, model: "litemedsam", originalHeight: 300, originalWidth: 451,
                                     inputHeight: 170, inputWidth: 256, dtype: .f16, shape: [256, 64, 64],
                                     data: (0..<(256 * 64 * 64)).flatMap { _ in rng.half() })
        }
        let ids = ["old-1", "mid-2", "new-3"]
        for id in ids {
            try await cluster.send(embedding(id).chunked().map { record(SegflowTopics.embeddings, key: id, $0.encode(), requestID: "\(id)-emb") })
        }
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--cache-mb", "4", "--max-wait-ms", "3000"])
        try await cluster.send(["new-3", "old-1"].map { id in
            record(SegflowTopics.prompts, key: id, PromptRequest(requestID: "\(id)-p", imageID: id, points: [.init(x: 100, y: 100, label: 1)]).encode(),
                   requestID: "\(id)-p")
        })
        let wanted: Set = ["new-3-p", "old-1-p"]
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(90)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: wanted)
        }
        let byID = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        let log = cluster.log("decoder")
        XCTAssertNil(byID["new-3-p"]?.error, "newest image restored from the topic: \(log.suffix(2000))")
        XCTAssertEqual(byID["new-3-p"]?.masks.count, 1)
        XCTAssertEqual(byID["old-1-p"]?.error?.code, .embeddingNotFound, "outside the window: not replayed")
        // 3 embeddings × 4 chunks = 12 records; the window starts 8 before the end.
        XCTAssertTrue(log.contains("high=12 kafka.offset=4 kafka.partition=0"), log)
        XCTAssertTrue(log.contains("embeddings=2 kafka.partition=0"), log)
    }

    /// SIGTERM to one of two decoders with 200 prompts in flight: the leaving decoder
    /// drains and exits cleanly within the bound, its partitions move to the survivor, and
    /// every prompt is answered without an error (duplicates identical). Reports how long
    /// the group change delayed answers.
    enum GroupChange { case gracefulLeave, join }

    /// One encoder and two decoders (or one, then a second joining): 200 prompts for images
    /// on every partition, first with no group change (baseline), then with one. Every
    /// prompt answered, no error answer, duplicates identical; prints the delay the change
    /// added to the last answer and the longest pause in answers (answer time from the
    /// record's CreateTime). On the embedded (mock) broker a change includes its JoinGroup
    /// hold of session.timeout.ms − 1 s (2 s with EmbeddedBroker.memberProperties;
    /// rd_kafka_mock_cgrp_rebalance), which a real broker does not have.
    func measureGroupChange(_ change: GroupChange) async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster()
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder-1")
        if change == .gracefulLeave { try cluster.start("segflow-prompt-decoder", name: "decoder-2") }
        // One image per partition (8 partitions, range assignor: 0-3 and 4-7).
        let imageIDs = (0..<100).map { "change-\($0)" }.reduce(into: [Int32: String]()) { byPartition, id in
            byPartition[KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: 8)] = byPartition[KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: 8)] ?? id
        }.sorted { $0.key < $1.key }.map(\.value)
        let png = try Fixtures.png("chelsea_crop")
        try await cluster.send(imageIDs.map { record(SegflowTopics.images, key: $0, ImageRequest(requestID: "\($0)-img", imageID: $0, image: .png(png)).encode(), requestID: "\($0)-img") })
        func prompts(_ tag: String, count: Int) -> [ProducerRecord] {
            (0..<count).map { i in
                let id = imageIDs[i % imageIDs.count]
                return record(SegflowTopics.prompts, key: id, PromptRequest(requestID: "\(tag)-\(i)", imageID: id, points: [.init(x: Float(10 + i % 80), y: 40, label: 1)]).encode(),
                              requestID: "\(tag)-\(i)")
            }
        }
        // Warm-up: every image encoded and cached by its decoder.
        try await cluster.send(prompts("warm", count: imageIDs.count))
        _ = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { Set(results($0).map(\.requestID)).count >= imageIDs.count }
        /// Sends 200 prompts, runs `during` right after, and returns the seconds from the
        /// send to the last answer's CreateTime and the longest pause between answers (from
        /// the send on): a rebalance that stops the group shows as that pause.
        func load(_ tag: String, during: () throws -> Void) async throws -> (seconds: Double, stall: Double, answers: [MaskResult], firstAnswers: [Double]) {
            let wanted = Set((0..<200).map { "\(tag)-\($0)" })
            let sentMs = Date().timeIntervalSince1970 * 1000
            try await cluster.send(prompts(tag, count: 200))
            try during()
            let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(180)) { seen in
                Set(results(seen).map(\.requestID)).isSuperset(of: wanted)
            }
            let mine = got.compactMap { m in (try? MaskResult(bytes: m.value)).flatMap { wanted.contains($0.requestID) ? ($0, m.timestampMs) : nil } }
            let answers = mine.map(\.0)
            XCTAssertEqual(Set(answers.map(\.requestID)), wanted, "decoder-2: \(cluster.log("decoder-2").suffix(2000))")
            XCTAssertEqual(answers.compactMap(\.error).map(\.code), [], "no error answer for a valid request during a group change")
            for (id, copies) in Dictionary(grouping: answers, by: \.requestID) where copies.count > 1 {
                XCTAssertTrue(copies.allSatisfy { counts($0) == counts(copies[0]) }, "duplicate answers for \(id) differ")
            }
            let times = [sentMs] + mine.compactMap(\.1).map(Double.init).sorted()
            let stall = zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? 0
            // Each prompt's first answer, seconds after the send, earliest first.
            var first: [String: Double] = [:]
            for (answer, ms) in mine {
                guard let ms else { continue }
                first[answer.requestID] = min(first[answer.requestID] ?? .infinity, (Double(ms) - sentMs) / 1000)
            }
            return ((times.last! - sentMs) / 1000, stall / 1000, answers, first.values.sorted())
        }
        let baseline = try await load("base") {}
        let changed = try await load("load") {
            switch change {
            case .gracefulLeave: cluster.processes["decoder-1"]!.terminate()
            case .join: try cluster.start("segflow-prompt-decoder", name: "decoder-2")
            }
        }
        if change == .gracefulLeave {
            let leaver = cluster.processes["decoder-1"]!
            let deadline = ContinuousClock.now + TestCluster.exitBound
            while leaver.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            XCTAssertFalse(leaver.isRunning, "decoder-1 still running after SIGTERM")
            if !leaver.isRunning { XCTAssertEqual(leaver.terminationStatus, 0, cluster.log("decoder-1").suffix(2000).description) }
            XCTAssertFalse(cluster.log("decoder-1").contains("crashed"), cluster.log("decoder-1").suffix(3000).description)
        }
        // The member that stays resumes the partitions it keeps (the eager protocol revoked
        // them all) instead of replaying their windows: before, a graceful leave's survivor
        // re-read its own partitions for ~20 s. Timing is reported, not asserted (a speed
        // claim belongs to a rerunnable measurement; the README has the numbers).
        let stayer = change == .gracefulLeave ? "decoder-2" : "decoder-1"
        // After a drained leave the last answers can precede the rebalance (the leaver
        // answered its burst before leaving; the mock holds the JoinGroup 5 s): wait for it.
        let resumedLine = "resuming embeddings where this decoder was before the rebalance"
        let resumeDeadline = ContinuousClock.now + .seconds(30)
        while !cluster.log(stayer).contains(resumedLine) && ContinuousClock.now < resumeDeadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertTrue(cluster.log(stayer).contains(resumedLine), "\(stayer) replayed partitions it kept: \(cluster.log(stayer).suffix(3000))")
        if change == .gracefulLeave {
            // The leaver kept answering what it fetched before it left
            // (Consumer.drainThenShutdown): all of it, or — on a machine too slow to answer
            // its share of the burst within the drain budget — until the budget, the rest
            // redelivered to the survivor (the assertions above: nothing lost, no error).
            let leaverLog = cluster.log("decoder-1")
            XCTAssertTrue(leaverLog.contains("draining before it leaves the group")
                          && (leaverLog.contains("drained: every fetched record handled") || leaverLog.contains("drain budget spent")),
                          "decoder-1 left without draining: \(leaverLog.suffix(3000))")
        }
        let added = changed.seconds - baseline.seconds
        // The k-th answer of the burst with the change against the k-th with none: the 200
        // prompts are sent at once (mostly within one millisecond), so which of them is
        // answered first is the fetch's order, not the send's, and prompt i compared with
        // prompt i would measure that order; the k-th answer measures the delay.
        let delays = zip(changed.firstAnswers, baseline.firstAnswers).map { $0 - $1 }
        print(String(format: "group change (%@): the k-th answer came at most %.1f s later than the k-th with no change (median %.1f s)",
                     "\(change)", delays.max() ?? .nan, delays.isEmpty ? .nan : delays.sorted()[delays.count / 2]))
        print(String(format: "group change (%@): last of 200 prompts answered %.1f s after the change, %.1f s with no change: %.1f s added; longest pause between answers %.1f s (%.1f s with no change); %d duplicates",
                     "\(change)", changed.seconds, baseline.seconds, added, changed.stall, baseline.stall, changed.answers.count - 200))
    }

    func testGracefulLeaveHandsPromptsOverWithoutErrors() async throws {
        try await measureGroupChange(.gracefulLeave)
    }

    func testAJoiningDecoderTakesOverWithoutStallingAnswers() async throws {
        try await measureGroupChange(.join)
    }
}

/// Deterministic f16 bytes in [-1, 1) for synthetic embeddings.
struct SeededRandomBytes {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func half() -> [UInt8] {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let value = Float16(Float(Int64(bitPattern: state >> 11) % 2048) / 2048)
        return withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
    }
}

extension ServicesIntegrationTests {
    /// A record in hand when the encoder died twice (kill -9 while its coordinates are in
    /// the guard's file) is dead-lettered on the third delivery instead of being retried
    /// forever; the encoder keeps serving the records after it.
    func testARecordThatKilledTheEncoderTwiceIsDeadLettered() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 1)
        defer { cluster.stop() }
        let stateDir = cluster.logDir.appendingPathComponent("state").path
        let slotFile = "\(stateDir)/image-encoder-slot0.inflight"
        let png = try Fixtures.png("chelsea")
        try await cluster.send([record(SegflowTopics.images, key: "poison", ImageRequest(requestID: "poison-img", imageID: "poison", image: .png(png)).encode(), requestID: "poison-img"),
                                record(SegflowTopics.images, key: "after", ImageRequest(requestID: "after-img", imageID: "after", image: .png(png)).encode(), requestID: "after-img")])
        for attempt in 1...2 {
            try cluster.start("segflow-image-encoder", name: "encoder-\(attempt)", extra: ["--state-dir", stateDir])
            // Kill it while the first record (offset 0) is in hand.
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                // "topic partition offset earlier-crashes": this attempt's own write, not the file the last one left.
                if let text = try? String(contentsOfFile: slotFile, encoding: .utf8), text.hasPrefix("\(SegflowTopics.images)\t0\t0\t\(attempt - 1)\n") { break }
                try await Task.sleep(for: .milliseconds(2))
            }
            cluster.kill9("encoder-\(attempt)")
            XCTAssertTrue((try? String(contentsOfFile: slotFile, encoding: .utf8))?.hasPrefix("\(SegflowTopics.images)\t0\t0\t\(attempt - 1)") ?? false,
                          "attempt \(attempt): record 0 was in hand when the encoder died")
        }
        try cluster.start("segflow-image-encoder", name: "encoder-3", extra: ["--state-dir", stateDir])
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { results($0).contains { $0.requestID == "poison-img" } }
        let answer = results(got).first { $0.requestID == "poison-img" }
        XCTAssertEqual(answer?.error?.code, .internal, "\(cluster.log("encoder-3").suffix(1500))")
        XCTAssertTrue(answer?.error?.message.contains("crashed image-encoder 2 times") ?? false, answer?.error?.message ?? "")
        // The next record is encoded as usual.
        let embedded = try await cluster.collect(topic: SegflowTopics.embeddings, timeout: .seconds(120)) { seen in
            seen.contains { (try? Messaging.ImageEmbedding(bytes: $0.value))?.imageID == "after" }
        }
        XCTAssertTrue(embedded.contains { (try? Messaging.ImageEmbedding(bytes: $0.value))?.imageID == "after" })
        XCTAssertTrue(cluster.processes["encoder-3"]!.isRunning)
    }
}

extension ServicesIntegrationTests {
    /// Regression (found by the soak): prompts parked on a decoder whose partitions a
    /// rebalance moves away were expired there with EMBEDDING_NOT_FOUND while their new
    /// owner answered them with masks. Now they are dropped on revocation and answered once.
    func testPromptsParkedOnARevokedPartitionAreNotAnsweredWithAnError() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 8)
        defer { cluster.stop() }
        try cluster.start("segflow-prompt-decoder", name: "decoder-1", extra: ["--max-wait-ms", "15000"])
        // One image per partition, so a rebalance moves some of their prompts.
        let ids = (0..<200).map { "rv-\($0)" }.reduce(into: [Int32: String]()) { m, id in
            let p = KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: 8)
            if m[p] == nil { m[p] = id }
        }.values.sorted()
        XCTAssertEqual(ids.count, 8)
        // decoder-1 joins and parks the prompts (no image sent yet)…
        try await Task.sleep(for: .seconds(5))
        try await cluster.send(ids.map { record(SegflowTopics.prompts, key: $0, PromptRequest(requestID: "\($0)-p", imageID: $0, points: [.init(x: 40, y: 40, label: 1)]).encode(), requestID: "\($0)-p") })
        try await Task.sleep(for: .seconds(2))
        // …then decoder-2 joins (a rebalance moves half the partitions) and the images come.
        try cluster.start("segflow-prompt-decoder", name: "decoder-2", extra: ["--max-wait-ms", "15000"])
        try cluster.start("segflow-image-encoder", name: "encoder")
        let png = try Fixtures.png("chelsea_crop")
        try await cluster.send(ids.map { record(SegflowTopics.images, key: $0, ImageRequest(requestID: "\($0)-img", imageID: $0, image: .png(png)).encode(), requestID: "\($0)-img") })
        // Wait past the parked prompts' 15 s bound, so a wrongful expiry would show.
        let started = ContinuousClock.now
        let wanted = Set(ids.map { "\($0)-p" })
        _ = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { Set(results($0).map(\.requestID)).isSuperset(of: wanted) }
        let waited = ContinuousClock.now - started
        if waited < .seconds(25) { try await Task.sleep(for: .seconds(25) - waited) }
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(60)) { Set(results($0).map(\.requestID)).isSuperset(of: wanted) }
        let answers = results(got)
        XCTAssertEqual(Set(answers.map(\.requestID)), Set(ids.map { "\($0)-p" }))
        XCTAssertEqual(answers.compactMap(\.error).map(\.message), [], "decoder-1: \(cluster.log("decoder-1").suffix(1500))")
    }
}
