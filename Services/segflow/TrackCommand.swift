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
import Video

struct TrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Track an object through a video file or a sequence of frames from a box on the first frame.",
        discussion: """
            INPUT is one video file (MP4/H.264, MKV, WebM, AVI, MOV, … — whatever Debian's \
            libavformat and libavcodec read), a directory of frame images (PNG, JPEG, WebP; \
            natural order: frame2 before frame10; other files are skipped with a note), a \
            glob ("frames/*.jpg", natural order) or image files in the order given. Files are \
            told apart by content: a single file that is not an image is read as a video. \
            Frames are decoded one at a time; a video is never held in memory.

            Each frame after the first is prompted with the previous frame's low-res mask logits \
            (SAM's mask input) and the previous mask's bounding box. Over Kafka (default) the \
            frames go out keyed by the stream id, up to --send-ahead frames ahead of the answers, \
            so the encoder works ahead while the decoder follows.

            Outputs (at least one): --out-dir DIR writes DIR/mask_NNNN.png (and overlay_NNNN.png \
            with --overlays); --palette-dir DIR writes one indexed-colour PNG per frame in the \
            DAVIS/YouTube-VOS layout (index 0 background, index k object k, the DAVIS palette; \
            named 00000.png… for a video, after the frame's file name for images); --json F \
            writes per-frame, per-object COCO RLE (version 2; see the README); --overlay-video \
            F.mp4 writes the frames with the masks blended in (H.264 via libx264, else MPEG-4; \
            the container from the extension). Progress goes to stderr when it is a terminal.

            Corrupt video data stops the run with an error naming the frame; \
            --corrupt-frames skip drops bad packets with a warning instead.
            """)

    @OptionGroup var precisionOptions: PrecisionOptions
    @Argument(help: "A video file, a directory of frames, a glob or image files in order.") var frames: [String]
    @Option(help: "Box on the first frame: x0,y0,x1,y1 (SAM-family models).") var box: String?
    @Option(help: "Model: \(ModelRegistry.models.filter { $0.promptKinds.contains(.tracking) || $0.promptKinds.contains(.examples) }.map(\.name).joined(separator: ", ")).")
    var model = ModelRegistry.defaultModel
    @Option(name: .customLong("prompt-image"), help: "In-context models: the example image (e.g. frame 0); repeatable with --prompt-mask.")
    var promptImages: [String] = []
    @Option(name: .customLong("prompt-mask"), help: "In-context models: the example's mask (nonzero = the object).") var promptMasks: [String] = []
    @Flag(help: "In-context models: add the previous frame and its result as a second prompt (frames then run one after another).")
    var addPrevious = false
    @Option(help: "Model config (a config JSON), for families that take one.") var config: String?
    @Option(help: "Seconds to wait for each answer over Kafka.") var timeout = 600
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Directory for mask_NNNN.png per frame (white = the object).") var outDir: String?
    @Flag(help: "Also write overlay_NNNN.png per frame into --out-dir.") var overlays = false
    @Option(help: "Directory for indexed-palette PNGs per frame (DAVIS/YouTube-VOS layout: index k = object k).")
    var paletteDir: String?
    @Option(help: "Overlay video to write (e.g. out.mp4; the container from the extension).") var overlayVideo: String?
    @Option(help: "Frame rate of --overlay-video for image inputs (a video keeps its own).") var fps: Double = 25
    @Option(help: "Result JSON to write: per frame and object, COCO RLE mask, XYWH box, area, SAM's predicted IoU.") var json: String?
    @Option(help: "Stream id (Kafka key of the frames; default: a new random id).") var streamId: String?
    @Option(help: "Kafka bootstrap servers of running services (default: $SEGFLOW_BROKERS, else an embedded broker).")
    var brokers: String?
    @Flag(help: "Run in this process without Kafka.") var inProcess = false
    @Option(help: "Over Kafka: frames sent ahead of the answers (the encoder works ahead; the client holds this many).")
    var sendAhead = 8
    @Option(help: "Refuse inputs with more frames than this (a guard against endless or mislabelled streams).")
    var maxFrames = VideoReader.defaultMaxFrames
    @Option(help: "Corrupt video data: fail (stop with an error naming the frame) or skip (drop the packet, warn).")
    var corruptFrames: VideoReader.CorruptDataPolicy = .fail
    @Option(help: "Video decoder/encoder threads.") var videoThreads = 1
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false

    func validate() throws {
        guard outDir != nil || paletteDir != nil || json != nil || overlayVideo != nil else {
            throw ValidationError("give at least one output: --out-dir, --palette-dir, --json or --overlay-video")
        }
        if overlays && outDir == nil { throw ValidationError("--overlays writes overlay_NNNN.png into --out-dir; give --out-dir") }
        guard maxFrames > 0 else { throw ValidationError("--max-frames must be positive") }
        guard sendAhead > 0 else { throw ValidationError("--send-ahead must be positive") }
        guard (1...16).contains(videoThreads) else { throw ValidationError("--video-threads must be 1…16") }
        guard fps.isFinite, fps > 0, fps <= 1000 else { throw ValidationError("--fps must be in (0, 1000]") }
    }

    /// Opening errors (no such file, not a video, unsupported codec, …) are usage errors.
    func openSource() throws -> FrameSource {
        let source: FrameSource
        do {
            source = try FrameSource(frames, videoOptions: VideoReader.Options(threads: videoThreads, maxFrames: maxFrames,
                                                                               corruptData: corruptFrames),
                                 // Image frames of different sizes are allowed (as before); an
                                 // overlay video needs one size (VideoWriter names the frame).
                                 requireOneSize: false)
        } catch let e as VideoError { throw ValidationError(e.description) }
        for note in source.notes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        return source
    }

    func makeOutputs(_ source: FrameSource, streamID: String) throws -> TrackOutputs {
        let kind: TrackResult.Source
        switch source.kind {
        case .video: kind = TrackResult.Source(kind: "video", path: frames[0], frameRate: source.frameRate)
        case .images: kind = TrackResult.Source(kind: "images")
        }
        let video = VideoWriter.Options(frameRate: source.frameRate ?? fps, threads: videoThreads)
        return try TrackOutputs(options: .init(maskDir: outDir, overlays: overlays, paletteDir: paletteDir, overlayVideo: overlayVideo,
                                               video: video, json: json),
                                model: model, streamID: streamID, source: kind)
    }

    func run() async throws {
        try precisionOptions.apply()
        let streamId = self.streamId ?? "stream-" + UUID().uuidString
        if ModelRegistry.info(model)?.promptKinds.contains(.examples) == true {
            return try await trackInContext(streamID: streamId)
        }
        do { try ModelRegistry.require(.tracking, model: model) } catch { throw ValidationError("\(error)") }
        guard let box else { throw ValidationError("--model \(model) tracks from --box x0,y0,x1,y1 on the first frame") }
        let b = try PromptParsing.box(box)
        let source = try openSource()
        let outputs = try makeOutputs(source, streamID: streamId)
        let reporter = ProgressReporter(total: source.estimatedCount ?? 0, label: "track", quiet: quiet)
        defer { reporter.finish() }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        var lastMask: BinaryMask?
        func emit(_ frame: SourceFrame, mask: BinaryMask, score: Float) throws {
            try outputs.add(frame, objects: [TrackedObject(id: 1, mask: mask, score: score)])
            reporter.finish()
            print(String(format: "frame %d: iou %.3f area %d", frame.index, score, mask.area))
            reporter.advance("frame \(frame.index + 1)")
            lastMask = mask
        }
        if inProcess {
            guard let sam = (try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint)) as? SAMBackend)?.sam else {
                throw ValidationError("model \(model) cannot track in-process")
            }
            try VideoTracker.track(sam, initial: SamPrompt(box: b), next: { try source.next() }, image: \.image,
                                   onFrame: { frame, r in try emit(frame, mask: r.mask, score: r.predictedIoU) })
        } else {
            var logger = Logger(label: "segflow")
            logger.logLevel = .warning
            // Frames in flight (sent, not yet answered): at most --send-ahead of them.
            var pending: [Int: SourceFrame] = [:]
            var sent = 0
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: {
                BackendSet([try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint))])
            }) { client in
                _ = try await SegflowClient(client: client, logger: logger).track(
                    streamID: streamId,
                    nextFrame: { () -> [UInt8]? in
                        guard let f = try source.next() else { return nil }
                        pending[sent] = f
                        sent += 1
                        return try f.fileBytes ?? PNG.encode(f.image)
                    },
                    initial: PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1)]),
                    model: model, sendAhead: sendAhead, timeout: .seconds(timeout),
                    onResult: { i, r in
                        guard let frame = pending.removeValue(forKey: i), let m = r.masks.first else { return }
                        try emit(frame, mask: try WireMask.decode(m), score: m.predictedIoU)
                    })
            }
        }
        reporter.finish()
        for w in source.decodeWarnings { FileHandle.standardError.write(Data((w + "\n").utf8)) }
        let tracked = outputs.records.count
        guard tracked > 0 else { throw PipelineError.unreadableFile(path: frames.joined(separator: " "), reason: "no frame could be decoded") }
        // Tracking stops at an empty mask; it stopped early if a frame follows (one more is
        // decoded to tell, as a video's frame count may be unknown).
        var stoppedEarly = false
        if lastMask.map({ $0.area == 0 }) == true { stoppedEarly = try source.next() != nil }
        try outputs.finish(lostAfterFrame: stoppedEarly ? tracked - 1 : nil)
        if let json { print("wrote json: \(json)") }
        if stoppedEarly { print("object lost after frame \(tracked - 1) (empty mask); stopped") }
        try printSummary(tracked: tracked, outputs: outputs)
    }

    func printSummary(tracked: Int, outputs: TrackOutputs) throws {
        if let outDir { print("wrote \(tracked) mask(s) to \(outDir)") }
        if let paletteDir { print("wrote \(tracked) palette PNG(s) to \(paletteDir)") }
        if let overlayVideo { print("wrote overlay video: \(overlayVideo) (\(tracked) frames)") }
    }

    /// The SegGPT paper's video protocol: every frame is segmented in context with the
    /// given example (typically frame 0 and its mask), optionally plus the previous frame
    /// and its result. Frames are ImageRequests keyed by the stream id; without
    /// --add-previous they go out --send-ahead at a time so the encoder works through them in order.
    func trackInContext(streamID: String) async throws {
        guard !promptImages.isEmpty, promptImages.count == promptMasks.count else {
            throw ValidationError("--model \(model) tracks from --prompt-image F0 --prompt-mask M0 (one mask per image)")
        }
        guard box == nil else { throw ValidationError("--box is for SAM-family models; \(model) takes --prompt-image/--prompt-mask") }
        let source = try openSource()
        let outputs = try makeOutputs(source, streamID: streamID)
        var logger = Logger(label: "segflow")
        logger.logLevel = .warning
        // The examples do not depend on the query; the placeholder is never segmented.
        let placeholder = ImageInput(path: "", bytes: [], image: try RGBImage(width: 1, height: 1), format: .png)
        let base = InContextRun(query: placeholder, promptImages: promptImages, promptMasks: promptMasks, model: model,
                                checkpoint: checkpoint, config: config, task: nil, numLabels: 0, returnRaw: false,
                                route: Route(brokers: brokers, inProcess: inProcess, timeout: timeout, logger: logger))
        let (wire, decoded) = try base.pairs()
        let reporter = ProgressReporter(total: source.estimatedCount ?? 0, label: "track", quiet: quiet)
        defer { reporter.finish() }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        var previous: (bytes: [UInt8], mask: BinaryMask)?
        func bytes(_ f: SourceFrame) throws -> [UInt8] { try f.fileBytes ?? PNG.encode(f.image) }
        func previousPair(_ i: Int) throws -> PromptPair? {
            guard addPrevious, i > 0, let previous else { return nil }
            return PromptPair(promptID: "\(streamID)-frame-\(i - 1)", image: previous.bytes, mask: try previous.mask.pngData())
        }
        func emit(_ frame: SourceFrame, _ masks: [BinaryMask]) throws {
            let mask = try BinaryMask.union(masks, width: frame.image.width, height: frame.image.height)
            try outputs.add(frame, objects: [TrackedObject(id: 1, mask: mask, score: nil)])
            if addPrevious { previous = (try bytes(frame), mask) }
            reporter.finish()
            print(String(format: "frame %d: area %d", frame.index, mask.area))
            reporter.advance("frame \(frame.index + 1)")
        }
        let backend = (inProcess || brokers == nil)
            ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config, parts: [.encoder, .decoder])) : nil
        if inProcess, let backend {
            while let frame = try source.next() {
                var examples = decoded
                if let prev = try previousPair(frame.index) { examples.append(try InContextExample.decode(prev, maxPixels: ImageDecoder.defaultMaxPixels)) }
                let answer = try backend.segment(frame.image, examples: examples, request: InContextRequest(promptIDs: examples.map { _ in "" }))
                try emit(frame, try answer.masks.map { try WireMask.decode($0) })
            }
        } else {
            let ids = wire.map(\.promptID)
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: { BackendSet([backend!]) }) { client in
                let sc = SegflowClient(client: client, logger: logger)
                try await sc.register(wire)
                func request(_ f: SourceFrame) throws -> (image: ImageRequest.Image, imageID: String, frame: Messaging.VideoFrame?) {
                    (.png(try bytes(f)), "\(streamID)-frame-\(f.index)", Messaging.VideoFrame(streamID: streamID, frameIndex: UInt64(f.index)))
                }
                if addPrevious {
                    while let frame = try source.next() {
                        var frameIDs = ids
                        if let prev = try previousPair(frame.index) { try await sc.register([prev]); frameIDs.append(prev.promptID) }
                        let r = try await sc.segmentInContext([try request(frame)], model: model, inContext: { _ in InContextRequest(promptIDs: frameIDs) },
                                                              timeout: .seconds(timeout))[0]
                        try emit(frame, try r.masks.map { try WireMask.decode($0) })
                    }
                } else {
                    // Batches of --send-ahead frames: the encoder works through each batch in order.
                    while true {
                        var batch: [SourceFrame] = []
                        while batch.count < sendAhead, let f = try source.next() { batch.append(f) }
                        guard !batch.isEmpty else { break }
                        let results = try await sc.segmentInContext(try batch.map(request), model: model,
                                                                    inContext: { _ in InContextRequest(promptIDs: ids) }, timeout: .seconds(timeout))
                        for (f, r) in zip(batch, results) { try emit(f, try r.masks.map { try WireMask.decode($0) }) }
                    }
                }
            }
        }
        reporter.finish()
        for w in source.decodeWarnings { FileHandle.standardError.write(Data((w + "\n").utf8)) }
        guard !outputs.records.isEmpty else { throw PipelineError.unreadableFile(path: frames.joined(separator: " "), reason: "no frame could be decoded") }
        try outputs.finish(lostAfterFrame: nil)
        if let json { print("wrote json: \(json)") }
        try printSummary(tracked: outputs.records.count, outputs: outputs)
    }
}

extension VideoReader.CorruptDataPolicy: ExpressibleByArgument {}
