import Foundation
import Imaging
import Pipeline

/// One tracked object on one frame.
public struct TrackedObject: Sendable {
    /// 1…255: the object's label in the indexed PNGs and its id in the JSON.
    public var id: Int
    public var mask: BinaryMask
    /// SAM's predicted IoU; nil for in-context models.
    public var score: Float?

    public init(id: Int, mask: BinaryMask, score: Float?) { self.id = id; self.mask = mask; self.score = score }
}

/// Everything `segflow track` writes, frame by frame as results arrive (nothing
/// image-sized is kept; the JSON records are a few hundred bytes per object and frame):
/// - `maskDir`: `mask_NNNN.png` per frame (white = the union of the objects, as before
///   multi-object tracking), and `overlay_NNNN.png` with `overlays`;
/// - `paletteDir`: an indexed-colour PNG per frame in the DAVIS/YouTube-VOS layout (index 0
///   background, index k object k, DAVISPalette), named by the frame's stem
///   (`00012.png` for video frame 12, `frame7.png` for input `frame7.jpg`);
/// - `overlayVideo`: the frames with the masks blended in (Overlay's colours by object
///   id), encoded by VideoWriter at the source's frame rate;
/// - `json`: TrackResult, written at `finish`.
public final class TrackOutputs {
    public struct Options: Sendable {
        public var maskDir: String?
        public var overlays: Bool
        public var paletteDir: String?
        public var overlayVideo: String?
        public var video: VideoWriter.Options
        public var json: String?

        public init(maskDir: String? = nil, overlays: Bool = false, paletteDir: String? = nil, overlayVideo: String? = nil,
                    video: VideoWriter.Options = VideoWriter.Options(), json: String? = nil) {
            self.maskDir = maskDir; self.overlays = overlays; self.paletteDir = paletteDir
            self.overlayVideo = overlayVideo; self.video = video; self.json = json
        }

        public var isEmpty: Bool { maskDir == nil && paletteDir == nil && overlayVideo == nil && json == nil }
    }

    public let options: Options
    public let model: String
    public let streamID: String
    public let source: TrackResult.Source?
    public private(set) var records: [TrackResult.Frame] = []
    private var writer: VideoWriter?

    /// Creates the output directories (and checks the JSON's directory) before any work.
    public init(options: Options, model: String, streamID: String, source: TrackResult.Source?) throws {
        self.options = options; self.model = model; self.streamID = streamID; self.source = source
        for dir in [options.maskDir, options.paletteDir].compactMap({ $0 }) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try OutputPaths.prepare([options.json, options.overlayVideo])
    }

    /// Writes frame `frame`'s outputs; `objects` in any order (ids must be distinct).
    public func add(_ frame: SourceFrame, objects: [TrackedObject]) throws {
        let image = frame.image
        let sorted = objects.sorted { $0.id < $1.id }
        let masks = sorted.map(\.mask)
        if let dir = options.maskDir {
            let name = String(format: "%04d", frame.index)
            let union = try BinaryMask.union(masks, width: image.width, height: image.height)
            try PNG.write(union.grayImage(), toFile: "\(dir)/mask_\(name).png")
            if options.overlays { try PNG.write(try overlay(image, sorted), toFile: "\(dir)/overlay_\(name).png") }
        }
        if let dir = options.paletteDir {
            let map = try LabelMap(width: image.width, height: image.height, objects: sorted.map { ($0.id, $0.mask) })
            try PNG.writeIndexed(map, toFile: "\(dir)/\(frame.stem).png")
        }
        if let path = options.overlayVideo {
            if writer == nil { writer = try VideoWriter(path: path, width: image.width, height: image.height, options: options.video) }
            try writer!.write(try overlay(image, sorted))
        }
        records.append(TrackResult.Frame(index: frame.index, file: frame.name, pts: frame.pts, width: image.width, height: image.height,
                                         objects: sorted.map { TrackResult.Object(id: $0.id, mask: $0.mask, predictedIoU: $0.score) }))
    }

    func overlay(_ image: RGBImage, _ objects: [TrackedObject]) throws -> RGBImage {
        let colors = objects.map { Overlay.palette[($0.id - 1) % Overlay.palette.count] }
        return try Overlay.render(image, masks: objects.map(\.mask), options: Overlay.Options(colors: colors.isEmpty ? Overlay.palette : colors))
    }

    /// Closes the overlay video and writes the JSON. `lostAfterFrame`: the last frame
    /// segmented when tracking stopped early.
    @discardableResult
    public func finish(lostAfterFrame: Int?) throws -> TrackResult {
        if let writer { try writer.finish() }
        writer = nil
        let result = TrackResult(model: model, streamID: streamID, source: source, frames: records, lostAfterFrame: lostAfterFrame)
        if let json = options.json { try result.jsonData().write(to: URL(fileURLWithPath: json)) }
        return result
    }

    /// The encoder of the overlay video, once its first frame is written ("libx264", …).
    public var overlayEncoder: String? { writer?.encoderName }
}
