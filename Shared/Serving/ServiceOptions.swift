import ArgumentParser
import Foundation
import Logging
import Messaging
import Pipeline
import SAM

/// Flags shared by the service executables (each also reads its environment variable).
public struct CommonServiceOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (env SEGFLOW_BROKERS).") public var brokers: String?
    @Option(help: "Model: \(SamModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (env SEGFLOW_MODEL).")
    public var model: String?
    @Option(help: "Checkpoint path (env SEGFLOW_CHECKPOINT; default for litemedsam: the cached file).")
    public var checkpoint: String?
    @Option(help: "Consumer group id (env SEGFLOW_GROUP).") public var group: String?
    @Option(help: "Topic prefix: topics are PREFIX.images, .embeddings, .prompts, .masks, .dead-letter.")
    public var topicPrefix = "segflow"
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env SEGFLOW_LOG_LEVEL).") public var logLevel: String?
    @Option(name: .customLong("property"), help: "Extra librdkafka property key=value; repeatable.")
    public var properties: [String] = []

    public init() {}

    public var environment: [String: String] { ProcessInfo.processInfo.environment }

    public func brokerList() throws -> String {
        guard let b = brokers ?? environment["SEGFLOW_BROKERS"], !b.isEmpty else {
            throw ValidationError("no brokers: pass --brokers host:9092 or set SEGFLOW_BROKERS (for a local broker run `segflow broker`)")
        }
        return b
    }

    public func clientConfig(clientID: String) throws -> KafkaClientConfig {
        var props: [String: String] = [:]
        for p in properties {
            guard let eq = p.firstIndex(of: "="), eq != p.startIndex else { throw ValidationError("--property '\(p)' must be key=value") }
            props[String(p[..<eq])] = String(p[p.index(after: eq)...])
        }
        return KafkaClientConfig(bootstrapServers: try brokerList(), clientID: clientID, properties: props)
    }

    public func modelKind() throws -> SamModelKind { try ModelStore.kind(named: model ?? environment["SEGFLOW_MODEL"] ?? "litemedsam") }

    public func loadModel() throws -> Sam {
        try ModelStore.load(try modelKind(), checkpoint: checkpoint ?? environment["SEGFLOW_CHECKPOINT"])
    }

    public var topics: ServingTopics {
        var t = ServingTopics()
        t.images = "\(topicPrefix).images"; t.embeddings = "\(topicPrefix).embeddings"; t.prompts = "\(topicPrefix).prompts"
        t.masks = "\(topicPrefix).masks"; t.deadLetter = "\(topicPrefix).dead-letter"
        return t
    }

    public func logger(label: String) -> Logger {
        var l = Logger(label: label)
        l.logLevel = Logger.Level(rawValue: logLevel ?? environment["SEGFLOW_LOG_LEVEL"] ?? "info") ?? .info
        return l
    }
}
