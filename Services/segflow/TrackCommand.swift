import ArgumentParser
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import Client
import Embedded

struct TrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Track an object through video frames (PNG files in order) from a box on the first frame.",
        discussion: """
            Each frame after the first is prompted with the previous frame's low-res mask logits \
            (SAM's mask input) and the previous mask's bounding box. Over Kafka (default) the \
            frames go out at once keyed by the stream id, so the encoder works ahead while the \
            decoder follows. Writes OUT_DIR/mask_NNNN.png (and overlay_NNNN.png with --overlays).
            """)

    @Argument(help: "Frames in order (PNG, JPEG or WebP).") var frames: [String]
    @Option(help: "Box on the first frame: x0,y0,x1,y1.") var box: String
    @Option(help: "Model: \(ModelRegistry.models.filter { $0.promptKinds.contains(.tracking) }.map(\.name).joined(separator: ", ")).")
    var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(help: "Directory for the per-frame masks.") var outDir: String
    @Flag(help: "Also write overlay_NNNN.png per frame.") var overlays = false
    @Option(help: "Stream id (Kafka key of the frames; default: a new random id).") var streamId: String?
    @Option(help: "Kafka bootstrap servers of running services (default: $SEGFLOW_BROKERS, else an embedded broker).")
    var brokers: String?
    @Flag(help: "Run in this process without Kafka.") var inProcess = false

    func run() async throws {
        guard !frames.isEmpty else { throw ValidationError("give at least one frame") }
        do { try ModelRegistry.require(.tracking, model: model) } catch { throw ValidationError("\(error)") }
        let streamId = self.streamId ?? "stream-" + UUID().uuidString
        let b = try PromptParsing.box(box)
        var pngs: [[UInt8]] = [], images: [RGBImage] = []
        for f in frames {
            let input = try ImageInput.read(f)
            pngs.append(input.bytes)
            images.append(input.image)
        }
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        var masks: [BinaryMask] = [], scores: [Float] = []
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        if inProcess {
            guard let sam = (try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint)) as? SAMBackend)?.sam else {
                throw ValidationError("model \(model) cannot track in-process")
            }
            for f in try VideoTracker.track(sam, frames: images, initial: SamPrompt(box: b)) { masks.append(f.mask); scores.append(f.predictedIoU) }
        } else {
            var logger = Logger(label: "segflow")
            logger.logLevel = .warning
            let results = try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: {
                BackendSet([try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint))])
            }) { client in
                try await SegflowClient(client: client, logger: logger).track(
                    streamID: streamId, frames: pngs,
                    initial: PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1)]),
                    model: model)
            }
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
            print(String(format: "frame %d: iou %.3f area %d", i, scores[i], mask.area))
        }
        if masks.count < frames.count { print("object lost after frame \(masks.count - 1) (empty mask); stopped") }
        print("wrote \(masks.count) mask(s) to \(outDir)")
    }
}
