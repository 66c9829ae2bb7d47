import ArgumentParser
import Foundation
import Logging
import Messaging
import Pipeline
import Backends

/// Flags shared by the service executables (each also reads its environment variable).
public struct CommonServiceOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (env SEGFLOW_BROKERS).") public var brokers: String?
    @Option(help: "Model: \(ModelRegistry.helpList) (env SEGFLOW_MODEL).")
    public var model: String?
    @Option(help: "Checkpoint path (env SEGFLOW_CHECKPOINT; default for litemedsam: the cached file).")
    public var checkpoint: String?
    @Option(help: "Model config: a preset name or a config JSON file, for families that take one.") public var config: String?
    @Option(help: "Consumer group id (env SEGFLOW_GROUP).") public var group: String?
    @Option(help: "Topic prefix: topics are PREFIX.images, .embeddings, .prompts, .text, .masks, .dead-letter.")
    public var topicPrefix = "segflow"
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env SEGFLOW_LOG_LEVEL).") public var logLevel: String?
    @Option(help: "Also serve CLIPSeg (text prompts) from this checkpoint (transformers CLIPSegForImageSegmentation names; env SEGFLOW_CLIPSEG_CHECKPOINT).")
    public var clipsegCheckpoint: String?
    @Option(help: "CLIPSeg layout: rd64-refined (CIDAS/clipseg-rd64-refined, the default) or tiny-test.") public var clipsegConfig: String?
    @OptionGroup public var precisionOptions: PrecisionOptions
    @Option(name: .customLong("property"), help: "Extra librdkafka property key=value; repeatable.")
    public var properties: [String] = []
    @Option(help: """
        Serve Prometheus metrics (/metrics), liveness (/healthz) and readiness (/readyz) over HTTP on this \
        port; 0 picks a free port and logs it (env SEGFLOW_METRICS_PORT; default: no endpoint).
        """)
    public var metricsPort: Int?
    @Option(help: """
        Directory for the poison-record guard (the record in hand, so one that crashes the service twice is \
        dead-lettered); '' turns the guard off (env SEGFLOW_STATE_DIR; default: $SEGFLOW_HOME/state).
        """)
    public var stateDir: String?

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

    /// The models this process serves: `--model` (with `--checkpoint`, `--config`), plus
    /// CLIPSeg when `--clipseg-checkpoint` is given. Loaded through the registry.
    public func loadBackends(parts: Set<BackendPart>) throws -> BackendSet {
        try precisionOptions.apply()
        let name = (model ?? environment["SEGFLOW_MODEL"] ?? ModelRegistry.defaultModel).lowercased()
        let textModel = ModelRegistry.info(name)?.promptKinds.contains(.text) == true
        let extra = clipsegCheckpoint ?? environment["SEGFLOW_CLIPSEG_CHECKPOINT"]
        var backends = [try ModelRegistry.load(ModelLoadRequest(
            model: name, checkpoint: checkpoint ?? environment["SEGFLOW_CHECKPOINT"] ?? (textModel ? extra : nil),
            config: config ?? (textModel ? clipsegConfig : nil), parts: parts))]
        if let extra, !textModel {
            backends.append(try ModelRegistry.load(ModelLoadRequest(model: CLIPSegBackend.modelName, checkpoint: extra,
                                                                    config: clipsegConfig, parts: parts)))
        }
        return BackendSet(backends)
    }

    public var topics: ServingTopics { ServingTopics(prefix: topicPrefix) }

    public func logger(label: String) -> Logger {
        var l = Logger(label: label)
        l.logLevel = Logger.Level(rawValue: logLevel ?? environment["SEGFLOW_LOG_LEVEL"] ?? "info") ?? .info
        KafkaLog.setLevel(l.logLevel)
        return l
    }
}
