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
            topics with --partitions partitions each (replicated on every broker). Limits: \
            random ports, about 5 MiB kept per partition, ~3 s for a consumer group's first \
            join. Ctrl-C stops it.

            Rehearsing faults (--faults): one command per line on stdin, answered on stderr:
              down BROKER | up BROKER              take a broker down / bring it back
              rtt BROKER MS                        delay every answer of BROKER by MS
              leader TOPIC PARTITION BROKER        move a partition's leadership
              errors REQUEST ERROR COUNT           fail the next COUNT requests, e.g.
                                                   errors produce NOT_LEADER_FOR_PARTITION 5
            REQUEST: \(EmbeddedBroker.Request.allCases.map { "\($0)" }.joined(separator: ", ")); \
            ERROR: a Kafka error name.
            """)

    @Option(help: "Partitions per Segflow topic (embeddings and prompts must share it).") var partitions = 4
    @Option(help: "Mock brokers in the cluster (ids 1…N); topics are replicated on all of them.") var brokerCount = 1
    @Option(help: "Write the bootstrap address to this file as well.") var addressFile: String?
    @Flag(help: "Read fault commands on stdin (see below).") var faults = false

    func run() async throws {
        guard partitions > 0 else { throw ValidationError("--partitions must be positive") }
        guard (1...16).contains(brokerCount) else { throw ValidationError("--broker-count must be 1…16, got \(brokerCount)") }
        let broker = try EmbeddedBroker(brokers: brokerCount)
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions, replicationFactor: brokerCount))
        print(broker.bootstrapServers)
        fflush(nil)
        if let addressFile { try broker.bootstrapServers.write(toFile: addressFile, atomically: true, encoding: .utf8) }
        FileHandle.standardError.write("segflow broker: \(broker.bootstrapServers), \(brokerCount) broker(s), topics with \(partitions) partitions; Ctrl-C to stop\n".data(using: .utf8)!)
        if faults {
            let thread = Thread {
                while let line = readLine() {
                    let answer: String
                    do { answer = "ok: " + (try FaultCommand.apply(line, to: broker)) } catch { answer = "error: \(error)" }
                    FileHandle.standardError.write("\(answer)\n".data(using: .utf8)!)
                }
            }
            thread.name = "segflow.broker.faults"
            thread.start()
        }
        // Runs until SIGTERM/SIGINT: the sleep ends at the graceful shutdown.
        try? await ServiceRunner.run([ClosureService(run: {
            try? await cancelWhenGracefulShutdown { while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) } }
        })], logger: Logger(label: "segflow-broker"))
        broker.stop()
    }
}

/// One line of `segflow broker --faults` input.
enum FaultCommand {
    struct Invalid: Error, CustomStringConvertible { let description: String }

    static func apply(_ line: String, to broker: EmbeddedBroker) throws -> String {
        let words = line.split(separator: " ").map(String.init)
        func int(_ i: Int, _ what: String) throws -> Int32 {
            guard i < words.count, let v = Int32(words[i]) else { throw Invalid(description: "'\(line)': \(what) must be an integer") }
            return v
        }
        switch words.first {
        case "down": try broker.setDown(broker: try int(1, "BROKER")); return "broker \(words[1]) down"
        case "up": try broker.setUp(broker: try int(1, "BROKER")); return "broker \(words[1]) up"
        case "rtt":
            let ms = try int(2, "MS")
            try broker.setRoundTrip(broker: try int(1, "BROKER"), .milliseconds(Int(ms)))
            return "broker \(words[1]) answers \(ms) ms later"
        case "leader":
            guard words.count == 4 else { throw Invalid(description: "'\(line)': usage: leader TOPIC PARTITION BROKER") }
            try broker.setLeader(topic: words[1], partition: try int(2, "PARTITION"), broker: try int(3, "BROKER"))
            return "\(words[1]) [\(words[2])] led by broker \(words[3])"
        case "errors":
            guard words.count == 4, let request = EmbeddedBroker.Request.allCases.first(where: { "\($0)".lowercased() == words[1].lowercased() }) else {
                throw Invalid(description: "'\(line)': usage: errors REQUEST ERROR COUNT (REQUEST: \(EmbeddedBroker.Request.allCases.map { "\($0)" }.joined(separator: ", ")))")
            }
            guard let code = KafkaError.Code.named(words[2].uppercased()) else { throw Invalid(description: "'\(line)': unknown Kafka error '\(words[2])'") }
            let count = try int(3, "COUNT")
            try broker.injectErrors(request, code, count: Int(count))
            return "next \(count) \(request) requests fail with \(code)"
        default:
            throw Invalid(description: "'\(line)': unknown command (down, up, rtt, leader, errors)")
        }
    }
}

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start an embedded broker plus N image-encoder and M prompt-decoder processes, for local scale-out.",
        discussion: """
            Point clients at the printed address: segflow segment IMAGE --brokers ADDRESS .... \
            A child that dies is reported and restarted; the children exit if `up` itself dies \
            (even by kill -9). Ctrl-C stops the services (they drain; one still running after \
            45 s is killed) and then the broker.
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

    /// How long a child may take to exit after SIGTERM before it is SIGKILLed (the
    /// services' own bound: 30 s graceful + 10 s cancellation, plus teardown).
    static let childExitBound: Duration = .seconds(45)
    /// A child that dies is restarted after this pause (so a crash loop costs little CPU).
    static let restartDelay: Duration = .seconds(1)

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
        let textArgs = (clipsegCheckpoint.map { ["--clipseg-checkpoint", $0] } ?? []) + (clipsegConfig.map { ["--clipseg-config", $0] } ?? [])
        var specs: [(name: String, arguments: [String])] = []
        var metricsPorts: [String] = []
        let modelArgs = ["--model", model] + (checkpoint.map { ["--checkpoint", $0] } ?? [])
        func add(_ name: String, _ arguments: [String]) {
            var arguments = ["--brokers", broker.bootstrapServers] + EmbeddedBroker.memberArguments + arguments
            if let base {
                // Explicit ports for each child (the flag wins over an inherited SEGFLOW_METRICS_PORT).
                let port = base == 0 ? 0 : base + specs.count
                arguments += ["--metrics-port", "\(port)"]
                metricsPorts.append("\(name.replacingOccurrences(of: "segflow-", with: "")) :\(port == 0 ? "(logged)" : "\(port)")")
            }
            specs.append((name, arguments))
        }
        for _ in 0..<encoders { add("segflow-image-encoder", modelArgs + textArgs) }
        for _ in 0..<decoders { add("segflow-prompt-decoder", modelArgs + textArgs) }
        if clipsegCheckpoint != nil { add("segflow-text-encoder", textArgs) }
        // No endpoints asked for: N children must not all try an inherited SEGFLOW_METRICS_PORT.
        let supervisor = Supervisor(directory: dir, specs: specs, dropEnvironment: base == nil ? ["SEGFLOW_METRICS_PORT"] : [])
        try await supervisor.startAll()
        print(broker.bootstrapServers)
        fflush(nil)
        FileHandle.standardError.write("segflow up: broker \(broker.bootstrapServers), \(encoders) encoder(s), \(decoders) decoder(s); Ctrl-C to stop\n".data(using: .utf8)!)
        if !metricsPorts.isEmpty {
            FileHandle.standardError.write("segflow up: metrics \(metricsPorts.joined(separator: ", "))\n".data(using: .utf8)!)
        }
        try? await ServiceRunner.run([ClosureService(run: {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(500))
                    await supervisor.restartDead(after: Self.restartDelay)
                }
            }
        })], logger: Logger(label: "segflow-up"))
        await supervisor.stopAll(bound: Self.childExitBound)
        broker.stop()
    }
}

/// `segflow up`'s children: started with SEGFLOW_PARENT_PID (they exit when `up` dies,
/// even by kill -9), reported and restarted when they die, stopped with a bound.
actor Supervisor {
    let directory: URL
    let specs: [(name: String, arguments: [String])]
    let dropEnvironment: [String]
    var processes: [Process] = []

    init(directory: URL, specs: [(name: String, arguments: [String])], dropEnvironment: [String]) {
        self.directory = directory
        self.specs = specs
        self.dropEnvironment = dropEnvironment
    }

    nonisolated func say(_ text: String) {
        FileHandle.standardError.write("segflow up: \(text)\n".data(using: .utf8)!)
    }

    func launch(_ index: Int) throws -> Process {
        let p = Process()
        p.executableURL = directory.appendingPathComponent(specs[index].name)
        p.arguments = specs[index].arguments
        var environment = ProcessInfo.processInfo.environment
        environment[ParentWatch.environmentKey] = String(getpid())
        for name in dropEnvironment { environment[name] = nil }
        p.environment = environment
        try p.run()
        say("started \(specs[index].name) pid \(p.processIdentifier)")
        return p
    }

    func startAll() throws {
        processes = try specs.indices.map { try launch($0) }
    }

    /// Reports each child that exited and starts it again.
    func restartDead(after delay: Duration) async {
        for index in processes.indices where !processes[index].isRunning {
            let dead = processes[index]
            let how = dead.terminationReason == .uncaughtSignal ? "was killed by signal \(dead.terminationStatus)" : "exited with status \(dead.terminationStatus)"
            say("\(specs[index].name) pid \(dead.processIdentifier) \(how); restarting it")
            try? await Task.sleep(for: delay)
            do { processes[index] = try launch(index) } catch { say("could not restart \(specs[index].name): \(error)") }
        }
    }

    /// SIGTERM to every child, then at most `bound` for all to exit; SIGKILL for the rest.
    func stopAll(bound: Duration) async {
        for p in processes where p.isRunning { p.terminate() }
        let deadline = ContinuousClock.now + bound
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }
        for (index, p) in processes.enumerated() where p.isRunning {
            say("\(specs[index].name) pid \(p.processIdentifier) did not exit within \(bound) of SIGTERM; killing it")
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }
}
