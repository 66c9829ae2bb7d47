import ArgumentParser
import Foundation
import Messaging

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create the Segflow topics on a Kafka cluster (admin API), all with the same partition count.",
        discussion: """
            Embeddings and prompts must share a partition count (co-partitioning: the decoder \
            that owns partition p of one owns partition p of the other). Existing topics are \
            accepted when their partition count matches. Stock size limits suffice: \
            embeddings travel as 512 KiB chunks.
            """)

    @Option(help: "Kafka bootstrap servers (env SEGFLOW_BROKERS).") var brokers: String?
    @Option(help: "Partitions per topic (the most decoders that can share the load).") var partitions = 12
    @Option(help: "Replication factor.") var replicationFactor = 1

    func run() async throws {
        guard let b = brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"] else {
            throw ValidationError("no brokers: pass --brokers host:9092 or set SEGFLOW_BROKERS")
        }
        let admin = try Admin(config: KafkaClientConfig(bootstrapServers: b, clientID: "segflow-topics"))
        let specs = SegflowTopics.specs(partitions: partitions, replicationFactor: replicationFactor)
        try await admin.createTopics(specs)
        for (name, count) in try await admin.waitForTopics(specs.map(\.name)).sorted(by: { $0.key < $1.key }) {
            print("\(name): \(count) partitions")
        }
    }
}
