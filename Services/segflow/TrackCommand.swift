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
        abstract: "Track objects through a video file or a sequence of frames from boxes on the first frame.",
        discussion: """
            INPUT is one video file (MP4/H.264, MKV, WebM, AVI, MOV, … — whatever Debian's \
            libavformat and libavcodec read), a directory of frame images (PNG, JPEG, WebP; \
            natural order: frame2 before frame10; other files are skipped with a note), a \
            glob ("frames/*.jpg", natural order) or image files in the order given. Files are \
            told apart by content: a single file that is not an image is read as a video. \
            Frames are decoded one at a time; a video is never held in memory.

            SAM-family models run the object tracker (README, Video tracking): each object's box \
            is predicted from its recent boxes and refined by matching its appearance in the \
            frame's embedding; a decoded mask is kept only if it is consistent with the object's \
            remembered shape, else the object is reported lost (empty mask) and searched for on \
            later frames. --box is repeatable (objects 1, 2, …); --correct FRAME:ID:BOX \
            re-anchors an object on a later frame. SAM 2 (--model sam2.1-hiera-*, with the \
            official sam2.1_hiera_*.pt or a transformers Sam2VideoModel directory) runs its own \
            memory attention instead: each object's memory bank (prompted frames, the last 6 \
            frames' spatial memories, object pointers) conditions the next frame; a --correct \
            makes that frame a conditioning frame. Over Kafka (default) the frames go out as a \
            tracked stream keyed by the stream id, up to --send-ahead frames ahead of the \
            answers; the prompt-decoder that owns the stream runs the same tracker and \
            snapshots its state, so a decoder failover continues the stream (README, Streams).

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
    @Option(name: .customLong("box"), help: "Box on the first frame: x0,y0,x1,y1 (SAM-family models); repeatable: one object per box, ids 1, 2, … (the palette indices).")
    var boxes: [String] = []
    @Option(name: .customLong("point"), help: "Point of object 1 on the first frame: x,y[,label] (1 foreground, 0 background); repeatable. LiteMedSAM needs a box.")
    var points: [String] = []
    @Option(name: .customLong("correct"), help: "A correction: FRAME:ID:x0,y0,x1,y1 re-anchors object ID with a box on frame FRAME (0-based), or starts it there if it is new; repeatable.")
    var corrects: [String] = []
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
    /// Object 1… from the boxes (object 1 also takes the points).
    func initialObjects(points: [SamPrompt.Point]) throws -> [ObjectPrompt] {
        guard boxes.count <= StreamTrack.maxObjects else { throw ValidationError("at most \(StreamTrack.maxObjects) objects (--box) per stream") }
        var objects = try boxes.enumerated().map { i, b in
            let box = try PromptParsing.box(b)
            return ObjectPrompt(objectID: UInt32(i + 1), box: .init(x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1))
        }
        let wirePoints = points.map { PromptRequest.Point(x: $0.x, y: $0.y, label: Int32($0.label)) }
        if objects.isEmpty { objects = [ObjectPrompt(objectID: 1, points: wirePoints)] } else { objects[0].points = wirePoints }
        return objects
    }

    /// `--correct FRAME:ID:x0,y0,x1,y1`, by frame.
    func parsedCorrections() throws -> [Int: [ObjectPrompt]] {
        var out: [Int: [ObjectPrompt]] = [:]
        for c in corrects {
            let parts = c.split(separator: ":", maxSplits: 2).map(String.init)
            guard parts.count == 3, let frame = Int(parts[0]), frame >= 0, let id = UInt32(parts[1]), id >= 1, id <= UInt32(StreamTrack.maxObjects) else {
                throw ValidationError("--correct '\(c)': expected FRAME:ID:x0,y0,x1,y1 with FRAME ≥ 0 and ID in 1…\(StreamTrack.maxObjects)")
            }
            let b = try PromptParsing.box(parts[2])
            if frame == 0 { throw ValidationError("--correct '\(c)': frame 0 is prompted by --box/--point") }
            guard out[frame]?.contains(where: { $0.objectID == id }) != true else { throw ValidationError("--correct '\(c)': object \(id) corrected twice on frame \(frame)") }
            out[frame, default: []].append(ObjectPrompt(objectID: id, box: .init(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1)))
        }
        return out
    }

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
        let firstPoints = try points.map { try PromptParsing.point($0) }
        guard !boxes.isEmpty || !firstPoints.isEmpty else {
            throw ValidationError("--model \(model) tracks from --box x0,y0,x1,y1 (repeatable: one object per box) or --point x,y on the first frame")
        }
        let initial = try initialObjects(points: firstPoints)
        let corrections = try parsedCorrections()
        func prompts(_ i: Int) -> [ObjectPrompt] { (i == 0 ? initial : []) + (corrections[i] ?? []) }
        let source = try openSource()
        let outputs = try makeOutputs(source, streamID: streamId)
        let reporter = ProgressReporter(total: source.estimatedCount ?? 0, label: "track", quiet: quiet)
        defer { reporter.finish() }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        func emit(_ frame: SourceFrame, masks: [MaskResult.Mask]) throws {
            var objects: [TrackedObject] = []
            var line = "frame \(frame.index):"
            for m in masks {
                let mask = try WireMask.decode(m)
                objects.append(TrackedObject(id: Int(m.objectID), mask: mask, score: m.predictedIoU))
                line += String(format: " object %d %@ iou %.3f area %d;", m.objectID, "\(m.trackStatus)", m.predictedIoU, mask.area)
            }
            try outputs.add(frame, objects: objects)
            reporter.finish()
            print(String(line.dropLast()))
            reporter.advance("frame \(frame.index + 1)")
        }
        // One tracker on both paths: the backend's StreamTracker, in this process or in the
        // prompt-decoder that owns the stream (README, Streams).
        if inProcess {
            var stream: InProcessStream
            do { stream = try InProcessStream(backend: try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config))) } catch let e as ServingError {
                throw ValidationError(e.message)
            }
            var i = 0
            while let frame = try source.next() {
                try emit(frame, masks: try stream.frame(frame.image, index: UInt64(i), objects: prompts(i)))
                i += 1
            }
        } else {
            var logger = Logger(label: "segflow")
            logger.logLevel = .warning
            // Frames in flight (sent, not yet answered): at most --send-ahead of them.
            var pending: [Int: SourceFrame] = [:]
            var sent = 0
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: {
                BackendSet([try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config))])
            }) { client in
                try await SegflowClient(client: client, logger: logger).trackStream(
                    streamID: streamId, model: model, window: sendAhead, timeout: .seconds(timeout),
                    next: {
                        guard let f = try source.next() else { return nil }
                        pending[sent] = f
                        defer { sent += 1 }
                        return StreamFrame(image: .png(try f.fileBytes ?? PNG.encode(f.image)), objects: prompts(sent))
                    },
                    onResult: { i, r in
                        guard let frame = pending.removeValue(forKey: i) else { return }
                        try emit(frame, masks: r.masks)
                    })
            }
        }
        reporter.finish()
        for w in source.decodeWarnings { FileHandle.standardError.write(Data((w + "\n").utf8)) }
        let tracked = outputs.records.count
        guard tracked > 0 else { throw PipelineError.unreadableFile(path: frames.joined(separator: " "), reason: "no frame could be decoded") }
        // Objects may be lost and re-acquired; the stream always runs to its last frame.
        try outputs.finish(lostAfterFrame: nil)
        if let json { print("wrote json: \(json)") }
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
        guard boxes.isEmpty, points.isEmpty, corrects.isEmpty else { throw ValidationError("--box, --point and --correct are for SAM-family models; \(model) takes --prompt-image/--prompt-mask") }
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
