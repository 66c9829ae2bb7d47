import Foundation
import Messaging
import XCTest

/// `ConsumerConfig.oldestFirst`: buffered records go to the application oldest first
/// across partitions, each partition in offset order — a member that gains several
/// partitions' backlogs at once (a rebalance) answers them in the order they were sent,
/// not one partition's backlog after another's.
final class ConsumerOrderTests: XCTestCase {
    /// 3 partitions, record i on partition i % 3, produced one at a time (increasing
    /// CreateTime); the consumer starts once all are in the broker, so one fetch returns
    /// them partition by partition. Returns the values in the order the consumer handed them over.
    func order(oldestFirst: Bool) async throws -> [Int] {
        let topic = "order"
        let broker = try EmbeddedBroker()
        defer { broker.stop() }
        try await broker.createTopics([TopicSpec(name: topic, partitions: 3)])
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig()))
        let total = 30
        for i in 0..<total {
            _ = try await producer.send([ProducerRecord(topic: topic, key: nil, value: [UInt8(i)], partition: Int32(i % 3))])
            try await Task.sleep(for: .milliseconds(3))  // distinct millisecond timestamps
        }
        await producer.close()
        let consumer = try Consumer(config: ConsumerConfig(client: broker.clientConfig(), groupID: "order-\(oldestFirst)",
                                                           prefetchCount: 64, oldestFirst: oldestFirst),
                                    topics: [topic])
        let (values, offsets) = try await withTimeout(.seconds(30), "\(total) records") { () -> ([Int], [Int32: [Int64]]) in
            var values: [Int] = []
            var offsets: [Int32: [Int64]] = [:]
            for try await m in consumer.messages {
                values.append(Int(m.value[0]))
                offsets[m.partition, default: []].append(m.offset)
                // After the first record, let the whole fetch land in the buffer.
                if values.count == 1 { try await Task.sleep(for: .seconds(1)) }
                if values.count == total { break }
            }
            return (values, offsets)
        }
        await consumer.shutdown()
        for (partition, seen) in offsets { XCTAssertEqual(seen, seen.sorted(), "partition \(partition) out of offset order") }
        XCTAssertEqual(values.sorted(), Array(0..<total))
        return values
    }

    func testOldestFirstInterleavesPartitionsByTimestamp() async throws {
        let values = try await order(oldestFirst: true)
        // The first record was handed over before the rest arrived; from then on, oldest first.
        XCTAssertEqual(Array(values.dropFirst()), values.dropFirst().sorted(), "\(values)")
    }

    /// The control: fetch order is partition by partition, so the check above can fail.
    func testFetchOrderIsPartitionByPartition() async throws {
        let values = try await order(oldestFirst: false)
        XCTAssertNotEqual(Array(values.dropFirst()), values.dropFirst().sorted(), "\(values)")
    }

    /// A revocation drops the revoked partitions' buffered records (their new owner gets
    /// them), and a partition that comes back resumes at the first record the application
    /// never got — not after everything the poll thread had buffered.
    func testAKeptPartitionResumesAtTheFirstRecordTheApplicationDidNotGet() async throws {
        let topic = "kept-buffered"
        let broker = try EmbeddedBroker()
        defer { broker.stop() }
        try await broker.createTopics([TopicSpec(name: topic, partitions: 2)])
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig()))
        for partition: Int32 in [0, 1] {
            _ = try await producer.send((0..<10).map { ProducerRecord(topic: topic, key: nil, value: [UInt8($0)], partition: partition) })
        }
        let config = ConsumerConfig(client: broker.clientConfig(), groupID: "g-kept-buffered", sessionTimeoutMs: 6000, prefetchCount: 64)
        let a = try Consumer(config: config, topics: [topic], replay: [ReplayWindow(topic: topic, records: 100)])
        // a takes 5 records; the other 15 wait in its buffer.
        let first = try await take(5, from: a)
        var taken: [Int32: Int64] = [0: 0, 1: 0]
        for m in first { taken[m.partition] = max(taken[m.partition]!, m.offset + 1) }
        XCTAssertEqual(a.takeAssignedStarts().map(\.offset), [0, 0])
        try await Task.sleep(for: .milliseconds(500))  // the rest of the fetch lands in the buffer
        // b joins; a is not reading, but its poll thread serves the rebalance.
        let b = try Consumer(config: config, topics: [topic], replay: [ReplayWindow(topic: topic, records: 100)])
        let deadline = ContinuousClock.now + .seconds(60)
        var again: [AssignedStart] = []
        while again.isEmpty && ContinuousClock.now < deadline {
            again = a.takeAssignedStarts()
            try await Task.sleep(for: .milliseconds(50))
        }
        let kept = try XCTUnwrap(again.first, "a was never reassigned within 60 s").partition.partition
        XCTAssertEqual(again.count, 1, "\(again)")
        XCTAssertEqual(again.first?.offset, taken[kept], "resumes at the first record a never handed over (taken: \(taken))")
        XCTAssertEqual(again.first?.resumed, true)
        // What a reads next: the rest of the kept partition, from there, and nothing of
        // the partition it lost (its buffered records were dropped).
        let rest = try await take(10 - Int(taken[kept]!), from: a)
        XCTAssertEqual(rest.map(\.partition), Array(repeating: kept, count: rest.count))
        XCTAssertEqual(rest.map(\.offset), Array(taken[kept]!..<10))
        await a.shutdown()
        await b.shutdown()
        await producer.close()
    }
}
