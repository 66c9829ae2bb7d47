import Foundation
import Messaging
import XCTest

/// The client's reply reader (outside any group, from the end offsets at open) and the
/// producers' metadata warm-up.
final class ReplyReaderTests: XCTestCase {
    private var broker: EmbeddedBroker { SharedBroker.broker }

    /// Records written before the reader opened are never read; every record written after
    /// it returned is, on every partition, with no group join in between.
    func testReadsExactlyWhatIsProducedAfterOpening() async throws {
        let topic = SharedBroker.uniqueName("t.replies")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 4)], timeout: .seconds(5))
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig(clientID: "test-producer"), lingerMs: 0),
                                    knownTopics: [topic])
        let before = (0..<4).map { ProducerRecord(topic: topic, key: "old", value: Array("before".utf8), partition: Int32($0)) }
        _ = try await producer.send(before)
        let t0 = ContinuousClock.now
        let reader = try await Consumer(config: ConsumerConfig(client: broker.clientConfig(clientID: "test-reader"),
                                                               groupID: SharedBroker.uniqueName("g.reader"), fetchWaitMaxMs: 1),
                                        readingFromEndOf: topic, partitions: 4)
        let openTook = ContinuousClock.now - t0
        // Well under the mock's 3 s first group join: the reader joins no group.
        XCTAssertLessThan(openTook, .seconds(2), "opening the reader took \(openTook)")
        let after = (0..<8).map { ProducerRecord(topic: topic, key: "new-\($0)", value: Array("after-\($0)".utf8), partition: Int32($0 % 4)) }
        _ = try await producer.send(after)
        let got = try await take(8, from: reader, timeout: .seconds(20))
        await reader.shutdown()
        await producer.close()
        XCTAssertEqual(Set(got.map { String(decoding: $0.value, as: UTF8.self) }), Set((0..<8).map { "after-\($0)" }))
        XCTAssertEqual(Set(got.map(\.partition)), [0, 1, 2, 3])
    }

    func testOpeningOnAMissingPartitionFailsClearly() async throws {
        let topic = SharedBroker.uniqueName("t.replies")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 1)], timeout: .seconds(5))
        do {
            let reader = try await Consumer(config: ConsumerConfig(client: broker.clientConfig(clientID: "test-reader"),
                                                                   groupID: SharedBroker.uniqueName("g.reader")),
                                            readingFromEndOf: topic, partitions: 2)
            await reader.shutdown()
            XCTFail("partition 1 of a 1-partition topic has no end offset; opening must fail")
        } catch let e as KafkaError {
            XCTAssertTrue(e.message.contains("\(topic) [1]"), "\(e)")
        }
    }

    /// A producer told its topics delivers its first record without librdkafka's 1 s topic
    /// scan (0.7–1.0 s measured without the warm-up). Bound: well under that scan.
    func testKnownTopicsFirstRecordIsNotHeldByTheTopicScan() async throws {
        let topic = SharedBroker.uniqueName("t.warm")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 2)], timeout: .seconds(5))
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig(clientID: "test-producer"), lingerMs: 0),
                                    knownTopics: [topic])
        try await Task.sleep(for: .milliseconds(300))  // the warm-up runs while a service would be joining its group
        let t0 = ContinuousClock.now
        _ = try await producer.send(ProducerRecord(topic: topic, key: "k", value: [1]))
        let took = ContinuousClock.now - t0
        await producer.close()
        XCTAssertLessThan(took, .milliseconds(500), "first record to a known topic took \(took)")
    }
}
