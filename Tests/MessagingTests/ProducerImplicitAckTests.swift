import Foundation
import Messaging
import XCTest

/// Delivery reports without an offset (librdkafka's implicit acknowledgement) under
/// injected produce errors: on the mock cluster those records were never written, and
/// the fault matrix lost an embedding chunk that way (the decoder waited 120 s for it and
/// the encoder indexed offset −1001). `Producer.send` re-produces them.
final class ProducerImplicitAckTests: XCTestCase {
    func testEveryRecordReportedDeliveredIsInTheLogUnderProduceErrors() async throws {
        let broker = try EmbeddedBroker(brokers: 3)
        defer { broker.stop() }
        let topic = "implicit-ack"
        try await broker.createTopics([TopicSpec(name: topic, partitions: 8, replicationFactor: 3)])
        // One record per produce request (batch.size below two records), so a send of four
        // has several requests in flight, as an embedding's 512 KiB chunks do; records
        // are small so the partitions stay under the mock's ~5 MiB retention.
        let recordBytes = 32 * 1024
        let producer = try Producer(config: ProducerConfig(client: broker.clientConfig(), properties: ["batch.size": "\(recordBytes + 4096)"]))
        // Four records per key, errors injected before every send (before the fix, 6 of
        // 30 sends came back with reports without an offset for records not in the log).
        let rounds = 10, perRound = 4
        var reports: [[DeliveryReport]] = []
        for round in 0..<rounds {
            let payload = [UInt8](repeating: UInt8(round), count: recordBytes)
            let records = (0..<perRound).map { ProducerRecord(topic: topic, key: "img-\(round)", value: payload + [UInt8($0)]) }
            try broker.injectErrors(.produce, .notLeaderForPartition, count: 3)
            reports.append(try await producer.send(records))
        }
        let resent = producer.implicitAckResends
        await producer.close()
        XCTAssertTrue(reports.joined().allSatisfy { $0.offset >= 0 }, "reports without an offset: \(reports.joined().filter { $0.offset < 0 })")
        XCTAssertGreaterThan(resent, 0, "no implicit acknowledgement happened: the injected errors no longer reproduce the condition this test is about")
        // Every report names a record that is in the log at that partition and offset.
        let consumer = try Consumer(config: ConsumerConfig(client: broker.clientConfig(), groupID: "implicit-ack", sessionTimeoutMs: 6000), topics: [topic])
        // Read until every reported position arrived, or 30 s.
        let wanted = Set(reports.joined().map { "\($0.partition)/\($0.offset)" })
        actor Log {
            var records: [String: ConsumedMessage] = [:]
            func add(_ m: ConsumedMessage, wanted: Set<String>) -> Bool {
                records["\(m.partition)/\(m.offset)"] = m
                return wanted.isSubset(of: records.keys)
            }
        }
        let read = Log()
        _ = try? await withTimeout(.seconds(30), "reading \(topic)") {
            for try await m in consumer.messages where await read.add(m, wanted: wanted) { break }
        }
        let log = await read.records
        print("implicit acknowledgements: \(resent) records re-produced; \(log.count) read back, \(wanted.count) reported")
        await consumer.shutdown()
        for (round, sent) in reports.enumerated() {
            for (i, report) in sent.enumerated() {
                let record = log["\(report.partition)/\(report.offset)"]
                XCTAssertEqual(record.map { [$0.value[0], $0.value.last!] }, [UInt8(round), UInt8(i)],
                               "round \(round) record \(i) reported at \(report.partition)/\(report.offset) is not in the log")
            }
        }
    }
}

/// The encoder indexes an embedding only where its delivery reports locate it.
final class EmbeddingLocationFromReportsTests: XCTestCase {
    func location(_ partitions: [Int32], _ offsets: [Int64]) -> EmbeddingLocation? {
        EmbeddingLocation(imageID: "i", requestID: "r", model: "m", reportedPartitions: partitions, offsets: offsets, producedAtMs: 1)
    }

    func testReportsThatLocateTheChunks() throws {
        let l = try XCTUnwrap(location([2, 2, 2, 2], [11, 10, 13, 12]))  // resent chunks land out of order
        XCTAssertEqual([l.partition, Int32(l.firstOffset), Int32(l.lastOffset), Int32(l.chunkCount)], [2, 10, 13, 4])
        // What it encodes a reader accepts.
        XCTAssertEqual(try EmbeddingLocation(bytes: l.encode()), l)
        XCTAssertNotNil(location([0], [0]))
    }

    func testReportsThatDoNotLocateTheChunksIndexNothing() {
        XCTAssertNil(location([2, 2, 2, 2], [-1001, 11, 12, 13]), "an implicit acknowledgement has no offset (fault matrix: indexed −1001)")
        XCTAssertNil(location([2, 3], [10, 11]), "chunks on two partitions")
        XCTAssertNil(location([], []))
        XCTAssertNil(location([-1], [5]))
        XCTAssertNil(location([1, 1], [0, EmbeddingLocation.maxSpan + 1]), "a span readers refuse")
        XCTAssertNil(location([1, 1, 1], [4, 4, 5]), "more chunks than offsets in the span")
    }
}
