import Foundation
import Logging
import Messaging
import CLIPSeg
import SAM

/// The single-machine default: an embedded broker (librdkafka's mock cluster, real Kafka
/// protocol on loopback) plus one image-encoder and one prompt-decoder running the same
/// service code a cluster runs.
public final class EmbeddedStack: Sendable {
    public let broker: EmbeddedBroker
    public let partitions: Int
    let tasks: [Task<Void, Never>]

    public var client: KafkaClientConfig { broker.clientConfig(clientID: "segflow-cli") }

    /// Starts the broker, creates the topics and launches the services (in this process).
    /// With `clipseg`, CLIPSeg is served too and a text-encoder runs.
    public static func start(sam: Sam?, clipseg: CLIPSegBackend? = nil, partitions: Int = 4,
                             embeddingDType: Messaging.DType = .f16, logger: Logger) async throws -> EmbeddedStack {
        let broker = try EmbeddedBroker()
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions))
        let client = broker.clientConfig(clientID: "segflow-embedded")
        var encoderOptions = ImageEncoderService.Options()
        encoderOptions.embeddingDType = embeddingDType
        let encoder = ImageEncoderService(sam: sam, clipseg: clipseg, client: client, options: encoderOptions, logger: logger)
        let decoder = PromptDecoderService(sam: sam, clipseg: clipseg, client: client, logger: logger)
        var tasks = [
            Task { do { try await encoder.run() } catch { logger.error("image-encoder failed: \(error)") } },
            Task { do { try await decoder.run() } catch { logger.error("prompt-decoder failed: \(error)") } },
        ]
        if let clipseg {
            let text = TextEncoderService(backend: clipseg, client: client, logger: logger)
            tasks.append(Task { do { try await text.run() } catch { logger.error("text-encoder failed: \(error)") } })
        }
        return EmbeddedStack(broker: broker, partitions: partitions, tasks: tasks)
    }

    init(broker: EmbeddedBroker, partitions: Int, tasks: [Task<Void, Never>]) {
        self.broker = broker; self.partitions = partitions; self.tasks = tasks
    }

    /// Stops the services (drain, commit, flush), then the broker.
    public func stop() async {
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
        broker.stop()
    }
}

extension EmbeddedStack {
    /// Where a command-line request goes: running services at `brokers`, or (nil) a fresh
    /// embedded stack serving the given models. `models` is only called for the embedded case.
    public static func connect(brokers: String?, logger: Logger,
                               models: () throws -> (sam: Sam?, clipseg: CLIPSegBackend?)) async throws
        -> (client: KafkaClientConfig, stack: EmbeddedStack?) {
        if let brokers { return (KafkaClientConfig(bootstrapServers: brokers, clientID: "segflow-cli"), nil) }
        let (sam, clipseg) = try models()
        let services = ["image-encoder", "prompt-decoder"] + (clipseg == nil ? [] : ["text-encoder"])
        FileHandle.standardError.write("segflow: starting embedded broker, \(services.joined(separator: ", "))…\n".data(using: .utf8)!)
        let stack = try await start(sam: sam, clipseg: clipseg, logger: logger)
        return (stack.client, stack)
    }
}
