import Foundation
import Messaging
import XCTest

/// `Consumer.groupState()`: member id, assignment and per-partition lag from the client's
/// own state, against librdkafka's mock cluster.
final class ConsumerLagTests: XCTestCase {
    private var broker: EmbeddedBroker { SharedBroker.broker }

    func testLagPerPartitionFallsAsRecordsAreRead() async throws {
        let topic = SharedBroker.uniqueName("t.lag")
        try await broker.createTopics([TopicSpec(name: topic, partitions: 2)], timeout: .seconds(5))
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig(clientID: "lag-producer")))
        // 6 records on partition 0, none on partition 1.
        _ = try await producer.send((0..<6).map { ProducerRecord(topic: topic, key: "k", value: Array("v\($0)".utf8), partition: 0) })
        await producer.close()

        let consumer = try Consumer(config: ConsumerConfig(client: broker.clientConfig(clientID: "lag-consumer"),
                                                           groupID: SharedBroker.uniqueName("g.lag"), sessionTimeoutMs: 6000,
                                                           prefetchCount: 1),
                                    topics: [topic])
        let before = try await consumer.groupState()
        XCTAssertFalse(before.hasAssignment, "no partitions before the first rebalance")

        let first = try await take(2, from: consumer)
        XCTAssertEqual(first.map(\.offset), [0, 1])
        let state = try await consumer.groupState()
        XCTAssertNotNil(state.memberID, "a member of the group has the coordinator's member id")
        XCTAssertTrue(state.hasAssignment)
        XCTAssertEqual(Set(state.partitions.map(\.partition)), [0, 1])
        let p0 = try XCTUnwrap(state.partitions.first { $0.partition == 0 })
        XCTAssertEqual(p0.highWatermark, 6)
        // The position counts what the poll thread took from librdkafka: the 2 handed out
        // plus at most the prefetch buffer (1 here).
        let lag = try XCTUnwrap(p0.lag)
        XCTAssertTrue((3...4).contains(lag), "lag \(lag) after reading 2 of 6 with a prefetch of 1")

        _ = try await take(4, from: consumer)
        let drained = try await consumer.groupState()
        XCTAssertEqual(drained.partitions.first { $0.partition == 0 }?.lag, 0)
        await consumer.shutdown()
        do {
            _ = try await consumer.groupState()
            XCTFail("a shut-down consumer has no group state")
        } catch let error as KafkaError {
            XCTAssertEqual(error.code, .shutDown)
        }
    }

    func testLagIsUnknownUntilBothEndsAreKnown() {
        XCTAssertNil(PartitionLag(topic: "t", partition: 0, position: nil, highWatermark: 5).lag)
        XCTAssertNil(PartitionLag(topic: "t", partition: 0, position: 3, highWatermark: nil).lag)
        XCTAssertEqual(PartitionLag(topic: "t", partition: 0, position: 3, highWatermark: 5).lag, 2)
        // A position past a stale high watermark is no negative lag.
        XCTAssertEqual(PartitionLag(topic: "t", partition: 0, position: 7, highWatermark: 5).lag, 0)
    }
}
