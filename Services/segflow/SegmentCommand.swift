import ArgumentParser
import ServiceCommandLine
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Tensor
import Serving
import Client
import Embedded

struct SegmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment an image from point, box, text or example (image + mask) prompts.",
        discussion: """
            By default the request goes through Kafka: with no --brokers an embedded broker \
            (librdkafka's mock cluster on loopback) is started with one image-encoder and one \
            prompt-decoder, the same code a cluster runs; with --brokers the running services \
            answer. --in-process skips Kafka; both paths run the same backend code.

            Coordinates are pixels of the original image. Each --box is one prompt (carrying \
            all --point values); with no box, the points form one prompt. --out gets the union \
            of each prompt's best mask (0/255 PNG); --json gets every mask as COCO RLE with its \
            predicted IoU and stability score. The printed summary lists each prompt's masks \
            as `[i] iou … stability … area …`; the one marked `(best)` has the highest \
            predicted IoU and is the one --out and --overlay use.

            Folders and globs: IMAGE may be several files, a directory (its PNG, JPEG and WebP \
            files, by content; other files are skipped with a note) or a quoted glob \
            ("frames/*.jpg"). Every image gets the same prompts, and the outputs go under \
            --out-dir: STEM.png (the mask), STEM.json (as --json) and, with --overlays, \
            STEM_overlay.png, STEM being the file name without its extension. Over Kafka all \
            images are sent at once so the encoder works ahead while the decoder answers.

            Examples:
              segflow segment cat.png --model litemedsam --box 60,10,330,290 --out mask.png --overlay overlay.png
              segflow segment cat.png --model sam-vit-b --checkpoint sam_vit_b_01ec64.pth --point 190,150 --multimask --json r.json
              segflow segment cat.png --model clipseg --checkpoint model.safetensors --prompt-image other_cat.png --prompt-mask other_cat_mask.png --out mask.png
            """
    )

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: ArgumentHelp("Input image(s) (PNG, JPEG or WebP; detected by content), directories or quoted globs.", valueName: "image"))
    var images: [String]
    var image: String { images[0] }
    @Option(help: "Directory for per-image outputs (STEM.png, STEM.json[, STEM_overlay.png]); required for folders and globs.")
    var outDir: String?
    @Flag(help: "With --out-dir: also write STEM_overlay.png per image.") var overlays = false
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false
    @Option(help: "Model: \(ModelRegistry.helpList).") var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Model config (a preset name or a config JSON), for families that take one.") var config: String?
    @Option(name: .customLong("point"), help: "Point prompt x,y[,label] (label 1 foreground, 0 background); repeatable.")
    var points: [String] = []
    @Option(name: .customLong("box"), help: "Box prompt x0,y0,x1,y1; repeatable (one prompt per box).") var boxes: [String] = []
    @Option(help: "Low-res logits from a previous run (--save-logits) fed back as SAM's mask input.") var maskInput: String?
    @Flag(help: "Return 3 masks per prompt with IoU predictions (best one goes to --out).") var multimask = false
    @Option(help: "Binary mask PNG to write.") var out: String?
    @Option(help: "Overlay PNG (image with masks blended) to write.") var overlay: String?
    @Option(help: "Result JSON to write (COCO RLE masks, scores, timings).") var json: String?
    @Option(help: "Write the raw model output as float32 .npy: SAM's best low-res logits [1, 256, 256] (usable as --mask-input), SegGPT/Painter's query half [3, h, w].")
    var saveLogits: String?
    @Option(help: "Kafka bootstrap servers of running services (default: $SEGFLOW_BROKERS, else an embedded broker).")
    var brokers: String?
    @Flag(help: "Run the model in this process without Kafka.") var inProcess = false
    @Option(help: "Use an embedding saved by `segflow embed` (in-process; the encoder does not run).") var embedding: String?
    @Option(help: "Seconds to wait for the result over Kafka.") var timeout = 300
    @Flag(help: "Log service activity to stderr.") var verbose = false
    @Option(help: "Text prompt (needs a model that takes text, e.g. --model clipseg, and its checkpoint).") var text: String?
    @Option(help: "CLIPSeg layout: rd64-refined (default) or tiny-test.") var clipsegConfig: String?
    @Option(help: "Refine the text model's mask with SAM: 'sam' (uses --sam-model/--sam-checkpoint).") var refine: String?
    @Option(help: "SAM-family model for --refine sam.") var samModel = ModelRegistry.defaultModel
    @Option(name: .customLong("prompt-image"), help: "Example image (seggpt, painter, clipseg one-shot); repeatable, paired in order with --prompt-mask. Several pairs = SegGPT's feature ensemble, CLIPSeg's averaged visual prompt.")
    var promptImages: [String] = []
    @Option(name: .customLong("prompt-mask"), help: "The example's mask PNG: nonzero = foreground, or class indices 0…N with --num-labels N (painter depth/restore: the target image).")
    var promptMasks: [String] = []
    @Option(help: "In-context task: seggpt instance (default) | semantic; painter semantic (default) | depth | restore.") var task: String?
    @Option(help: "Prompt masks hold class indices 0 (background)…N; 0 = binary masks.") var numLabels = 0
    @Option(help: "Checkpoint for --sam-model (default for litemedsam: the cached one).") var samCheckpoint: String?

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give an input image, directory or glob") }
        if outDir != nil || InputSet.namesSeveral(images) {
            try validateBatch()
            return
        }
        if overlays { throw ValidationError("--overlays goes with --out-dir; for one image give --overlay FILE") }
        if out == nil && overlay == nil && json == nil && saveLogits == nil {
            throw ValidationError("nothing to write: give --out, --overlay, --json or --save-logits (or --out-dir)")
        }
        do {
            guard let info = ModelRegistry.info(model) else { throw RegistryError.unknownModel(model) }
            // Examples given, or a model that takes nothing else (seggpt, painter).
            if !promptImages.isEmpty || !promptMasks.isEmpty || (info.promptKinds.contains(.examples) && text == nil && !info.promptKinds.contains(.text)) {
                try ModelRegistry.require(.examples, model: model)
                guard !promptImages.isEmpty else { throw ValidationError("--model \(model) needs --prompt-image P --prompt-mask M (an example and its mask)") }
                guard promptImages.count == promptMasks.count else {
                    throw ValidationError("give one --prompt-mask per --prompt-image (got \(promptImages.count) images, \(promptMasks.count) masks)")
                }
                guard points.isEmpty, boxes.isEmpty, maskInput == nil, text == nil else {
                    throw ValidationError("--prompt-image/--prompt-mask cannot be combined with --point, --box, --mask-input or --text")
                }
                try validateRefine()
                guard checkpoint != nil else { throw ValidationError("--model \(model) needs --checkpoint (\(info.weights))") }
                guard (0...Int(PromptPair.maxLabels)).contains(numLabels) else { throw ValidationError("--num-labels must be 0…\(PromptPair.maxLabels)") }
                return
            }
            if text != nil {
                try ModelRegistry.require(.text, model: model)
                guard checkpoint != nil else { throw ValidationError("--model \(model) needs --checkpoint (\(ModelRegistry.info(model)!.weights))") }
                guard points.isEmpty, boxes.isEmpty, maskInput == nil else { throw ValidationError("--text cannot be combined with --point, --box or --mask-input") }
                try validateRefine()
            } else {
                if !points.isEmpty { try ModelRegistry.require(.points, model: model) }
                if !boxes.isEmpty { try ModelRegistry.require(.boxes, model: model) }
                if maskInput != nil { try ModelRegistry.require(.maskInput, model: model) }
                if multimask { try ModelRegistry.require(.multimask, model: model) }
                if points.isEmpty && boxes.isEmpty {
                    if info.promptKinds.contains(.text) {
                        throw ValidationError("--model \(model) needs --text \"what to segment\""
                                              + (info.promptKinds.contains(.examples) ? " or --prompt-image P --prompt-mask M (one-shot)" : ""))
                    }
                    throw ValidationError("give at least one --point or --box")
                }
            }
        } catch let e as RegistryError { throw ValidationError(e.description) }
    }

    func validateRefine() throws {
        if let refine, refine != "sam" { throw ValidationError("--refine takes 'sam', got '\(refine)'") }
        if refine != nil { try ModelRegistry.require(.boxes, model: samModel) }
    }

    var refineRequest: ModelLoadRequest? { refine.map { _ in ModelLoadRequest(model: samModel, checkpoint: samCheckpoint) } }

    func runText(_ text: String, input: ImageInput, brokers: String?, logger: Logger) async throws {
        let img = input.image
        let run = TextSegmentRun(input: input, text: text, model: model, checkpoint: checkpoint!,
                                 config: clipsegConfig ?? config, refine: refineRequest,
                                 route: Route(brokers: brokers, inProcess: inProcess, timeout: timeout, logger: logger))
        let (mask, outcome) = try await run.run()
        if let out { try PNG.write(mask.grayImage(), toFile: out); print("wrote mask: \(out)") }
        if let overlay { try PNG.write(try Overlay.render(img, masks: [mask]), toFile: overlay); print("wrote overlay: \(overlay)") }
        if let json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(outcome).write(to: URL(fileURLWithPath: json))
            print("wrote json: \(json)")
        }
        print(String(format: "\"%@\": CLIPSeg score %.3f area %d", text, outcome.clipsegScore, outcome.clipsegArea)
              + (outcome.samPredictedIoU.map { String(format: "; SAM refined: iou %.3f stability %.3f area %d", $0, outcome.samStabilityScore ?? 0, mask.area) } ?? ""))
    }

    func run() async throws {
        try precisionOptions.apply()
        if let outDir { return try await runBatch(outDir: outDir) }
        try OutputPaths.prepare([out, overlay, json, saveLogits])
        let tRead = Timing.nowMs()
        let input = try ImageInput.read(image)
        let preprocessMs = Timing.nowMs() - tRead
        let (pngBytes, img) = (input.bytes, input.image)
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        var logger = Logger(label: "segflow")
        logger.logLevel = verbose ? .info : .warning
        if let text { return try await runText(text, input: input, brokers: brokers, logger: logger) }
        if !promptImages.isEmpty { return try await runInContext(input, brokers: brokers, logger: logger) }
        var prompts = try PromptParsing.prompts(points: points, boxes: boxes, multimask: multimask)
        try Self.checkCoordinates(&prompts, width: img.width, height: img.height)

        let t0 = Timing.nowMs()
        // Only needed here when this process runs the model (in-process or embedded).
        let local = inProcess || embedding != nil
        let backend = (local || brokers == nil)
            ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config)) : nil
        let loadMs = Timing.nowMs() - t0
        StartupTrace.mark("segment: model loaded (\(Int(loadMs)) ms)")
        let maskSide = backend?.maskInputSide ?? 256
        var maskInputTensor: Tensor?
        if let maskInput {
            maskInputTensor = try InProcessSegmenter.readLogits(path: maskInput, side: maskSide)
            for i in prompts.indices { prompts[i].maskInput = maskInputTensor }
        }
        let request = PromptRequest(
            requestID: "prm-" + UUID().uuidString, imageID: "image-" + UUID().uuidString,
            points: prompts.first?.points.map { .init(x: $0.x, y: $0.y, label: Int32($0.label)) } ?? [],
            boxes: prompts.compactMap { $0.box.map { .init(x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1) } },
            maskInput: maskInputTensor.map { FloatTensor(shape: [1, UInt32(maskSide), UInt32(maskSide)], values: $0.data) },
            multimask: multimask, model: model, returnLowResLogits: saveLogits != nil)

        let maskResult: MaskResult
        var timings: [String: Double] = ["load": loadMs]
        if local, let backend {
            var saved: (any BackendEmbedding)?
            if let embedding {
                guard let data = FileManager.default.contents(atPath: embedding) else {
                    throw PipelineError.unreadableFile(path: embedding, reason: "no such file")
                }
                let emb = try EmbeddingCodec.decode([UInt8](data)).embedding
                guard emb.modelName == backend.modelName else {
                    throw PipelineError.badArgument("embedding \(embedding) is for \(emb.modelName), not \(backend.modelName)")
                }
                guard emb.originalSize.height == img.height, emb.originalSize.width == img.width else {
                    throw PipelineError.badArgument("embedding \(embedding) is for a \(emb.originalSize.width)x\(emb.originalSize.height) image; \(image) is \(img.width)x\(img.height)")
                }
                saved = emb
            }
            let r = try backend.segment(img, request: request, embedding: saved)
            maskResult = r.result
            if saved == nil { timings["encode"] = r.encodeMs }
            timings["decode"] = r.decodeMs
        } else {
            let t1 = Timing.nowMs()
            maskResult = try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: { BackendSet([backend!]) }) { client in
                try await SegflowClient(client: client, logger: logger)
                    .segment(image: .png(pngBytes), prompts: request, timeout: .seconds(timeout))
            }
            timings["round_trip"] = Timing.nowMs() - t1
            timings["decode"] = maskResult.timings.decodeMs
            if maskResult.timings.encodeMs > 0 { timings["encode"] = maskResult.timings.encodeMs }
        }
        // Stage names shared by every path (StageTimings): preprocess is reading and
        // checking the file here; encode and decode are the model runs (over Kafka the
        // services report them in the result's timings).
        timings["preprocess"] = preprocessMs
        let tPost = Timing.nowMs()
        var result = try SegmentationResult(maskResult: maskResult, prompts: prompts, width: img.width, height: img.height,
                                            timingsMs: timings)
        try InProcessSegmenter.write(result, image: img, out: out, overlay: overlay, json: nil)
        result.timingsMs["postprocess"] = Timing.nowMs() - tPost
        if let json { try result.jsonData().write(to: URL(fileURLWithPath: json)) }
        if let saveLogits, let first = result.prompts.first, maskResult.masks.indices.contains(first.best),
           let logits = maskResult.masks[first.best].lowResLogits?.values {
            let side = Int(Double(logits.count).squareRoot())
            try InProcessSegmenter.writeLogits(.init(shape: [1, side, logits.count / max(side, 1)], data: logits), path: saveLogits)
        }
        for (i, p) in result.prompts.enumerated() {
            let scores = p.masks.map { String(format: "iou %.3f stability %.3f area %d", $0.predictedIoU, $0.stabilityScore, $0.area) }
            print("prompt \(i): " + Self.maskSummary(scores, best: p.best))
        }
        let timingText = result.timingsMs.filter { !StageTimings.stages.contains($0.key) }.sorted { $0.key < $1.key }
            .map { String(format: "%@ %.0f ms", $0.key, $0.value) }
        let via = embedding != nil ? "saved embedding" : inProcess ? "in-process" : brokers == nil ? "embedded broker" : "brokers \(brokers!)"
        print(StageTimings.imageLine(index: 1, total: 1, name: image, width: img.width, height: img.height,
                                     summary: "\(result.prompts.count) prompt(s)", timings: StageTimings(result.timingsMs)))
        print("model \(model) via \(via): " + timingText.joined(separator: ", "))
        for (flag, path) in [("mask", out), ("overlay", overlay), ("json", json), ("logits", saveLogits)] {
            if let path { print("wrote \(flag): \(path)") }
        }
    }

    func runInContext(_ input: ImageInput, brokers: String?, logger: Logger) async throws {
        let run = InContextRun(query: input, promptImages: promptImages, promptMasks: promptMasks, model: model, checkpoint: checkpoint,
                               config: config ?? clipsegConfig, task: task, numLabels: numLabels,
                               returnRaw: saveLogits != nil || task == "depth" || task == "restore", refine: refineRequest,
                               route: Route(brokers: brokers, inProcess: inProcess, timeout: timeout, logger: logger))
        let outcome = try await run.run()
        let (w, h) = (input.image.width, input.image.height)
        let raw = outcome.result.rawOutput.map { Tensor(shape: $0.shape.map(Int.init), data: $0.values) }
        let image = outcome.image ?? raw.flatMap { SegGPTBackend.imageOutput(raw: $0, task: task ?? "", width: w, height: h) }
        // With --refine the SAM mask is the answer (--out, --overlay); the JSON keeps both.
        let masks = try outcome.refined.map { [$0.mask] } ?? outcome.result.masks.map { try WireMask.decode($0) }
        if let out {
            if let image { try PNG.write(image, toFile: out) }
            else if let classMap = outcome.classMap { try PNG.write(classMap, toFile: out) }
            else { try PNG.write(try BinaryMask.union(masks, width: w, height: h).grayImage(), toFile: out) }
        }
        if let overlay { try PNG.write(try Overlay.render(input.image, masks: masks), toFile: overlay) }
        if let json {
            let records: [[String: Any]] = try outcome.result.masks.map { m in
                let (mh, mw, counts) = try WireMask.rle(m)
                return ["label": Int(m.label), "area": Int(m.area), "bbox": [Int(m.bbox.x), Int(m.bbox.y), Int(m.bbox.w), Int(m.bbox.h)],
                        "segmentation": ["size": [mh, mw], "counts": counts]]
            }
            var doc: [String: Any] = ["model": model, "width": w, "height": h, "task": task ?? "", "num_labels": numLabels,
                                      "prompts": zip(promptImages, promptMasks).map { ["image": $0.0, "mask": $0.1] },
                                      "masks": records, "timings_ms": outcome.timingsMs]
            if let refined = outcome.refined {
                doc["sam"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(refined.result))
            }
            try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
        }
        if let saveLogits, let raw { try InProcessSegmenter.writeLogits(raw, path: saveLogits) }
        let area = masks.reduce(0) { $0 + $1.area }
        print("\(model) from \(promptImages.count) example(s): \(outcome.result.masks.count) mask(s), area \(outcome.result.masks.reduce(0) { $0 + Int($1.area) })"
              + (outcome.result.masks.contains { $0.label > 0 } ? ", labels \(outcome.result.masks.map { String($0.label) }.joined(separator: ","))" : "")
              + (outcome.refined.map { String(format: "; SAM refined: iou %.3f stability %.3f area %d", $0.predictedIoU ?? 0, $0.stabilityScore ?? 0, area) } ?? ""))
        let via = inProcess ? "in-process" : brokers == nil ? "embedded broker" : "brokers \(brokers!)"
        print("model \(model) via \(via): " + outcome.timingsMs.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f ms", $0.key, $0.value) }.joined(separator: ", "))
        for (flag, path) in [("mask", out), ("overlay", overlay), ("json", json), ("logits", saveLogits)] {
            if let path { print("wrote \(flag): \(path)") }
        }
    }

    /// "[0] iou … (best)  [1] iou …": each prompt's masks, the best one (highest predicted
    /// IoU: the one in --out and --overlay) marked in words.
    static func maskSummary(_ scores: [String], best: Int) -> String {
        scores.enumerated().map { "[\($0.offset)] \($0.element)" + ($0.offset == best && scores.count > 1 ? " (best)" : "") }
            .joined(separator: "  ")
    }

    /// Before any compute: a point outside the image is an error naming it; a box reaching
    /// past an edge is clipped to the image (with a note), one entirely outside is an error.
    static func checkCoordinates(_ prompts: inout [SamPrompt], width: Int, height: Int) throws {
        let (w, h) = (Float(width), Float(height))
        for i in prompts.indices {
            for p in prompts[i].points where p.x < 0 || p.y < 0 || p.x > w || p.y > h {
                throw ValidationError("point \(p.x),\(p.y) is outside the \(width)x\(height) image")
            }
            guard let b = prompts[i].box else { continue }
            let clipped = (x0: max(0, min(b.x0, w - 1)), y0: max(0, min(b.y0, h - 1)),
                           x1: max(0, min(b.x1, w - 1)), y1: max(0, min(b.y1, h - 1)))
            guard clipped.x1 > clipped.x0, clipped.y1 > clipped.y0, b.x1 > 0, b.y1 > 0, b.x0 < w, b.y0 < h else {
                throw ValidationError("box \(b.x0),\(b.y0),\(b.x1),\(b.y1) does not overlap the \(width)x\(height) image")
            }
            if clipped != b {
                FileHandle.standardError.write("segflow: box \(b.x0),\(b.y0),\(b.x1),\(b.y1) clipped to the \(width)x\(height) image: \(clipped.x0),\(clipped.y0),\(clipped.x1),\(clipped.y1)\n".data(using: .utf8)!)
                prompts[i].box = clipped
            }
        }
    }
}
