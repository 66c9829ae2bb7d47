import Backends
import Client
import Embedded
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import XCTest

/// Tracked streams (README, Streams): frames keyed by stream id, tracked by the decoder
/// that owns the stream's partition, state snapshotted to segflow.stream-state.
final class StreamTests: XCTestCase {
    /// `count` 300×240 windows of chelsea.png sliding right by 10 px per frame.
    static func frames(_ count: Int) throws -> [RGBImage] {
        let full = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        return try (0..<count).map { f in
            let (w, h, x0) = (300, 240, 20 + 10 * f)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = full.pixels[((y + 30) * full.width + x0 + x) * 3 + c] } } }
            return try RGBImage(width: w, height: h, pixels: px)
        }
    }

    /// Two objects on frame 0 (the cat; a patch of the floor), a correction of object 2 on frame 3.
    static func prompts(_ i: Int) -> [ObjectPrompt] {
        switch i {
        case 0: [ObjectPrompt(objectID: 1, box: .init(x0: 50, y0: 0, x1: 270, y1: 230)),
                 ObjectPrompt(objectID: 2, box: .init(x0: 0, y0: 170, x1: 60, y1: 239))]
        case 3: [ObjectPrompt(objectID: 2, box: .init(x0: 0, y0: 150, x1: 70, y1: 239))]
        default: []
        }
    }

    func inProcess(_ backend: SAMBackend, _ images: [RGBImage]) throws -> [[MaskResult.Mask]] {
        var stream = try InProcessStream(backend: backend)
        return try images.enumerated().map { i, image in try stream.frame(image, index: UInt64(i), objects: Self.prompts(i)) }
    }

    func summary(_ masks: [MaskResult.Mask]) -> [String] {
        masks.map { m in
            let counts: String = if case let .rle(c, _, _) = m.encoding { c } else { "png" }
            return "\(m.objectID):\(m.trackStatus):\(counts)"
        }
    }

    func testStreamOverKafkaEqualsInProcess() async throws {
        try Fixtures.requireCheckpoint()
        let backend = SAMBackend(try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM))
        let images = try Self.frames(6)
        let local = try inProcess(backend, images)
        XCTAssertEqual(local[0].map(\.objectID), [1, 2])
        XCTAssertEqual(local[0].map(\.trackStatus), [.started, .started])
        XCTAssertEqual(local[3][1].trackStatus, .corrected, "a correction re-anchors the object")
        XCTAssertTrue(local[4].allSatisfy { [.tracked, .lost, .reacquired].contains($0.trackStatus) }, "\(local[4].map(\.trackStatus))")

        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let stack = try await EmbeddedStack.start(backends: BackendSet([backend]), embeddingDType: .f32, logger: logger)
        var remote: [Int: MaskResult] = [:]
        var order: [Int] = []
        do {
            var i = 0
            try await SegflowClient(client: stack.client, logger: logger).trackStream(
                streamID: "cam-7", model: "litemedsam", window: 3, timeout: .seconds(120),
                next: {
                    guard i < images.count else { return nil }
                    defer { i += 1 }
                    return StreamFrame(image: .png(try PNG.encode(images[i])), objects: Self.prompts(i))
                },
                onResult: { index, r in remote[index] = r; order.append(index) })
        } catch {
            await stack.stop()
            throw error
        }
        // The stream ended: its snapshot was replaced by a tombstone.
        let stateRecords = try await readAll(stack.client, topic: SegflowTopics.streamState)
        await stack.stop()
        XCTAssertEqual(order, Array(0..<6), "answers come back in frame order")
        for i in 0..<6 {
            XCTAssertEqual(summary(remote[i]?.masks ?? []), summary(local[i]), "frame \(i): Kafka and in-process differ")
            XCTAssertEqual(remote[i]?.frame?.streamID, "cam-7")
            XCTAssertEqual(remote[i]?.frame?.frameIndex, UInt64(i))
        }
        let forStream = stateRecords.filter { $0.keyString == "cam-7" }
        XCTAssertEqual(forStream.count, 6, "a snapshot per frame, then the end's tombstone")
        XCTAssertEqual(forStream.last?.value.isEmpty, true, "end_of_stream writes a tombstone")
        let snap = try StreamSnapshot(bytes: forStream[forStream.count - 2].value)
        XCTAssertEqual(snap.lastFrameIndex, 4)
        XCTAssertLessThanOrEqual(snap.trackerState.count, backend.streamTracker!.maxStateBytes(objects: 2), "state bounded per object")
    }

    /// STREAM_NOT_FOUND, FRAME_OUT_OF_ORDER and a redelivered frame, through raw records.
    func testStreamRules() async throws {
        try Fixtures.requireCheckpoint()
        let backend = SAMBackend(try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM))
        let images = try Self.frames(3).map { try PNG.encode($0) }
        try await withEmbeddedStack(backend) { sc, replies, producer in
            func send(_ id: String, stream: String, index: UInt64, image: Int, objects: [ObjectPrompt] = []) async throws {
                let req = ImageRequest(requestID: id, imageID: "\(stream)-\(index)", image: .png(images[image]),
                                       frame: VideoFrame(streamID: stream, frameIndex: index, track: StreamTrack(objects: objects)),
                                       model: "litemedsam")
                _ = try await producer.send(ProducerRecord(topic: SegflowTopics.images, key: stream, value: req.encode()))
            }
            try await send("orphan", stream: "never-started", index: 5, image: 0)
            try await send("s0", stream: "s", index: 0, image: 0, objects: Self.prompts(0))
            try await send("s2", stream: "s", index: 2, image: 2)
            try await send("s1-late", stream: "s", index: 1, image: 1)
            try await send("s2", stream: "s", index: 2, image: 2)   // the same frame again: dropped
            try await send("s3", stream: "s", index: 3, image: 1)
            let got = try await sc.collect(replies, requestIDs: ["orphan", "s0", "s2", "s1-late", "s3"], timeout: .seconds(120))
            XCTAssertEqual(got.results["orphan"]?.error?.code, .streamNotFound, "\(got.results["orphan"]?.error?.message ?? "")")
            XCTAssertNil(got.results["s0"]?.error)
            XCTAssertNil(got.results["s2"]?.error)
            XCTAssertEqual(got.results["s1-late"]?.error?.code, .frameOutOfOrder, "\(got.results["s1-late"]?.error?.message ?? "")")
            XCTAssertNil(got.results["s3"]?.error, "the stream goes on after a late frame")
            XCTAssertEqual(got.results["s3"]?.masks.map(\.objectID), [1, 2])
        }
    }

    /// Runs `body` against an embedded stack with `backend` (f32 embeddings), a reply
    /// reader and a producer; the stack stops whatever `body` does.
    func withEmbeddedStack(_ backend: SAMBackend,
                           _ body: (SegflowClient, Consumer, Producer) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let stack = try await EmbeddedStack.start(backends: BackendSet([backend]), embeddingDType: .f32, logger: logger)
        do {
            let sc = SegflowClient(client: stack.client, logger: logger)
            let replies = try await sc.openReplies()
            let producer = try Producer(config: ProducerConfig(client: stack.client, lingerMs: 0))
            try await body(sc, replies, producer)
            await replies.shutdown()
            await producer.close()
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    /// A decoder that died after a frame's snapshot and before its answer: the snapshot
    /// holds the answer, and the new owner re-sends it when the frame is redelivered
    /// (here: the same request id again), instead of dropping it as answered.
    func testARedeliveredFrameIsAnsweredFromItsSnapshot() async throws {
        try Fixtures.requireCheckpoint()
        let backend = SAMBackend(try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM))
        let image = try PNG.encode(try Self.frames(1)[0])
        try await withEmbeddedStack(backend) { sc, replies, producer in
            // What the dead decoder left: frame 3 snapshotted with its answer, never sent.
            var mask = MaskResult.Mask(encoding: .rle(counts: "32", height: 2, width: 4), predictedIoU: 0.75, stabilityScore: 0,
                                       bbox: .init(x: 1, y: 0, w: 2, h: 2), area: 3)
            mask.objectID = 1
            mask.trackStatus = .tracked
            let stored = MaskResult(requestID: "crash-3", imageID: "crash-cam-3", masks: [mask],
                                    model: "litemedsam", frame: VideoFrame(streamID: "crash-cam", frameIndex: 3))
            let snap = StreamSnapshot(streamID: "crash-cam", lastFrameIndex: 3, model: "litemedsam", trackerState: [1, 2, 3],
                                      updatedAtMs: 1, lastRequestID: "crash-3", lastResult: stored.encode())
            _ = try await producer.send(ProducerRecord(topic: SegflowTopics.streamState, key: "crash-cam", value: snap.encode()))
            let req = ImageRequest(requestID: "crash-3", imageID: "crash-cam-3", image: .png(image),
                                   frame: VideoFrame(streamID: "crash-cam", frameIndex: 3, track: StreamTrack()), model: "litemedsam")
            _ = try await producer.send(ProducerRecord(topic: SegflowTopics.images, key: "crash-cam", value: req.encode()))
            let got = try await sc.collect(replies, requestIDs: ["crash-3"], timeout: .seconds(120))
            XCTAssertEqual(got.results["crash-3"], stored, "the stored answer, re-sent as it was")
        }
    }

    func readAll(_ client: KafkaClientConfig, topic: String) async throws -> [ConsumedMessage] {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "test-\(UUID().uuidString)", autoOffsetReset: .earliest), topics: [topic])
        var seen: [ConsumedMessage] = []
        let deadline = ContinuousClock.now + .seconds(30)
        let timer = Task { try? await Task.sleep(until: deadline); if !Task.isCancelled { await consumer.shutdown() } }
        defer { timer.cancel() }
        // Read until the topic has been quiet for a while (its end is not known up front).
        let lastMs = Locked(Double.infinity)   // quiet time counts from the first record
        let quiet = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                if Timing.nowMs() - lastMs.withLock({ $0 }) > 2000 { await consumer.shutdown(); return }
            }
        }
        defer { quiet.cancel() }
        for try await m in consumer.messages { seen.append(m); lastMs.withLock { $0 = Timing.nowMs() } }
        return seen
    }

    /// kill -9 the decoder mid-stream: a new decoder restores the stream from its snapshot
    /// and answers the remaining frames with exactly the masks of an uninterrupted run. The
    /// reference run goes through the same service binary: ObjectTracker's appearance search
    /// turns last-bit GEMM differences between processes (OpenBLAS core and thread choice)
    /// into different masks, so an in-process reference is not bit-comparable.
    func testStreamSurvivesKillingItsDecoder() async throws {
        try Fixtures.requireCheckpoint()
        let images = try Self.frames(8).map { try PNG.encode($0) }
        let cluster = try await TestCluster(partitions: 4)
        defer { cluster.stop() }
        // f16 embeddings (2 MiB) and two frames in flight: librdkafka's mock cluster keeps
        // only the last 5 MiB of each partition, so more would be deleted before the new
        // decoder reads them (a real cluster keeps them for its retention).
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder-1")
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let sc = SegflowClient(client: cluster.client, logger: logger)
        func run(_ stream: String, onResult: (Int, MaskResult) throws -> Void) async throws {
            var i = 0
            try await sc.trackStream(streamID: stream, model: "litemedsam", window: 2, timeout: .seconds(150),
                                     next: {
                                         guard i < images.count else { return nil }
                                         defer { i += 1 }
                                         return StreamFrame(image: .png(images[i]), objects: Self.prompts(i))
                                     }, onResult: onResult)
        }
        var reference: [Int: MaskResult] = [:]
        try await run("reference-cam") { index, r in reference[index] = r }
        var remote: [Int: MaskResult] = [:]
        var killedAfter: Int?
        try await run("failover-cam") { index, r in
            remote[index] = r
            if index == 2 && killedAfter == nil {
                killedAfter = index
                cluster.kill9("decoder-1")
                try cluster.start("segflow-prompt-decoder", name: "decoder-2")
            }
        }
        XCTAssertEqual(killedAfter, 2)
        XCTAssertEqual(Set(reference.keys), Set(0..<8))
        XCTAssertEqual(Set(remote.keys), Set(0..<8), "every frame answered; decoder-2 log: \(cluster.log("decoder-2").suffix(3000))")
        for i in 0..<8 {
            XCTAssertNil(remote[i]?.error)
            XCTAssertEqual(summary(remote[i]?.masks ?? []), summary(reference[i]?.masks ?? []), "frame \(i): differs from an uninterrupted run")
        }
        XCTAssertTrue(cluster.log("decoder-2").contains("restored stream state"), "decoder-2 continued from the snapshot:\n\(cluster.log("decoder-2").suffix(3000))")
    }

    /// An idle stream ends: after --stream-idle-s without frames its state is freed and
    /// tombstoned, and a later frame without object prompts is STREAM_NOT_FOUND.
    func testAnIdleStreamIsFreed() async throws {
        try Fixtures.requireCheckpoint()
        let images = try Self.frames(2).map { try PNG.encode($0) }
        let cluster = try await TestCluster(partitions: 2)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--stream-idle-s", "2"])
        func frame(_ id: String, _ index: UInt64, objects: [ObjectPrompt]) -> ProducerRecord {
            let req = ImageRequest(requestID: id, imageID: "idle-\(index)", image: .png(images[Int(index)]),
                                   frame: VideoFrame(streamID: "idle-cam", frameIndex: index, track: StreamTrack(objects: objects)), model: "litemedsam")
            return record(SegflowTopics.images, key: "idle-cam", req.encode(), requestID: id)
        }
        try await cluster.send([frame("f0", 0, objects: Self.prompts(0))])
        let first = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { results($0).contains { $0.requestID == "f0" } }
        XCTAssertNil(results(first).first { $0.requestID == "f0" }?.error)
        // Idle past the bound (the decoder checks every 200 ms).
        let deadline = Date().addingTimeInterval(60)
        while !cluster.log("decoder").contains("stream expired idle") && Date() < deadline { try await Task.sleep(for: .milliseconds(250)) }
        XCTAssertTrue(cluster.log("decoder").contains("stream expired idle"), cluster.log("decoder").suffix(2000).description)
        try await cluster.send([frame("f1", 1, objects: [])])
        let second = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { results($0).contains { $0.requestID == "f1" } }
        let r = results(second).first { $0.requestID == "f1" }
        XCTAssertEqual(r?.error?.code, .streamNotFound, "\(r?.error?.message ?? "no answer")")
        let state = try await cluster.collect(topic: SegflowTopics.streamState, timeout: .seconds(30)) { seen in
            seen.contains { $0.keyString == "idle-cam" && $0.value.isEmpty }
        }
        XCTAssertTrue(state.contains { $0.keyString == "idle-cam" && $0.value.isEmpty }, "the expired stream is tombstoned")
    }
}
