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
    @Option(help: "Milliseconds a prompt waits for its image's embedding before an EMBEDDING_NOT_FOUND result, counted from the later of its arrival and the last embedding received (a prompt behind a burst of images waits while the encoders work through it).")
    var maxWaitMs = 30_000
    @Option(help: "Milliseconds a prompt may wait in all, however long embeddings keep arriving (default: 4 × --max-wait-ms).")
    var maxParkMs: Int?
    @Option(help: "Seconds without frames after which a tracked stream ends (state freed).") var streamIdleS = 300
    @Option(help: "KiB of tracker state per stream-state record: larger states (SAM 2's memory banks) are written as parts of this size, so every record stays under the broker's message.max.bytes (default 512; at most 900).")
    var snapshotPartKb = 512

    static func main() async { await serviceMain() }

    func run() async throws {
        let logger = common.logger(label: "segflow-prompt-decoder")
        var options = common.configured(PromptDecoderService.Options())
        guard cacheMb > 0, maxWaitMs > 0 else { throw ValidationError("--cache-mb and --max-wait-ms must be positive") }
        options.cacheBytes = cacheMb * 1024 * 1024
        options.maxWaitMs = Double(maxWaitMs)
        guard (maxParkMs ?? maxWaitMs) >= maxWaitMs, streamIdleS > 0 else {
            throw ValidationError("--max-park-ms must be at least --max-wait-ms, and --stream-idle-s positive")
        }
        options.maxParkMs = Double(maxParkMs ?? 4 * maxWaitMs)
        options.streamIdleMs = Double(streamIdleS) * 1000
        guard (1...900).contains(snapshotPartKb) else { throw ValidationError("--snapshot-part-kb must be 1…900 (got \(snapshotPartKb))") }
        options.snapshotPartBytes = snapshotPartKb * 1024
        let client = try common.clientConfig(clientID: "segflow-prompt-decoder")
        try await common.runService(logger: logger) {
            let backends = try common.loadBackends(parts: [.decoder])
            common.logStart(logger)
            return PromptDecoderService(backends: backends, client: client, options: options, logger: logger)
        }
    }
}
