import ArgumentParser
import ServiceLifecycle
import Logging
import Backends
import Foundation
import Messaging
import ServiceKit

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka broker (librdkafka's mock cluster) and print its bootstrap address.",
        discussion: """
            Speaks the real Kafka protocol on loopback TCP, in memory. Creates the Segflow \
            topics with --partitions partitions each. Limits: random port, about 5 MiB kept \
            per partition, ~3 s for a consumer group's first join. Ctrl-C stops it.
            """)

    @Option(help: "Partitions per Segflow topic (embeddings and prompts must share it).") var partitions = 4
    @Option(help: "Write the bootstrap address to this file as well.") var addressFile: String?

    func run() async throws {
        guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
        let broker = try EmbeddedBroker()
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions))
        print(broker.bootstrapServers)
        fflush(nil)
        if let addressFile { try broker.bootstrapServers.write(toFile: addressFile, atomically: true, encoding: .utf8) }
        FileHandle.standardError.write("segflow broker: \(broker.bootstrapServers), topics with \(partitions) partitions; Ctrl-C to stop\n".data(using: .utf8)!)
        // Runs until SIGTERM/SIGINT: the sleep ends at the graceful shutdown.
        try? await ServiceRunner.run([ClosureService(run: {
            try? await cancelWhenGracefulShutdown { while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) } }
        })], logger: Logger(label: "segflow-broker"))
        broker.stop()
    }
}

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start an embedded broker plus N image-encoder and M prompt-decoder processes, for local scale-out.",
        discussion: """
            Point clients at the printed address: segflow segment IMAGE --brokers ADDRESS .... \
            Ctrl-C stops the services (they drain) and then the broker.
            """)

    @Option(help: "Image-encoder processes.") var encoders = 1
    @Option(help: "Prompt-decoder processes.") var decoders = 2
    @Option(help: "Partitions per topic.") var partitions = 4
    @Option(help: "Model for the image-encoders and prompt-decoders: \(ModelRegistry.helpList).") var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint for all services.") var checkpoint: String?
    @Option(help: "Also serve text prompts: CLIPSeg checkpoint (starts a text-encoder too).") var clipsegCheckpoint: String?
    @Option(help: "CLIPSeg layout: rd64-refined or tiny-test.") var clipsegConfig: String?
    @Option(help: """
        Metrics endpoints (/metrics, /healthz, /readyz): the encoders on PORT, PORT+1, …, then the decoders, then the \
        text-encoder; 0 lets each service pick a free port and log it (env SEGFLOW_METRICS_PORT; default: none).
        """)
    var metricsPort: Int?

    func run() async throws {
        guard encoders > 0, decoders > 0, partitions > 0 else { throw ValidationError("counts must be positive") }
        // The first metrics port (nil: no endpoints).
        var base = metricsPort
        if base == nil, let text = ProcessInfo.processInfo.environment["SEGFLOW_METRICS_PORT"], !text.isEmpty {
            guard let port = Int(text) else { throw ValidationError("SEGFLOW_METRICS_PORT must be a port number, got '\(text)'") }
            base = port
        }
        let services = encoders + decoders + (clipsegCheckpoint == nil ? 0 : 1)
        if let base, base != 0, !(1...65535).contains(base) || base + services - 1 > 65535 {
            throw ValidationError("--metrics-port \(base): \(services) services need ports \(base)…\(base + services - 1) within 1…65535 (or 0)")
        }
        let broker = try EmbeddedBroker()
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions))
        let dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        var children: [Process] = []
        var metricsPorts: [String] = []
        let textArgs = (clipsegCheckpoint.map { ["--clipseg-checkpoint", $0] } ?? []) + (clipsegConfig.map { ["--clipseg-config", $0] } ?? [])
        func spawn(_ name: String, modelArgs: Bool = true) throws {
            let p = Process()
            p.executableURL = dir.appendingPathComponent(name)
            p.arguments = ["--brokers", broker.bootstrapServers]
                + (modelArgs ? ["--model", model] + (checkpoint.map { ["--checkpoint", $0] } ?? []) : []) + textArgs
            if let base {
                // Explicit ports for each child (the flag wins over an inherited SEGFLOW_METRICS_PORT).
                let port = base == 0 ? 0 : base + children.count
                p.arguments! += ["--metrics-port", "\(port)"]
                metricsPorts.append("\(name.replacingOccurrences(of: "segflow-", with: "")) :\(port == 0 ? "(logged)" : "\(port)")")
            } else {
                // No endpoints asked for: N children must not all try the same port.
                var environment = ProcessInfo.processInfo.environment
                environment["SEGFLOW_METRICS_PORT"] = nil
                p.environment = environment
            }
            try p.run()
            children.append(p)
        }
        for _ in 0..<encoders { try spawn("segflow-image-encoder") }
        for _ in 0..<decoders { try spawn("segflow-prompt-decoder") }
        if clipsegCheckpoint != nil { try spawn("segflow-text-encoder", modelArgs: false) }
        print(broker.bootstrapServers)
        fflush(nil)
        FileHandle.standardError.write("segflow up: broker \(broker.bootstrapServers), \(encoders) encoder(s), \(decoders) decoder(s); Ctrl-C to stop\n".data(using: .utf8)!)
        if !metricsPorts.isEmpty {
            FileHandle.standardError.write("segflow up: metrics \(metricsPorts.joined(separator: ", "))\n".data(using: .utf8)!)
        }
        let running = children
        try? await ServiceRunner.run([ClosureService(run: {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled && running.contains(where: \.isRunning) { try await Task.sleep(for: .milliseconds(500)) }
            }
        })], logger: Logger(label: "segflow-up"))
        for c in children where c.isRunning { c.terminate() }
        for c in children { c.waitUntilExit() }
        broker.stop()
    }
}
