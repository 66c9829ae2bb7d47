import ArgumentParser
import ServiceCommandLine
import Foundation
import Imaging
import Pipeline
import SAM
import Backends

struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Compute an image's SAM embedding once and save it (documented SGFE format, f32 or f16).",
        discussion: """
            Later `segflow segment IMAGE --embedding FILE ...` decodes prompts against it without \
            running the encoder. Format: Shared/SAM/EmbeddingCodec.swift.
            """)

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: "Input image (PNG, JPEG or WebP; detected by content).") var image: String
    @Option(help: "Model: \(SAMBackend.family.models.map(\.name).joined(separator: ", ")).") var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Embedding file to write.") var out: String
    @Flag(help: "Store float16 (half the size, ~1e-3 relative precision).") var f16 = false

    func run() async throws {
        try precisionOptions.apply()
        let kind = try SAMBackend.kind(named: model)
        let img = try ImageInput.read(image).image
        let sam = try ModelStore.load(kind, checkpoint: checkpoint)  // SGFE files hold SAM-family embeddings
        let t0 = Date()
        let emb = try sam.embed(rgb: img.pixels, width: img.width, height: img.height)
        let bytes = EmbeddingCodec.encode(emb, dtype: f16 ? .f16 : .f32)
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        print(String(format: "wrote %@ (%@, %d bytes, shape %@) in %.0f ms", out, kind.rawValue, bytes.count,
                     "\(emb.embedding.shape)", Date().timeIntervalSince(t0) * 1000))
    }
}
