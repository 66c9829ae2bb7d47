import ArgumentParser
import Serving
import ServiceCommandLine
import ServiceKit

@main
struct PromptDecoderMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segflow-prompt-decoder",
        abstract: "Join embeddings and prompts by image id; decode masks; publish results.",
        discussion: """
            Run as many instances as load needs, in one consumer group: the embeddings and \
            prompts topics share a partition count, so each instance owns both halves of the \
            join for its partitions and rebuilds its embedding cache from the embeddings topic \
            after a restart. SIGTERM drains and exits.
            """)

    @OptionGroup var common: CommonServiceOptions
    @Option(help: "Embedding cache budget in MiB.") var cacheMb = 256
    @Option(help: "Milliseconds a prompt waits for its image's embedding before an EMBEDDING_NOT_FOUND result.")
    var maxWaitMs = 30_000

    static func main() async {
        BLASRuntime.selectCoreOrReexec()
        do {
            // `--help` and `help` parse to ArgumentParser's own command, not this one.
            var command = try parseAsRoot()
            if var service = command as? Self { try await service.run() } else { try command.run() }
        } catch { exit(withError: error) }
    }

    func run() async throws {
        let logger = common.logger(label: "segflow-prompt-decoder")
        var options = PromptDecoderService.Options()
        options.topics = common.topics
        if let g = common.group ?? common.environment["SEGFLOW_GROUP"] { options.groupID = g }
        guard cacheMb > 0, maxWaitMs > 0 else { throw ValidationError("--cache-mb and --max-wait-ms must be positive") }
        options.cacheBytes = cacheMb * 1024 * 1024
        options.maxWaitMs = Double(maxWaitMs)
        let client = try common.clientConfig(clientID: "segflow-prompt-decoder")
        let backends = try common.loadBackends(parts: [.decoder])
        logger.info("starting", metadata: ["blas.core": "\(BLASRuntime.selectionSummary)"])
        let service = PromptDecoderService(backends: backends, client: client, options: options, logger: logger)
        try await ServiceRunner.run([service], logger: logger)
    }
}
