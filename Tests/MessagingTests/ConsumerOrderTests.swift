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
}
