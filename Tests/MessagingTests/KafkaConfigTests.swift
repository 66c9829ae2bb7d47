import Foundation
import Messaging
import XCTest

final class KafkaConfigTests: XCTestCase {
    func testPropertiesRenderAndRawPropertiesWin() {
        let client = KafkaClientConfig(bootstrapServers: "a:9092,b:9092", clientID: "enc",
                                       properties: ["security.protocol": "ssl"])
        let producer = ProducerConfig(client: client, messageMaxBytes: 900_000, compression: "lz4",
                                      properties: ["linger.ms": "50"]).librdkafkaProperties()
        XCTAssertEqual(producer["bootstrap.servers"], "a:9092,b:9092")
        XCTAssertEqual(producer["client.id"], "enc")
        XCTAssertEqual(producer["security.protocol"], "ssl")
        XCTAssertEqual(producer["enable.idempotence"], "true")
        XCTAssertEqual(producer["message.max.bytes"], "900000")
        XCTAssertEqual(producer["compression.codec"], "lz4")
        XCTAssertEqual(producer["partitioner"], "murmur2_random")
        XCTAssertEqual(producer["linger.ms"], "50", "raw properties override typed fields")
    }

    func testConsumerCannotBeSwitchedToAutoCommit() {
        let consumer = ConsumerConfig(client: KafkaClientConfig(bootstrapServers: ["x:1"]), groupID: "decoders",
                                      maxPartitionFetchBytes: 2_000_000,
                                      properties: ["enable.auto.commit": "true", "fetch.wait.max.ms": "10"]).librdkafkaProperties()
        XCTAssertEqual(consumer["group.id"], "decoders")
        XCTAssertEqual(consumer["enable.auto.commit"], "false", "at-least-once needs manual commits")
        XCTAssertEqual(consumer["enable.auto.offset.store"], "false")
        XCTAssertEqual(consumer["auto.offset.reset"], "earliest")
        XCTAssertEqual(consumer["max.partition.fetch.bytes"], "2000000")
        XCTAssertEqual(consumer["fetch.wait.max.ms"], "10")
    }

    func testUnknownPropertyIsRejectedByName() {
        let config = ProducerConfig(client: KafkaClientConfig(bootstrapServers: ["127.0.0.1:1"]),
                                    properties: ["no.such.property": "1"])
        XCTAssertThrowsError(try Producer(config: config)) { error in
            XCTAssertTrue("\(error)".contains("no.such.property"), "\(error)")
        }
    }

    func testStandardTopicsShareOnePartitionCount() {
        let specs = SegflowTopics.specs(partitions: 6)
        XCTAssertEqual(Set(specs.map(\.name)), [SegflowTopics.images, SegflowTopics.embeddings, SegflowTopics.prompts,
                                               SegflowTopics.text, SegflowTopics.masks, SegflowTopics.deadLetter,
                                               ServingTopics().promptPairs, SegflowTopics.streamState, SegflowTopics.embeddingIndex])
        XCTAssertEqual(Set(specs.map(\.partitions)), [6])
        // prompt-pairs and stream-state are compacted (the latest value of a key wins); the rest are not.
        XCTAssertEqual(specs.first { $0.name == ServingTopics().promptPairs }?.config["cleanup.policy"], "compact")
        XCTAssertEqual(specs.first { $0.name == SegflowTopics.streamState }?.config["cleanup.policy"], "compact")
        XCTAssertEqual(specs.first { $0.name == SegflowTopics.embeddingIndex }?.config["cleanup.policy"], "compact")
        XCTAssertEqual(specs.filter { $0.config["cleanup.policy"] != nil }.count, 3)
        // Every topic follows the prefix.
        XCTAssertTrue(ServingTopics(prefix: "blue").all.allSatisfy { $0.hasPrefix("blue.") })
    }

    /// Needs a real cluster (the mock has no CreateTopics):
    /// SEGFLOW_KAFKA_BROKERS=host:9092 swift test --filter KafkaConfigTests
    func testAdminCreatesTopicsOnRealCluster() async throws {
        guard let brokers = ProcessInfo.processInfo.environment["SEGFLOW_KAFKA_BROKERS"] else {
            throw XCTSkip("set SEGFLOW_KAFKA_BROKERS=host:port to run against a real Kafka cluster")
        }
        let admin = try Admin(config: KafkaClientConfig(bootstrapServers: brokers))
        let name = "segflow.test.\(UUID().uuidString.prefix(8).lowercased())"
        let spec = TopicSpec(name: name, partitions: 3, config: ["max.message.bytes": "2097152", "retention.ms": "600000"])
        try await admin.createTopics([spec], timeout: .seconds(30))
        try await admin.createTopics([spec], timeout: .seconds(30))  // existing with the same count is fine
        let counts = try await admin.waitForTopics([name])
        XCTAssertEqual(counts[name], 3)
        do {
            try await admin.createTopics([TopicSpec(name: name, partitions: 4)], timeout: .seconds(30))
            XCTFail("a different partition count must be reported")
        } catch let error as KafkaError {
            XCTAssertTrue(error.message.contains("has 3 partitions, wanted 4"), error.description)
        }
    }
}
