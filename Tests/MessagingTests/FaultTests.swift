import Foundation
import Messaging
import XCTest

/// The embedded broker's fault knobs, and the client's bounds under them.
final class FaultTests: XCTestCase {
    /// A consumer whose group coordinator stalls (every answer delayed 30 s) is closed
    /// within the bound: librdkafka's close waits on the coordinator (the hang seen in
    /// rd_kafka_consumer_close → cnd_wait), and `shutdown(bound:)` abandons it in time.
    func testConsumerCloseIsBoundedWhenTheCoordinatorStalls() async throws {
        let broker = try EmbeddedBroker()
        defer { broker.stop() }
        try await broker.createTopics([TopicSpec(name: "t", partitions: 2)])
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig()))
        _ = try await producer.send(ProducerRecord(topic: "t", key: "k", value: [1]))
        await producer.close()
        let consumer = try Consumer(config: ConsumerConfig(client: broker.clientConfig(), groupID: "g-stall", sessionTimeoutMs: 6000),
                                    topics: ["t"])
        let first = try await take(1, from: consumer)
        XCTAssertEqual(first.first?.value, [1])
        // Joined and fetching; now the broker answers nothing for 30 s.
        try broker.setRoundTrip(broker: 1, .seconds(30))
        let bound = Duration.seconds(2)
        let started = ContinuousClock.now
        let closed = await consumer.shutdown(bound: bound)
        let took = ContinuousClock.now - started
        XCTAssertFalse(closed, "the close was expected to stall on the delayed coordinator (it finished in \(took))")
        XCTAssertLessThan(took, bound + .seconds(1), "shutdown(bound:) overran its bound")
        // Idempotent, and still bounded.
        let again = ContinuousClock.now
        _ = await consumer.shutdown(bound: .milliseconds(200))
        XCTAssertLessThan(ContinuousClock.now - again, .seconds(1))
        try broker.setRoundTrip(broker: 1, .zero)
    }

    func testFaultKnobsRejectUnknownBrokersAndNameErrors() throws {
        let broker = try EmbeddedBroker(brokers: 3)
        defer { broker.stop() }
        XCTAssertThrowsError(try broker.setDown(broker: 4)) { XCTAssertTrue("\($0)".contains("broker 4 does not exist"), "\($0)") }
        XCTAssertNoThrow(try broker.setDown(broker: 2))
        XCTAssertNoThrow(try broker.setUp(broker: 2))
        XCTAssertEqual(KafkaError.Code.named("NOT_LEADER_FOR_PARTITION"), .notLeaderForPartition)
        XCTAssertNil(KafkaError.Code.named("NO_SUCH_ERROR"))
        XCTAssertNoThrow(try broker.injectErrors(.produce, .notLeaderForPartition, count: 2))
        broker.stop()
        XCTAssertThrowsError(try broker.setRoundTrip(broker: 1, .milliseconds(10))) { XCTAssertTrue("\($0)".contains("stopped"), "\($0)") }
    }
}
