import Foundation
import Messaging
import XCTest

/// Produce/consume through librdkafka's mock cluster over loopback TCP.
final class KafkaTests: XCTestCase {
    private var broker: EmbeddedBroker { SharedBroker.broker }

    private func makeProducer(_ configure: (inout ProducerConfig) -> Void = { _ in }) throws -> Producer {
        var config = ProducerConfig(client: broker.clientConfig(clientID: "test-producer"))
        configure(&config)
        return try Producer(config: config)
    }

    private func makeConsumer(group: String, topics: [String]) throws -> Consumer {
        try Consumer(config: ConsumerConfig(client: broker.clientConfig(clientID: "test-consumer"), groupID: group,
                                            sessionTimeoutMs: 6000),
                     topics: topics)
    }

    func testProduceConsumeKeepsKeysHeadersAndPartitions() async throws {
        let topic = SharedBroker.uniqueName("t.headers")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 3)], timeout: .seconds(5))
        let producer = try makeProducer()
        let records = (0..<9).map { index in
            ProducerRecord(topic: topic, key: "image-\(index % 3)", value: Array("value-\(index)".utf8),
                           headers: [.contentType(protobuf: "PromptRequest"), .requestID("req-\(index)"),
                                     .traceID("trace-\(index)"), KafkaHeader(name: "null-header", value: nil)])
        }
        let reports = try await producer.send(records)
        XCTAssertEqual(reports.count, 9)
        XCTAssertEqual(Set(reports.map(\.topic)), [topic])
        // Same key, same partition (what co-partitioning by image id relies on).
        for key in 0..<3 {
            XCTAssertEqual(Set(stride(from: key, to: 9, by: 3).map { reports[$0].partition }).count, 1, "key image-\(key)")
        }
        await producer.close()

        let consumer = try makeConsumer(group: SharedBroker.uniqueName("g.headers"), topics: [topic])
        let messages = try await take(9, from: consumer)
        await consumer.shutdown()

        let byRequest = Dictionary(uniqueKeysWithValues: messages.map { ($0.headers.string(named: KafkaHeader.requestIDName)!, $0) })
        for (index, report) in reports.enumerated() {
            let message = try XCTUnwrap(byRequest["req-\(index)"])
            XCTAssertEqual(message.value, Array("value-\(index)".utf8))
            XCTAssertEqual(message.keyString, "image-\(index % 3)")
            XCTAssertEqual(message.partition, report.partition)
            XCTAssertEqual(message.offset, report.offset)
            XCTAssertEqual(message.headers.string(named: KafkaHeader.traceIDName), "trace-\(index)")
            XCTAssertEqual(message.headers.string(named: KafkaHeader.contentTypeName),
                           "application/x-protobuf; messageType=segflow.v1.PromptRequest")
            XCTAssertEqual(message.headers.last, KafkaHeader(name: "null-header", value: nil))
            XCTAssertNotNil(message.timestampMs)
        }
    }

    /// At-least-once: a consumer that processed 0…2 but committed only through 1 dies;
    /// the next member of the group resumes at 2 (redelivered), not at 3 and not at 0.
    func testManualCommitThenNewConsumerResumesAfterCommittedOffset() async throws {
        let topic = SharedBroker.uniqueName("t.commit")
        let group = SharedBroker.uniqueName("g.commit")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 1)], timeout: .seconds(5))
        let producer = try makeProducer()
        _ = try await producer.send((0..<6).map { ProducerRecord(topic: topic, key: "k", value: [UInt8($0)]) })
        await producer.close()

        let first = try makeConsumer(group: group, topics: [topic])
        let head = try await take(3, from: first)
        XCTAssertEqual(head.map(\.offset), [0, 1, 2])
        try await first.commit(head[1])
        let committed = try await first.committedOffset(TopicPartition(topic: topic, partition: 0))
        XCTAssertEqual(committed, 2, "committing message at offset 1 stores 2, the next offset to read")
        await first.shutdown()
        do {
            try await first.commit(head[2])
            XCTFail("commit after shutdown must fail")
        } catch let error as KafkaError {
            XCTAssertEqual(error.code, .shutDown)
        }

        let second = try makeConsumer(group: group, topics: [topic])
        let rest = try await take(4, from: second)
        XCTAssertEqual(rest.map(\.offset), [2, 3, 4, 5])
        XCTAssertEqual(rest.map(\.value), [[2], [3], [4], [5]])
        try await second.commit(rest[3])
        let resumed = try await second.committedOffset(TopicPartition(topic: topic, partition: 0))
        XCTAssertEqual(resumed, 6)
        await second.shutdown()
    }

    func testTopicCreationWithPartitions() async throws {
        let topic = SharedBroker.uniqueName("t.created")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 5, replicationFactor: 3,
                                                 config: ["max.message.bytes": "1048588"])], timeout: .seconds(5))
        let admin = try Admin(config: broker.clientConfig(clientID: "test-admin"))
        let counts = try await admin.waitForTopics([topic], timeout: .seconds(10))
        XCTAssertEqual(counts, [topic: 5])

        let producer = try makeProducer()
        let last = try await producer.send(ProducerRecord(topic: topic, key: nil, value: [1], partition: 4))
        XCTAssertEqual(last.partition, 4)
        do {
            _ = try await producer.send(ProducerRecord(topic: topic, key: nil, value: [1], partition: 5))
            XCTFail("partition 5 of a 5-partition topic must not exist")
        } catch let error as KafkaError {
            XCTAssertTrue(error.message.contains(topic), error.description)
        }
        await producer.close()

        // The mock has no CreateTopics API; Admin must say so clearly, not hang.
        do {
            try await admin.createTopics([TopicSpec(name: SharedBroker.uniqueName("t.admin"), partitions: 2)], timeout: .seconds(2))
            XCTFail("the mock cluster unexpectedly accepted CreateTopics")
        } catch let error as KafkaError {
            XCTAssertTrue(error.message.contains("use EmbeddedBroker.createTopics"), error.description)
        }
    }

    /// The embedding-size decision, end to end against stock limits: one 4 MiB record is
    /// refused by the producer (message.max.bytes 1,000,000), the chunked form travels
    /// and reassembles bit-exactly.
    func testFourMiBEmbeddingTravelsAsChunks() async throws {
        let topic = SharedBroker.uniqueName("t.embeddings")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 2)], timeout: .seconds(5))
        var random = SeededRandom(seed: 4)
        let embedding = Samples.embedding(dataBytes: random.bytes(256 * 64 * 64 * 4), shape: [256, 64, 64])
        XCTAssertEqual(embedding.data.count, 4 * 1024 * 1024)
        let producer = try makeProducer()

        do {
            _ = try await producer.send(ProducerRecord(topic: topic, key: embedding.imageID, value: embedding.encode()))
            XCTFail("a 4 MiB record must exceed the stock 1 MB limit")
        } catch let error as KafkaError {
            XCTAssertEqual(error.code, .messageSizeTooLarge, error.description)
        }

        let reports = try await producer.sendEmbedding(embedding, topic: topic)
        XCTAssertEqual(reports.count, 8)
        XCTAssertEqual(Set(reports.map(\.partition)).count, 1, "all chunks share the image id key")
        XCTAssertEqual(reports.map(\.offset), Array(reports[0].offset..<reports[0].offset + 8), "in order, contiguous")
        await producer.close()

        let consumer = try makeConsumer(group: SharedBroker.uniqueName("g.embeddings"), topics: [topic])
        var assembler = EmbeddingAssembler()
        var assembled: ImageEmbedding?
        for message in try await take(8, from: consumer) {
            XCTAssertLessThan(message.value.count, 1_000_000)
            XCTAssertEqual(message.headers.string(named: KafkaHeader.requestIDName), embedding.requestID)
            let chunk = try ImageEmbedding(bytes: message.value)
            if case .complete(let whole) = try assembler.add(chunk, partition: message.partition, offset: message.offset) {
                assembled = whole
                XCTAssertNil(assembler.commitFloor(partition: message.partition))
                try await consumer.commit(message)
            } else {
                XCTAssertEqual(assembler.commitFloor(partition: message.partition), reports[0].offset)
            }
        }
        await consumer.shutdown()
        XCTAssertEqual(assembled, embedding)
    }

    func testGracefulShutdownDoesNotHang() async throws {
        let topic = SharedBroker.uniqueName("t.shutdown")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 2)], timeout: .seconds(5))
        let consumer = try makeConsumer(group: SharedBroker.uniqueName("g.shutdown"), topics: [topic])
        // A reader blocked on an empty topic ends (returns nil) when the consumer shuts down.
        let reader = Task { () -> Int in
            var count = 0
            for try await _ in consumer.messages { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(500))
        let started = ContinuousClock.now
        try await withTimeout(.seconds(15), "consumer shutdown") { await consumer.shutdown() }
        let readCount = try await withTimeout(.seconds(5), "reader end") { try await reader.value }
        XCTAssertEqual(readCount, 0)
        await consumer.shutdown()  // idempotent
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(15))

        // A producer whose cluster vanished: close() purges instead of hanging, and the
        // pending send fails with a purge error rather than never returning.
        let doomed = try EmbeddedBroker()
        let producer = try Producer(config: ProducerConfig(client: doomed.clientConfig(), messageTimeoutMs: 60_000))
        try await doomed.createTopics([TopicSpec(name: "t", partitions: 1)], timeout: .seconds(5))
        _ = try await producer.send(ProducerRecord(topic: "t", key: nil, value: [0]))
        doomed.stop()
        let pending = Task { try await producer.send(ProducerRecord(topic: "t", key: nil, value: [1])) }
        try await Task.sleep(for: .milliseconds(200))
        let closeStart = ContinuousClock.now
        try await withTimeout(.seconds(15), "producer close") { await producer.close(timeout: .seconds(1)) }
        XCTAssertLessThan(ContinuousClock.now - closeStart, .seconds(10))
        do {
            _ = try await pending.value
            XCTFail("a send to a dead cluster cannot succeed")
        } catch let error as KafkaError {
            XCTAssertTrue([.purged, .purgedInFlight].contains(error.code), error.description)
        }
        do {
            _ = try await producer.send(ProducerRecord(topic: "t", key: nil, value: [2]))
            XCTFail("send after close must fail")
        } catch let error as KafkaError {
            XCTAssertEqual(error.code, .shutDown)
        }
    }
}
