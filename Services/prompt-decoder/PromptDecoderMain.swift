import ArgumentParser
import Tensor
import Messaging
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
            """,
        version: SegflowVersion.string)

    @OptionGroup var common: CommonServiceOptions
    @Option(help: "Embedding cache budget in MiB.") var cacheMb = 256
    @Option(help: "Milliseconds a prompt waits for its image's embedding before an EMBEDDING_NOT_FOUND result.")
    var maxWaitMs = 30_000

    static func main() async { await serviceMain() }

    func run() async throws {
        let logger = common.logger(label: "segflow-prompt-decoder")
        var options = common.configured(PromptDecoderService.Options())
        guard cacheMb > 0, maxWaitMs > 0 else { throw ValidationError("--cache-mb and --max-wait-ms must be positive") }
        options.cacheBytes = cacheMb * 1024 * 1024
        options.maxWaitMs = Double(maxWaitMs)
        let client = try common.clientConfig(clientID: "segflow-prompt-decoder")
        try await common.runService(logger: logger) {
            let backends = try common.loadBackends(parts: [.decoder])
            common.logStart(logger)
            return PromptDecoderService(backends: backends, client: client, options: options, logger: logger)
        }
    }
}
