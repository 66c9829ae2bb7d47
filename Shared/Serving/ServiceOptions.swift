import ArgumentParser
import Foundation
import Logging
import Messaging
import Pipeline
import CLIPSeg
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
    @Option(help: "Also serve CLIPSeg (text prompts) from this checkpoint (transformers CLIPSegForImageSegmentation names; env SEGFLOW_CLIPSEG_CHECKPOINT).")
    public var clipsegCheckpoint: String?
    @Option(help: "CLIPSeg layout: rd64-refined (CIDAS/clipseg-rd64-refined) or tiny-test.") public var clipsegConfig = "rd64-refined"
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

    /// The models this process serves: `--model clipseg` alone, or a SAM-family model plus
    /// CLIPSeg when `--clipseg-checkpoint` is given.
    public func loadBackends(clipsegParts: Set<CLIPSegForImageSegmentation.Part>) throws -> (sam: Sam?, clipseg: CLIPSegBackend?) {
        let name = (model ?? environment["SEGFLOW_MODEL"] ?? "litemedsam").lowercased()
        let config = try CLIPSegBackend.config(named: clipsegConfig)
        if name == CLIPSegBackend.modelName {
            guard let path = checkpoint ?? clipsegCheckpoint ?? environment["SEGFLOW_CHECKPOINT"] else {
                throw ValidationError("model clipseg needs --checkpoint /path/to/clipseg model.safetensors")
            }
            return (nil, try CLIPSegBackend(checkpoint: URL(fileURLWithPath: path), config: config, parts: clipsegParts))
        }
        let sam = try loadModel()
        let clip = try (clipsegCheckpoint ?? environment["SEGFLOW_CLIPSEG_CHECKPOINT"]).map {
            try CLIPSegBackend(checkpoint: URL(fileURLWithPath: $0), config: config, parts: clipsegParts)
        }
        return (sam, clip)
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
