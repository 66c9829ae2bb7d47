import Backends
import Serving
import Client
import Foundation
import Logging
import Messaging

/// The single-machine default: an embedded broker (librdkafka's mock cluster, real Kafka
/// protocol on loopback) plus one image-encoder and one prompt-decoder running the same
/// service code a cluster runs (and a text-encoder when a served model takes text).
public final class EmbeddedStack: Sendable {
    public let broker: EmbeddedBroker
    public let partitions: Int
    let tasks: [Task<Void, Never>]

    public var client: KafkaClientConfig { broker.clientConfig(clientID: "segflow-cli") }

    /// The embedded stack's first-join delay where the mock lets it be set: each group has
    /// exactly one member (the services and the CLI), so waiting for others only costs time.
    public static let initialRebalanceDelay: Duration = .milliseconds(0)

    /// Starts the broker, creates the topics and launches the services (in this process).
    public static func start(backends: BackendSet, partitions: Int = 4,
                             embeddingDType: Messaging.DType = .f16, logger: Logger) async throws -> EmbeddedStack {
        StartupTrace.mark("embedded stack: starting broker")
        let broker = try EmbeddedBroker()
        // One member per group here: nothing to wait for. Only where the library allows it
        // (librdkafka ≥ 2.6.0); 2.0.2 keeps its 3 s (see EmbeddedBroker).
        let shortJoin = broker.setGroupInitialRebalanceDelay(Self.initialRebalanceDelay)
        StartupTrace.mark("embedded stack: broker up at \(broker.bootstrapServers); group initial rebalance delay \(shortJoin ? "\(Self.initialRebalanceDelay)" : "3 s (fixed by this librdkafka)")")
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions))
        StartupTrace.mark("embedded stack: topics created")
        let client = broker.clientConfig(clientID: "segflow-embedded")
        // In-process services: a crash is the CLI's own, seen by its user; no poison guard.
        var encoderOptions = ImageEncoderService.Options()
        encoderOptions.embeddingDType = embeddingDType
        encoderOptions.stateDirectory = nil
        let encoder = ImageEncoderService(backends: backends, client: client, options: encoderOptions, logger: logger)
        var decoderOptions = PromptDecoderService.Options()
        decoderOptions.stateDirectory = nil
        let decoder = PromptDecoderService(backends: backends, client: client, options: decoderOptions, logger: logger)
        var tasks = [
            Task { do { try await encoder.run() } catch { logger.error("image-encoder failed: \(error)") } },
            Task { do { try await decoder.run() } catch { logger.error("prompt-decoder failed: \(error)") } },
        ]
        if let textBackend = backends.textBackend {
            var textOptions = TextEncoderService.Options()
            textOptions.stateDirectory = nil
            let text = TextEncoderService(backend: textBackend, client: client, options: textOptions, logger: logger)
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
    /// The one "run through Kafka" helper every command uses: `body` gets a client for the
    /// running services at `brokers`, or (nil) for a fresh embedded stack serving
    /// `backends()` (only called in that case), which is stopped afterwards — on success
    /// and on failure.
    public static func withKafka<T: Sendable>(brokers: String?, logger: Logger, backends: () throws -> BackendSet,
                                              _ body: (KafkaClientConfig) async throws -> T) async throws -> T {
        if let brokers { return try await body(KafkaClientConfig(bootstrapServers: brokers, clientID: "segflow-cli")) }
        let set = try backends()
        let services = ["image-encoder", "prompt-decoder"] + (set.textBackend == nil ? [] : ["text-encoder"])
        FileHandle.standardError.write("segflow: starting embedded broker, \(services.joined(separator: ", "))…\n".data(using: .utf8)!)
        let stack = try await start(backends: set, logger: logger)
        let outcome: Result<T, Error>
        do { outcome = .success(try await body(stack.client)) } catch { outcome = .failure(error) }
        StartupTrace.mark("embedded stack: stopping")
        await stack.stop()
        StartupTrace.mark("embedded stack: stopped")
        return try outcome.get()
    }
}
