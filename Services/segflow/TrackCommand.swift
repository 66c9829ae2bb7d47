import ArgumentParser
import ServiceCommandLine
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import Tracking
import Client
import Embedded

struct TrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Track an object through video frames (PNG files in order) from a box (or points) on the first frame.",
        discussion: """
            --in-process runs the object tracker (README, Video): each frame's box is predicted \
            from the object's recent boxes, refined by matching the object's appearance in the \
            image embedding, and the decoded mask is kept only if it is consistent with the \
            object's remembered shape; otherwise the object is reported lost (empty mask) and \
            searched for on later frames. Over Kafka (default) the frames go out at once keyed \
            by the stream id, so the encoder works ahead while the decoder follows; each prompt \
            there is still the previous frame's low-res logits and mask box (the legacy rule). \
            Writes OUT_DIR/mask_NNNN.png (and overlay_NNNN.png with --overlays).
            """)

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: "Frames in order (PNG, JPEG or WebP).") var frames: [String]
    @Option(help: "Box on the first frame: x0,y0,x1,y1 (SAM-family models).") var box: String?
    @Option(name: .customLong("point"), help: "With --in-process: point on the first frame x,y[,label] (1 foreground, 0 background); repeatable, with or without --box.")
    var points: [String] = []
    @Option(help: "Model: \(ModelRegistry.models.filter { $0.promptKinds.contains(.tracking) || $0.promptKinds.contains(.examples) }.map(\.name).joined(separator: ", ")).")
    var model = ModelRegistry.defaultModel
    @Option(name: .customLong("prompt-image"), help: "In-context models: the example image (e.g. frame 0); repeatable with --prompt-mask.")
    var promptImages: [String] = []
    @Option(name: .customLong("prompt-mask"), help: "In-context models: the example's mask (nonzero = the object).") var promptMasks: [String] = []
    @Flag(help: "In-context models: add the previous frame and its result as a second prompt (frames then run one after another).")
    var addPrevious = false
    @Option(help: "Model config (a config JSON), for families that take one.") var config: String?
    @Option(help: "Seconds to wait for the answers over Kafka.") var timeout = 600
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Directory for the per-frame masks.") var outDir: String
    @Flag(help: "Also write overlay_NNNN.png per frame.") var overlays = false
    @Option(help: "Stream id (Kafka key of the frames; default: a new random id).") var streamId: String?
    @Option(help: "Kafka bootstrap servers of running services (default: $SEGFLOW_BROKERS, else an embedded broker).")
    var brokers: String?
    @Flag(help: "Run in this process without Kafka.") var inProcess = false
    @Option(help: "Result JSON to write: one record per frame (COCO RLE mask, XYWH box, area, SAM's predicted IoU).") var json: String?
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false

    func run() async throws {
        try precisionOptions.apply()
        guard !frames.isEmpty else { throw ValidationError("give at least one frame") }
        let streamId = self.streamId ?? "stream-" + UUID().uuidString
        try OutputPaths.prepare([json])
        if ModelRegistry.info(model)?.promptKinds.contains(.examples) == true {
            return try await trackInContext(streamID: streamId)
        }
        do { try ModelRegistry.require(.tracking, model: model) } catch { throw ValidationError("\(error)") }
        guard box != nil || (inProcess && !points.isEmpty) else {
            throw ValidationError("--model \(model) tracks from --box x0,y0,x1,y1 on the first frame" + (inProcess ? " (or --point x,y)" : ""))
        }
        guard points.isEmpty || inProcess else { throw ValidationError("--point is for --in-process tracking; over Kafka give --box") }
        let b = try box.map { try PromptParsing.box($0) }
        let firstPoints = try points.map { try PromptParsing.point($0) }
        var pngs: [[UInt8]] = [], images: [RGBImage] = []
        for f in frames {
            let input = try ImageInput.read(f)
            pngs.append(input.bytes)
            images.append(input.image)
        }
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        var masks: [BinaryMask] = [], scores: [Float] = [], statuses: [String] = []
        let reporter = ProgressReporter(total: frames.count, label: "track", quiet: quiet)
        defer { reporter.finish() }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        if inProcess {
            guard let sam = (try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint)) as? SAMBackend)?.sam else {
                throw ValidationError("model \(model) cannot track in-process")
            }
            // Object id 1; the tracker is fed each frame's embedding and decodes through Sam.
            let tracker = ObjectTracker()
            var state = StreamState()
            let prompt = TrackerPrompt(points: firstPoints, box: b.map { .init(x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1) })
            for (i, image) in images.enumerated() {
                let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
                let r = try tracker.step(state: &state, frameIndex: UInt64(i), embedding: emb, add: i == 0 ? [1: prompt] : [:]) {
                    try sam.predict(emb, $0)
                }[0]
                masks.append(r.mask); scores.append(r.score); statuses.append(r.status.rawValue)
                reporter.advance("frame \(i + 1)")
            }
        } else {
            var logger = Logger(label: "segflow")
            logger.logLevel = .warning
            let results = try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: {
                BackendSet([try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint))])
            }) { client in
                try await SegflowClient(client: client, logger: logger).track(
                    streamID: streamId, frames: pngs,
                    initial: PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: b!.x0, y0: b!.y0, x1: b!.x1, y1: b!.y1)]),
                    model: model, onFrame: { reporter.advance("frame \($0 + 1)") })
            }
            reporter.finish()
            for r in results {
                guard let m = r.masks.first else { continue }
                masks.append(try WireMask.decode(m))
                scores.append(m.predictedIoU)
            }
        }
        for (i, mask) in masks.enumerated() {
            let name = String(format: "%04d", i)
            try PNG.write(mask.grayImage(), toFile: "\(outDir)/mask_\(name).png")
            if overlays { try PNG.write(try Overlay.render(images[i], masks: [mask]), toFile: "\(outDir)/overlay_\(name).png") }
            print(String(format: "frame %d: iou %.3f area %d", i, scores[i], mask.area) + (i < statuses.count ? " \(statuses[i])" : ""))
        }
        try writeJSON(streamID: streamId, masks: masks, scores: scores)
        if masks.count < frames.count { print("object lost after frame \(masks.count - 1) (empty mask); stopped") }
        print("wrote \(masks.count) mask(s) to \(outDir)")
    }

    /// The SegGPT paper's video protocol: every frame is segmented in context with the
    /// given example (typically frame 0 and its mask), optionally plus the previous frame
    /// and its result. Frames are ImageRequests keyed by the stream id; without
    /// --add-previous they go out at once so the encoder works through them in order.
    func trackInContext(streamID: String) async throws {
        guard !promptImages.isEmpty, promptImages.count == promptMasks.count else {
            throw ValidationError("--model \(model) tracks from --prompt-image F0 --prompt-mask M0 (one mask per image)")
        }
        guard box == nil else { throw ValidationError("--box is for SAM-family models; \(model) takes --prompt-image/--prompt-mask") }
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let inputs = try frames.map { try ImageInput.read($0) }
        var logger = Logger(label: "segflow")
        logger.logLevel = .warning
        let base = InContextRun(query: inputs[0], promptImages: promptImages, promptMasks: promptMasks, model: model,
                                checkpoint: checkpoint, config: config, task: nil, numLabels: 0, returnRaw: false,
                                route: Route(brokers: brokers, inProcess: inProcess, timeout: timeout, logger: logger))
        let (wire, decoded) = try base.pairs()
        let reporter = ProgressReporter(total: frames.count, label: "track", quiet: quiet)
        defer { reporter.finish() }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        var masks: [BinaryMask] = []
        func previousPair(_ i: Int) throws -> PromptPair? {
            guard addPrevious, i > 0, let m = masks.last else { return nil }
            return PromptPair(promptID: "\(streamID)-frame-\(i - 1)", image: inputs[i - 1].bytes, mask: try m.pngData())
        }
        let backend = (inProcess || brokers == nil)
            ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config, parts: [.encoder, .decoder])) : nil
        if inProcess, let backend {
            for (i, input) in inputs.enumerated() {
                var examples = decoded
                if let prev = try previousPair(i) { examples.append(try InContextExample.decode(prev, maxPixels: ImageDecoder.defaultMaxPixels)) }
                let answer = try backend.segment(input.image, examples: examples, request: InContextRequest(promptIDs: examples.map { _ in "" }))
                masks.append(try BinaryMask.union(try answer.masks.map { try WireMask.decode($0) }, width: input.image.width, height: input.image.height))
                reporter.advance("frame \(i + 1)")
            }
        } else {
            let ids = wire.map(\.promptID)
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: { BackendSet([backend!]) }) { client in
                let sc = SegflowClient(client: client, logger: logger)
                try await sc.register(wire)
                func frame(_ i: Int) -> (image: ImageRequest.Image, imageID: String, frame: VideoFrame?) {
                    (.png(inputs[i].bytes), "\(streamID)-frame-\(i)", VideoFrame(streamID: streamID, frameIndex: UInt64(i)))
                }
                if addPrevious {
                    for i in inputs.indices {
                        var frameIDs = ids
                        if let prev = try previousPair(i) { try await sc.register([prev]); frameIDs.append(prev.promptID) }
                        let r = try await sc.segmentInContext([frame(i)], model: model, inContext: { _ in InContextRequest(promptIDs: frameIDs) },
                                                              timeout: .seconds(timeout))[0]
                        masks.append(try BinaryMask.union(try r.masks.map { try WireMask.decode($0) }, width: inputs[i].image.width, height: inputs[i].image.height))
                        reporter.advance("frame \(i + 1)")
                    }
                } else {
                    let results = try await sc.segmentInContext(inputs.indices.map(frame), model: model,
                                                                inContext: { _ in InContextRequest(promptIDs: ids) }, timeout: .seconds(timeout))
                    for (i, r) in results.enumerated() {
                        masks.append(try BinaryMask.union(try r.masks.map { try WireMask.decode($0) }, width: inputs[i].image.width, height: inputs[i].image.height))
                    }
                }
            }
        }
        reporter.finish()
        for (i, mask) in masks.enumerated() {
            let name = String(format: "%04d", i)
            try PNG.write(mask.grayImage(), toFile: "\(outDir)/mask_\(name).png")
            if overlays { try PNG.write(try Overlay.render(inputs[i].image, masks: [mask]), toFile: "\(outDir)/overlay_\(name).png") }
            print(String(format: "frame %d: area %d", i, mask.area))
        }
        try writeJSON(streamID: streamID, masks: masks, scores: nil)
        print("wrote \(masks.count) mask(s) to \(outDir)")
    }

    /// `--json`: the same records on every path (TrackResult).
    func writeJSON(streamID: String, masks: [BinaryMask], scores: [Float]?) throws {
        guard let json else { return }
        let records = masks.enumerated().map { i, m in
            TrackResult.Frame(index: i, file: frames[i], mask: m, predictedIoU: scores?[i])
        }
        let result = TrackResult(model: model, streamID: streamID, frames: records,
                                 lostAfterFrame: masks.count < frames.count ? masks.count - 1 : nil)
        try result.jsonData().write(to: URL(fileURLWithPath: json))
        print("wrote json: \(json)")
    }

}
