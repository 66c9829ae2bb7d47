import ArgumentParser
import Backends
import Foundation
import Serving
import ServiceCommandLine
import ServiceKit

@main
struct TextEncoderMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segflow-text-encoder",
        abstract: "Turn text prompts into CLIPSeg conditional embeddings and forward them to the prompts topic.",
        discussion: """
            Consumes PromptRequests with `text` from the text topic, tokenizes with CLIP's BPE \
            tokenizer, encodes with CLIPSeg's text tower (from the CLIPSeg checkpoint), caches \
            phrase → embedding, and forwards the prompt keyed by image id. SIGTERM drains.
            """,
        version: SegflowVersion.string)

    @OptionGroup var common: CommonServiceOptions
    @Option(help: "Phrases kept in the embedding cache.") var cacheEntries = 4096

    static func main() async { await serviceMain() }

    func run() async throws {
        let logger = common.logger(label: "segflow-text-encoder")
        let name = common.model ?? ModelRegistry.models.first { $0.promptKinds.contains(.text) }!.name
        guard ModelRegistry.info(name)?.promptKinds.contains(.text) == true else {
            throw ValidationError("model '\(name)' takes no text; the text-encoder serves: \(ModelRegistry.models.filter { $0.promptKinds.contains(.text) }.map(\.name).joined(separator: ", "))")
        }
        guard let path = common.clipsegCheckpoint ?? common.checkpoint
                ?? common.environment["SEGFLOW_CLIPSEG_CHECKPOINT"] ?? common.environment["SEGFLOW_CHECKPOINT"] else {
            throw ValidationError("the text-encoder needs a CLIPSeg checkpoint: --clipseg-checkpoint /path/to/model.safetensors")
        }
        try common.precisionOptions.apply()
        var options = common.configured(TextEncoderService.Options())
        options.cacheEntries = cacheEntries
        let client = try common.clientConfig(clientID: "segflow-text-encoder")
        try await common.runService(logger: logger) {
            let backend = try ModelRegistry.load(ModelLoadRequest(model: name, checkpoint: path, config: common.clipsegConfig ?? common.config,
                                                                  parts: [.text]))
            return TextEncoderService(backend: backend, client: client, options: options, logger: logger)
        }
    }
}
