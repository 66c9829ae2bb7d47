import Foundation
import Messaging
import XCTest

/// A graceful leave drains before it leaves: what the member already fetched is handled
/// there (and committed) instead of being redelivered to the next owner after a
/// rebalance; a drain under continuous load ends at its budget.
final class ConsumerDrainTests: XCTestCase {
    actor Handled {
        var offsets: [Int64] = []
        func add(_ o: Int64) { offsets.append(o) }
    }

    /// An embedded broker with a one-partition topic and a producer for it.
    func brokerWithTopic(_ topic: String) async throws -> (EmbeddedBroker, Producer) {
        let broker = try EmbeddedBroker()
        try await broker.createTopics([TopicSpec(name: topic, partitions: 1)])
        return (broker, try Producer(config: ProducerConfig(client: broker.clientConfig())))
    }

    func testADrainHandlesEveryFetchedRecordBeforeLeaving() async throws {
        let topic = "drain"
        let (broker, producer) = try await brokerWithTopic(topic)
        defer { broker.stop() }
        let total = 60
        _ = try await producer.send((0..<total).map { ProducerRecord(topic: topic, key: "k", value: [UInt8($0)]) })
        let config = ConsumerConfig(client: broker.clientConfig(), groupID: "drain", sessionTimeoutMs: 6000, storedOffsetCommitIntervalMs: 500)
        let consumer = try Consumer(config: config, topics: [topic])
        let handled = Handled()
        // A slow handler (20 ms per record, 1.2 s for all): the drain is asked for after the
        // first record, with nearly all of them still only fetched.
        let loop = Task {
            for try await m in consumer.messages {
                try? await Task.sleep(for: .milliseconds(20))
                await handled.add(m.offset)
                try consumer.store(TopicPartition(topic: topic, partition: m.partition), nextOffset: m.offset + 1)
            }
        }
        try await withTimeout(.seconds(30), "first record") { while await handled.offsets.isEmpty { try await Task.sleep(for: .milliseconds(10)) } }
        let (outcome, closed) = await consumer.drainThenShutdown(budget: .seconds(20), quiet: .milliseconds(300))
        _ = try? await withTimeout(.seconds(10), "consumer loop end") { try await loop.value }
        guard case .caughtUp(let seconds) = outcome else { return XCTFail("drain did not catch up: \(outcome)") }
        XCTAssertTrue(closed, "close after the drain")
        let offsets = await handled.offsets
        XCTAssertEqual(offsets, (0..<Int64(total)).map { $0 }, "every fetched record handled, in order, before the close")
        print(String(format: "drain: %d records handled, caught up after %.2f s", offsets.count, seconds))
        // The drained records were committed at the close: the group's next member starts after them.
        let next = try Consumer(config: config, topics: [topic])
        _ = try await producer.send([ProducerRecord(topic: topic, key: "k", value: [0xFF])])
        let first = try await withTimeout(.seconds(30), "the next member's first record") { () -> Int64 in
            for try await m in next.messages { return m.offset }
            return -1
        }
        XCTAssertEqual(first, Int64(total), "the next member got a drained record again")
        await next.shutdown()
        await producer.close()
    }

    func testADrainUnderContinuousLoadEndsAtItsBudget() async throws {
        let topic = "drain-load"
        let (broker, producer) = try await brokerWithTopic(topic)
        defer { broker.stop() }
        let consumer = try Consumer(config: ConsumerConfig(client: broker.clientConfig(), groupID: "drain-load", sessionTimeoutMs: 6000),
                                    topics: [topic])
        let handled = Handled()
        let loop = Task { for try await m in consumer.messages { await handled.add(m.offset) } }
        let feeding = Task {
            var i = 0
            while !Task.isCancelled {
                _ = try? await producer.send([ProducerRecord(topic: topic, key: "k", value: [UInt8(i & 0xFF)])])
                i += 1
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        try await withTimeout(.seconds(30), "first record") { while await handled.offsets.isEmpty { try await Task.sleep(for: .milliseconds(10)) } }
        let started = ContinuousClock.now
        let (outcome, closed) = await consumer.drainThenShutdown(budget: .seconds(2), quiet: .milliseconds(300))
        let took = ContinuousClock.now - started
        feeding.cancel()
        _ = await feeding.value
        _ = try? await withTimeout(.seconds(10), "consumer loop end") { try await loop.value }
        guard case .budgetSpent(let seconds) = outcome else { return XCTFail("a drain under load caught up: \(outcome)") }
        XCTAssertGreaterThanOrEqual(seconds, 2)
        XCTAssertLessThan(took, .seconds(2) + Consumer.defaultCloseBound, "drain plus close bounded")
        XCTAssertTrue(closed)
        await producer.close()
    }
}
