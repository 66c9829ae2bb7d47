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

            Folders and globs: IMAGE may be several files, a directory (PNG, JPEG and WebP files \
            by content; others skipped with a note) or a quoted glob; --out-dir DIR gets \
            DIR/STEM.sgfe per image.
            """)

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: ArgumentHelp("Input image(s) (PNG, JPEG or WebP; detected by content), directories or quoted globs.", valueName: "image"))
    var images: [String]
    @Option(help: "Model: \(SAMBackend.family.models.map(\.name).joined(separator: ", ")).") var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Embedding file to write (one image).") var out: String?
    @Option(help: "Directory for STEM.sgfe per image; required for folders and globs.") var outDir: String?
    @Flag(help: "Store float16 (half the size, ~1e-3 relative precision).") var f16 = false
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give an input image, directory or glob") }
        if outDir != nil || InputSet.namesSeveral(images) {
            guard outDir != nil else { throw ValidationError("several images (a directory, a glob or more than one file) need --out-dir DIR") }
            guard out == nil else { throw ValidationError("give --out for one image or --out-dir for several, not both") }
        } else if out == nil {
            throw ValidationError("nothing to write: give --out FILE.sgfe (or --out-dir DIR)")
        }
        do { _ = try SAMBackend.kind(named: model) } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        try precisionOptions.apply()
        let kind = try SAMBackend.kind(named: model)
        let set = try InputSet.resolve(images)
        for note in set.skipNotes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        let files = try set.items.map { try ImageFile.read($0.path) }
        let targets = outDir.map { dir in set.items.map { (dir as NSString).appendingPathComponent($0.stem + ".sgfe") } } ?? [out!]
        try OutputPaths.prepare(targets)
        let sam = try ModelStore.load(kind, checkpoint: checkpoint)  // SGFE files hold SAM-family embeddings
        let progress = ProgressReporter(total: files.count, label: "embed", quiet: quiet || files.count == 1)
        for (i, file) in files.enumerated() {
            let tp = Timing.nowMs()
            let img = try file.decode()
            var t = StageTimings(["preprocess": Timing.nowMs() - tp])
            let te = Timing.nowMs()
            let emb = try sam.embed(rgb: img.pixels, width: img.width, height: img.height)
            t["encode"] = Timing.nowMs() - te
            let tw = Timing.nowMs()
            let bytes = EmbeddingCodec.encode(emb, dtype: f16 ? .f16 : .f32)
            try Data(bytes).write(to: URL(fileURLWithPath: targets[i]))
            t["postprocess"] = Timing.nowMs() - tw
            progress.finish()
            print(StageTimings.imageLine(index: i + 1, total: files.count, name: file.path, width: img.width, height: img.height,
                                         summary: "wrote \(targets[i]) (\(kind.rawValue), \(bytes.count) bytes, shape \(emb.embedding.shape))",
                                         timings: t))
            progress.advance(set.items[i].stem)
        }
        progress.finish()
    }
}
