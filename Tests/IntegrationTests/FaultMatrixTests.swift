import Foundation
import Messaging
import XCTest

/// The services as separate processes on a 3-broker embedded cluster (replication 3),
/// under broker faults: each fault is applied while a batch of images and prompts is in
/// flight; every request must be answered without an error (duplicates identical), no
/// service may crash, and the time to the last answer is reported.
final class FaultMatrixTests: XCTestCase {
    struct Fault: Sendable {
        let name: String
        let apply: @Sendable (EmbeddedBroker) throws -> Void
        let revert: @Sendable (EmbeddedBroker) throws -> Void
        /// Revert this long after the batch was sent (nil: after every answer arrived).
        var revertAfter: Duration? = nil
    }

    /// Every partition of every Segflow topic.
    static var allPartitions: [(String, Int32)] {
        ServingTopics().all.flatMap { topic in (0..<8).map { (topic, Int32($0)) } }
    }

    static let faults: [Fault] = [
        // The mock elects no new leader for a broker that is down; a real controller
        // would. So: leaders fail over to brokers 1 and 3 as a controller would move them,
        // then broker 2 comes back.
        Fault(name: "broker 2 down (leaders fail over to 1 and 3), up again after 5 s", apply: { b in
            try b.setDown(broker: 2)
            for (i, (topic, p)) in allPartitions.enumerated() { try b.setLeader(topic: topic, partition: p, broker: i % 2 == 0 ? 1 : 3) }
        }, revert: { try $0.setUp(broker: 2) }, revertAfter: .seconds(5)),
        // Without failover the partitions it led are unavailable until it is back.
        Fault(name: "broker 1 down with no failover for 5 s, then up", apply: { b in
            for (topic, p) in allPartitions { try b.setLeader(topic: topic, partition: p, broker: 1) }
            try b.setDown(broker: 1)
        }, revert: { try $0.setUp(broker: 1) }, revertAfter: .seconds(5)),
        Fault(name: "leaders of prompts/embeddings/masks [0…3] moved to broker 3", apply: { b in
            for topic in [SegflowTopics.prompts, SegflowTopics.embeddings, SegflowTopics.masks] {
                for p: Int32 in 0..<4 { try b.setLeader(topic: topic, partition: p, broker: 3) }
            }
        }, revert: { b in
            for topic in [SegflowTopics.prompts, SegflowTopics.embeddings, SegflowTopics.masks] {
                for p: Int32 in 0..<4 { try b.setLeader(topic: topic, partition: p, broker: 1) }
            }
        }),
        Fault(name: "produce, fetch, commit, join and sync errors injected", apply: { b in
            try b.injectErrors(.produce, .notLeaderForPartition, count: 3)
            try b.injectErrors(.fetch, .notLeaderForPartition, count: 3)
            try b.injectErrors(.offsetCommit, .requestTimedOut, count: 2)
            try b.injectErrors(.heartbeat, .rebalanceInProgress, count: 1)
            try b.injectErrors(.joinGroup, .coordinatorNotAvailable, count: 1)
            try b.injectErrors(.syncGroup, .rebalanceInProgress, count: 1)
        }, revert: { _ in }),
        Fault(name: "200 ms round trip on every broker", apply: { b in for id: Int32 in 1...3 { try b.setRoundTrip(broker: id, .milliseconds(200)) } },
              revert: { b in for id: Int32 in 1...3 { try b.setRoundTrip(broker: id, .zero) } }),
    ]

    func testEveryRequestIsAnsweredUnderBrokerFaults() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 8, brokers: 3)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder")
        let png = try Fixtures.png("chelsea_crop")
        func batch(_ tag: String) -> (records: [ProducerRecord], wanted: Set<String>) {
            var records: [ProducerRecord] = [], wanted: Set<String> = []
            for i in 0..<3 {
                let id = "\(tag)-\(i)"
                records.append(record(SegflowTopics.images, key: id, ImageRequest(requestID: "\(id)-img", imageID: id, image: .png(png)).encode(), requestID: "\(id)-img"))
                for j in 0..<2 {
                    let rid = "\(id)-p\(j)"
                    records.append(record(SegflowTopics.prompts, key: id, PromptRequest(requestID: rid, imageID: id, points: [.init(x: Float(20 + 30 * j), y: 40, label: 1)]).encode(), requestID: rid))
                    wanted.insert(rid)
                }
            }
            return (records, wanted)
        }
        // Healthy first (groups joined, model warm), so each fault's time is its own.
        let warm = batch("warm")
        try await cluster.send(warm.records)
        _ = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { Set(results($0).map(\.requestID)).isSuperset(of: warm.wanted) }
        var report: [String] = []
        for (index, fault) in Self.faults.enumerated() {
            let (records, wanted) = batch("f\(index)")
            // Requests are sent first, the fault applied with them in flight.
            let started = ContinuousClock.now
            try await cluster.send(records)
            try fault.apply(cluster.broker)
            let broker = cluster.broker
            let reverter = fault.revertAfter.map { delay in Task { try await Task.sleep(for: delay); try fault.revert(broker) } }
            let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(180)) { Set(results($0).map(\.requestID)).isSuperset(of: wanted) }
            let took = ContinuousClock.now - started
            if let reverter { try await reverter.value } else { try fault.revert(cluster.broker) }
            let answers = results(got).filter { wanted.contains($0.requestID) }
            XCTAssertEqual(Set(answers.map(\.requestID)), wanted, "\(fault.name): not every request answered; decoder: \(cluster.log("decoder").suffix(1500))")
            XCTAssertEqual(answers.compactMap(\.error).map(\.message), [], "\(fault.name): error answers")
            for (id, copies) in Dictionary(grouping: answers, by: \.requestID) where copies.count > 1 {
                XCTAssertTrue(copies.allSatisfy { $0.masks == copies[0].masks }, "\(fault.name): duplicate answers for \(id) differ")
            }
            XCTAssertTrue(cluster.processes.values.allSatisfy(\.isRunning), "\(fault.name): a service died")
            report.append("\(fault.name): \(wanted.count) prompts (3 images) answered in \(took), \(answers.count - wanted.count) duplicates")
        }
        print("fault matrix:\n" + report.joined(separator: "\n"))
    }
}
