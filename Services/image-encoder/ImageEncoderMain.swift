import ArgumentParser
import Tensor
import Messaging
import Serving
import ServiceCommandLine
import ServiceKit

@main
struct ImageEncoderMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segflow-image-encoder",
        abstract: "Consume image requests, compute each image's embedding once, publish it keyed by image id.",
        discussion: "Several instances in one consumer group share the images topic's partitions. SIGTERM drains and exits.",
        version: SegflowVersion.string)

    @OptionGroup var common: CommonServiceOptions
    @Option(help: "Embedding dtype on the wire: f16 (half the bytes) or f32 (exact).") var embeddingDtype = "f16"

    static func main() async { await serviceMain() }

    func run() async throws {
        let logger = common.logger(label: "segflow-image-encoder")
        var options = common.configured(ImageEncoderService.Options())
        guard let dtype = ["f16": Messaging.DType.f16, "f32": .f32][embeddingDtype] else {
            throw ValidationError("--embedding-dtype must be f16 or f32, got '\(embeddingDtype)'")
        }
        options.embeddingDType = dtype
        let client = try common.clientConfig(clientID: "segflow-image-encoder")
        try await common.runService(logger: logger) {
            let backends = try common.loadBackends(parts: [.encoder])
            common.logStart(logger)
            return ImageEncoderService(backends: backends, client: client, options: options, logger: logger)
        }
    }
}
