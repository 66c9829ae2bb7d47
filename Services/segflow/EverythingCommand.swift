import ArgumentParser
import ServiceCommandLine
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import Client
import Embedded

struct EverythingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "everything",
        abstract: "Segment everything: SAM's automatic mask generator (grid of point prompts, filtering, NMS).",
        discussion: """
            Defaults are upstream's (segment_anything SamAutomaticMaskGenerator). Writes the \
            masks as COCO RLE JSON (pycocotools reads it) and optionally an overlay. Like \
            `segment`, it goes through Kafka by default (embedded broker unless --brokers); \
            --crop-n-layers > 0 needs the pixels for every crop and runs in-process.
            Note: LiteMedSAM was trained for single-mask box prompts; its multimask outputs \
            are weak and upstream's default thresholds keep no masks — lower \
            --pred-iou-thresh / --stability-score-thresh for it.

            Folders and globs (segment-anything's amg.py layout): IMAGE may be several files, \
            a directory (PNG, JPEG and WebP files by content; others skipped with a note) or a \
            quoted glob; --out-dir DIR gets DIR/STEM/0.png, 1.png, … (0/255 masks) with \
            DIR/STEM/metadata.csv (amg.py's columns) and DIR/STEM.json (the --json records). \
            Over Kafka all images are sent at once so the encoder works ahead.
            """)

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: ArgumentHelp("Input image(s) (PNG, JPEG or WebP; detected by content), directories or quoted globs.", valueName: "image"))
    var images: [String]
    var image: String { images[0] }
    @Option(help: "Directory for per-image outputs (amg.py's layout); required for folders and globs.") var outDir: String?
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false
    @Option(help: "Model: \(ModelRegistry.models.filter { $0.promptKinds.contains(.everything) }.map(\.name).joined(separator: ", ")).")
    var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option var pointsPerSide = 32
    @Option var pointsPerBatch = 64
    @Option var predIouThresh = 0.88
    @Option var stabilityScoreThresh = 0.95
    @Option var stabilityScoreOffset = 1.0
    @Option var boxNmsThresh = 0.7
    @Option var cropNLayers = 0
    @Option var cropNmsThresh = 0.7
    @Option var minMaskRegionArea = 0
    @Option(help: "COCO-RLE JSON to write.") var json: String?
    @Option(help: "Overlay PNG to write.") var overlay: String?
    @Option(help: "Kafka bootstrap servers of running services (default: $SEGFLOW_BROKERS, else an embedded broker).")
    var brokers: String?
    @Flag(help: "Run in this process without Kafka.") var inProcess = false
    @Option(help: "Seconds to wait for the result over Kafka.") var timeout = 900

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give an input image, directory or glob") }
        do { try ModelRegistry.require(.everything, model: model) } catch { throw ValidationError("\(error)") }
        if outDir != nil || InputSet.namesSeveral(images) {
            guard let outDir else { throw ValidationError("several images (a directory, a glob or more than one file) need --out-dir DIR") }
            if json != nil || overlay != nil { throw ValidationError("with --out-dir the outputs are per image (amg.py's layout); drop --json/--overlay") }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: outDir, isDirectory: &isDir), !isDir.boolValue {
                throw ValidationError("--out-dir \(outDir) is a file; give a directory")
            }
            return
        }
        if json == nil && overlay == nil { throw ValidationError("nothing to write: give --json and/or --overlay (or --out-dir)") }
    }

    var generatorParameters: AutomaticMaskGenerator.Parameters {
        var p = AutomaticMaskGenerator.Parameters()
        p.pointsPerSide = pointsPerSide; p.pointsPerBatch = pointsPerBatch; p.predIoUThresh = predIouThresh
        p.stabilityScoreThresh = stabilityScoreThresh; p.stabilityScoreOffset = stabilityScoreOffset
        p.boxNMSThresh = boxNmsThresh; p.cropNLayers = cropNLayers; p.cropNMSThresh = cropNmsThresh
        p.minMaskRegionArea = minMaskRegionArea; p.outputMode = .cocoRLE
        return p
    }

    var wireParameters: AutomaticMaskParams {
        AutomaticMaskParams(pointsPerSide: UInt32(pointsPerSide), pointsPerBatch: UInt32(pointsPerBatch),
                            predIoUThresh: Float(predIouThresh), stabilityScoreThresh: Float(stabilityScoreThresh),
                            stabilityScoreOffset: Float(stabilityScoreOffset), boxNMSThresh: Float(boxNmsThresh),
                            minMaskRegionArea: UInt32(minMaskRegionArea))
    }

    func run() async throws {
        try precisionOptions.apply()
        if let warning = ModelRegistry.everythingWarning(model: model, predIoUThresh: predIouThresh, stabilityScoreThresh: stabilityScoreThresh,
                                                         stabilityScoreOffset: stabilityScoreOffset) {
            FileHandle.standardError.write(Data("segflow: \(warning)\n".utf8))
        }
        if let outDir { return try await runBatch(outDir: outDir) }
        try OutputPaths.prepare([json, overlay])
        let tRead = Timing.nowMs()
        let input = try ImageInput.read(image)
        let preprocessMs = Timing.nowMs() - tRead
        var timings = StageTimings()
        let (png, img) = (input.bytes, input.image)
        let p = generatorParameters
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        let local = inProcess || cropNLayers > 0
        if cropNLayers > 0 && !inProcess {
            FileHandle.standardError.write("segflow: --crop-n-layers > 0 runs in-process (each crop needs its own embedding)\n".data(using: .utf8)!)
        }
        let t0 = Date()
        var entries: [[String: Any]] = []
        var masks: [BinaryMask] = []
        if local {
            guard let sam = (try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint)) as? SAMBackend)?.sam else {
                throw ValidationError("model \(model) has no automatic mask generator")
            }
            timings["preprocess"] = preprocessMs  // in-process, the file is decoded here
            let generator = try AutomaticMaskGenerator(sam, parameters: p)
            let records: [AutomaticMaskGenerator.MaskRecord]
            let te = Timing.nowMs()
            if cropNLayers == 0 {
                // The services' split: the encoder once, then the grid of prompts.
                let embedding = try sam.embed(rgb: img.pixels, width: img.width, height: img.height)
                timings["encode"] = Timing.nowMs() - te
                let td = Timing.nowMs()
                records = try generator.generate(embedding: embedding)
                timings["decode"] = Timing.nowMs() - td
            } else {
                records = try generator.generate(rgb: img.pixels, width: img.width, height: img.height)
                timings["decode"] = Timing.nowMs() - te   // every crop runs the encoder: one stage
            }
            entries = try JSONSerialization.jsonObject(with: try AutomaticMaskGenerator.json(records)) as? [[String: Any]] ?? []
            masks = try records.map { try $0.rle.decode() }
        } else {
            var logger = Logger(label: "segflow")
            logger.logLevel = .warning
            let params = wireParameters
            let request = PromptRequest(requestID: "all-" + UUID().uuidString, imageID: "image-" + UUID().uuidString,
                                        model: model, everything: params)
            let result = try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: {
                BackendSet([try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint))])
            }) { client in
                try await SegflowClient(client: client, logger: logger).segment(image: .png(png), prompts: request, timeout: .seconds(timeout))
            }
            timings["decode"] = result.timings.decodeMs
            let records = try Conversions.records(result.masks)
            entries = try JSONSerialization.jsonObject(with: try AutomaticMaskGenerator.json(records)) as? [[String: Any]] ?? []
            masks = try records.map { try $0.rle.decode() }
        }
        let tPost = Timing.nowMs()
        if let json {
            try JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
            print("wrote json: \(json)")
        }
        if let overlay {
            try PNG.write(try Overlay.render(img, masks: masks, options: .init(outline: true)), toFile: overlay)
            print("wrote overlay: \(overlay)")
        }
        let scores = entries.prefix(10).map { e in String(format: "iou %.3f stab %.3f area %d",
                                                        e["predicted_iou"] as? Double ?? 0, e["stability_score"] as? Double ?? 0,
                                                        e["area"] as? Int ?? 0) }
        timings["postprocess"] = Timing.nowMs() - tPost
        print(StageTimings.imageLine(index: 1, total: 1, name: image, width: img.width, height: img.height,
                                     summary: "\(entries.count) masks", timings: timings))
        print("\(entries.count) masks in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s via \(local ? "in-process" : brokers == nil ? "embedded broker" : "brokers")")
        for s in scores { print("  " + s) }
        if entries.count > 10 { print("  …") }
    }
}
