import Foundation
import Messaging
import XCTest

/// Field values a forged record can carry, and the wire rules external producers must follow.
final class HostileFieldTests: XCTestCase {
    /// Regression: width × height × 3 overflowed Int64 and trapped (exit 132), so one
    /// record crash-looped every image-encoder of the group.
    func testRawImageSizesThatOverflowAreErrorsNotTraps() throws {
        for (w, h) in [(UInt32.max, UInt32.max), (UInt32.max, 3), (1 << 31, 1 << 31), (3_037_000_500, 3_037_000_500)] {
            let bytes = ImageRequest(requestID: "r", imageID: "i", image: .raw(RawImage(rgb8: [1, 2, 3], width: w, height: h))).encode()
            XCTAssertThrowsError(try ImageRequest(bytes: bytes), "\(w)x\(h)") { error in
                XCTAssertTrue([.imageTooLarge, .invalidImage].contains((error as? MessagingError)?.errorCode), "\(w)x\(h): \(error)")
            }
        }
    }

    /// Field combinations, not only bytes: seeded random extremes for every size-bearing
    /// field of the three request/embedding messages. Each must decode or fail with a
    /// MessagingError — a trap or a giant allocation ends the test process.
    func testExtremeFieldCombinationsDecodeOrFailCleanly() throws {
        var rng = SeededRandom(seed: 0x5E6F)
        let extremes: [UInt32] = [0, 1, 2, 3, 255, 256, 65_535, 65_536, 1 << 24, 1 << 31, .max - 1, .max]
        func pick() -> UInt32 { extremes[Int(rng.next() % UInt64(extremes.count))] }
        for _ in 0..<3000 {
            let raw = RawImage(rgb8: [UInt8](repeating: 7, count: Int(rng.next() % 64)), width: pick(), height: pick())
            _ = try? ImageRequest(bytes: ImageRequest(requestID: "r", imageID: "i", image: .raw(raw)).encode())

            let shape = (0..<Int(rng.next() % 5)).map { _ in pick() }
            let data = [UInt8](repeating: 1, count: Int(rng.next() % 128))
            var e = ImageEmbedding(requestID: "r", imageID: "i", model: "m", originalHeight: pick(), originalWidth: pick(),
                                   inputHeight: pick(), inputWidth: pick(), dtype: rng.next() % 2 == 0 ? .f16 : .f32,
                                   shape: shape, data: data)
            e.chunkCount = pick(); e.chunkIndex = pick(); e.totalBytes = UInt64(pick()) * UInt64(pick())
            if let chunk = try? ImageEmbedding(bytes: e.encode()), !chunk.isComplete {
                var assembler = EmbeddingAssembler(maxPendingBytes: 1 << 20, maxPendingEmbeddings: 2)
                _ = try? assembler.add(chunk)
            }

            let mask = FloatTensor(shape: (0..<Int(rng.next() % 4)).map { _ in pick() }, data: [UInt8](repeating: 0, count: Int(rng.next() % 64)))
            let params = AutomaticMaskParams(pointsPerSide: pick(), pointsPerBatch: pick(), minMaskRegionArea: pick())
            let prompt = PromptRequest(requestID: "r", imageID: "i",
                                       points: (0..<Int(rng.next() % 4)).map { _ in .init(x: Float(bitPattern: pick()), y: 1, label: Int32(bitPattern: pick())) },
                                       boxes: (0..<Int(rng.next() % 4)).map { _ in .init(x0: 0, y0: 0, x1: Float(pick()), y1: Float(bitPattern: pick())) },
                                       maskInput: rng.next() % 2 == 0 ? mask : nil, everything: rng.next() % 3 == 0 ? params : nil)
            _ = try? PromptRequest(bytes: prompt.encode())
        }
    }

    func testIdsOfAnInvalidRequestAreStillReadable() throws {
        let bad = PromptRequest(requestID: "rid-7", imageID: "img-7", points: [.init(x: 1, y: 1, label: 1)],
                                maskInput: FloatTensor(shape: [1, 8, 8], data: [1, 2, 3]), replyTopic: "mine").encode()
        XCTAssertThrowsError(try PromptRequest(bytes: bad))
        XCTAssertEqual(RequestIDs.ofPromptRequest(bad), RequestIDs(requestID: "rid-7", imageID: "img-7", replyTopic: "mine"))
        let badImage = ImageRequest(requestID: "rid-8", imageID: "img-8", image: .raw(RawImage(rgb8: [1], width: 5, height: 5))).encode()
        XCTAssertThrowsError(try ImageRequest(bytes: badImage))
        XCTAssertEqual(RequestIDs.ofImageRequest(badImage).requestID, "rid-8")
        XCTAssertEqual(RequestIDs.ofImageRequest([0xff, 0xff]), RequestIDs())
    }

    /// The key → partition rule (README, Partitioning) is librdkafka's murmur2 partitioner,
    /// i.e. what a real producer configured with `partitioner=murmur2_random` does.
    func testMurmur2PartitionIsWhereTheProducerPutsTheKey() async throws {
        let broker = try EmbeddedBroker()
        defer { broker.stop() }
        try await broker.createTopics([TopicSpec(name: "p", partitions: 7)])
        let keys = (0..<40).map { "image-\($0)" } + ["", "ü-ñ", String(repeating: "x", count: 300)]
        for partitioner in ["murmur2_random", "consistent_random"] {
            let producer = try Producer(config: ProducerConfig(client: broker.clientConfig(), partitioner: partitioner))
            let reports = try await producer.send(keys.map { ProducerRecord(topic: "p", key: $0, value: [1]) })
            await producer.close()
            for (key, report) in zip(keys, reports) where !(key.isEmpty && partitioner == "consistent_random") {
                let expected = partitioner == "murmur2_random"
                    ? KafkaPartitioner.murmur2Partition(key: Array(key.utf8), partitions: 7)
                    : KafkaPartitioner.crc32Partition(key: Array(key.utf8), partitions: 7)
                XCTAssertEqual(report.partition, expected, "\(partitioner), key '\(key.prefix(20))'")
            }
        }
        // The two rules disagree for most keys: why a CRC32 client breaks co-partitioning.
        let differing = keys.filter {
            KafkaPartitioner.murmur2Partition(key: Array($0.utf8), partitions: 7) != KafkaPartitioner.crc32Partition(key: Array($0.utf8), partitions: 7)
        }
        XCTAssertGreaterThan(differing.count, keys.count / 2)
    }

    func testLibrdkafkaLevelsAndShutdownDisconnects() {
        XCTAssertEqual(KafkaLog.level(syslog: 3), .error)
        XCTAssertEqual(KafkaLog.level(syslog: 4), .warning)
        XCTAssertEqual(KafkaLog.level(syslog: 6), .info)
        XCTAssertEqual(KafkaLog.level(syslog: 7), .debug)
        XCTAssertTrue(KafkaLog.isDisconnect(facility: "ERROR", message: "1/1 brokers are down"))
        XCTAssertTrue(KafkaLog.isDisconnect(facility: "FAIL", message: "127.0.0.1:4/1: Disconnected (after 6219ms in state UP)"))
        XCTAssertFalse(KafkaLog.isDisconnect(facility: "CONFWARN", message: "Configuration property x is deprecated"))
    }
}

/// Record slicing for values over a broker's record limit.
final class RecordChunkingTests: XCTestCase {
    func message(_ r: ProducerRecord, offset: Int64) -> ConsumedMessage {
        ConsumedMessage(topic: r.topic, partition: 0, offset: offset, key: r.key, value: r.value, headers: r.headers, timestampMs: nil)
    }

    func testSlicesReassembleAndHoldTheirOffsets() throws {
        var rng = SeededRandom(seed: 3)
        let value = (0..<2_500_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let record = ProducerRecord(topic: "t", key: "img", value: value, headers: [.requestID("r1")])
        let slices = RecordChunking.split(record)
        XCTAssertEqual(slices.count, 3)
        XCTAssertTrue(slices.allSatisfy { $0.value.count <= RecordChunking.defaultSliceBytes && $0.key == record.key })
        var assembler = RecordAssembler()
        guard case .incomplete = try assembler.add(message(slices[0], offset: 10)) else { return XCTFail("first slice completes nothing") }
        // An unrelated whole record in between passes straight through.
        guard case let .complete(other, offsets) = try assembler.add(message(ProducerRecord(topic: "t", key: "x", value: [1]), offset: 11)) else { return XCTFail() }
        XCTAssertEqual(other.value, [1]); XCTAssertEqual(offsets, [11])
        XCTAssertEqual(assembler.heldOffsets(partition: 0), [10])
        _ = try assembler.add(message(slices[1], offset: 12))
        guard case let .complete(whole, sliceOffsets) = try assembler.add(message(slices[2], offset: 13)) else { return XCTFail("last slice completes") }
        XCTAssertEqual(whole.value, value)
        XCTAssertEqual(whole.offset, 10)
        XCTAssertEqual(sliceOffsets, [10, 12, 13])
        XCTAssertEqual(whole.headers, [.requestID("r1")])
        XCTAssertEqual(assembler.pendingBytes, 0)
        // A small record is never sliced.
        XCTAssertEqual(RecordChunking.split(ProducerRecord(topic: "t", key: "k", value: [1, 2])).count, 1)
    }

    func testForgedSliceHeadersAreRejectedBeforeAllocating() {
        var assembler = RecordAssembler()
        for (index, total) in [("0/99999999", "10"), ("5/3", "10"), ("0/2", "\(Int.max)"), ("x/y", "1"), ("0/2", "-4")] {
            let m = ConsumedMessage(topic: "t", partition: 0, offset: 0, key: nil, value: [1], headers: [
                KafkaHeader(name: RecordChunking.idHeader, string: "id"), KafkaHeader(name: RecordChunking.indexHeader, string: index),
                KafkaHeader(name: RecordChunking.totalHeader, string: total)], timestampMs: nil)
            XCTAssertThrowsError(try assembler.add(m), "\(index) \(total)")
        }
        // Slices larger than the declared total.
        let over = ConsumedMessage(topic: "t", partition: 0, offset: 0, key: nil, value: [1, 2, 3], headers: [
            KafkaHeader(name: RecordChunking.idHeader, string: "o"), KafkaHeader(name: RecordChunking.indexHeader, string: "0/2"),
            KafkaHeader(name: RecordChunking.totalHeader, string: "2")], timestampMs: nil)
        XCTAssertThrowsError(try assembler.add(over))
    }
}
