import Foundation
import Imaging

/// What `segflow track --json` writes, whichever path (in-process or Kafka) and model
/// family tracked: one record per frame, and in it one record per object with the mask as
/// COCO RLE and its box as COCO XYWH.
///
/// Version 2 (`"version": 2`) added `version`, `source`, and per frame `pts` and `objects`
/// (one entry per tracked object, with its id: the palette index of the per-frame indexed
/// PNGs). Version 1 readers keep working on single-object runs: a frame with exactly one
/// object still carries that object's `area`, `bbox`, `predicted_iou` and `segmentation`
/// at the frame level, as version 1 did; with several objects those frame-level keys are
/// absent and `objects` is the only place to look.
public struct TrackResult: Codable, Sendable, Equatable {
    public static let currentVersion = 2

    /// One object's mask on one frame.
    public struct Object: Codable, Sendable, Equatable {
        /// 1…255; the label of the object in the indexed PNGs.
        public var id: Int
        public var area: Int
        /// COCO XYWH of the mask (pycocotools' toBbox; [0, 0, 0, 0] for an empty mask).
        public var bbox: [Int]
        /// SAM's predicted IoU; nil for in-context models, which predict none.
        public var predictedIoU: Float?
        public var segmentation: SegmentationResult.RLE

        enum CodingKeys: String, CodingKey { case id, area, bbox, predictedIoU = "predicted_iou", segmentation }

        public init(id: Int, mask: BinaryMask, predictedIoU: Float?) {
            let rle = COCORLE(mask: mask)
            let b = rle.boundingBox  // pycocotools' toBbox, as in segment's records
            self.id = id
            self.area = mask.area
            self.bbox = mask.area == 0 ? [0, 0, 0, 0] : [b.x, b.y, b.width, b.height]
            self.predictedIoU = predictedIoU
            self.segmentation = .init(size: [mask.height, mask.width], counts: rle.compressedCounts)
        }
    }

    public struct Frame: Codable, Sendable, Equatable {
        public var index: Int
        /// The frame's image file, or for a video "clip.mp4#12".
        public var file: String
        /// Presentation time in seconds (video input); absent for image sequences.
        public var pts: Double?
        public var width: Int, height: Int
        public var objects: [Object]
        // Version 1's frame-level fields: present when the frame has exactly one object.
        public var area: Int?
        public var bbox: [Int]?
        public var predictedIoU: Float?
        public var segmentation: SegmentationResult.RLE?

        enum CodingKeys: String, CodingKey {
            case index, file, pts, width, height, objects, area, bbox, predictedIoU = "predicted_iou", segmentation
        }

        public init(index: Int, file: String, pts: Double? = nil, width: Int, height: Int, objects: [Object]) {
            self.index = index; self.file = file; self.pts = pts; self.width = width; self.height = height
            self.objects = objects
            if objects.count == 1, let o = objects.first {
                area = o.area; bbox = o.bbox; predictedIoU = o.predictedIoU; segmentation = o.segmentation
            }
        }

        /// A single-object frame (object id 1), as version 1 wrote it.
        public init(index: Int, file: String, mask: BinaryMask, predictedIoU: Float?) {
            self.init(index: index, file: file, width: mask.width, height: mask.height,
                      objects: [Object(id: 1, mask: mask, predictedIoU: predictedIoU)])
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(file, forKey: .file)
            try c.encodeIfPresent(pts, forKey: .pts)
            try c.encode(width, forKey: .width)
            try c.encode(height, forKey: .height)
            try c.encode(objects, forKey: .objects)
            try c.encodeIfPresent(area, forKey: .area)
            try c.encodeIfPresent(bbox, forKey: .bbox)
            try c.encodeIfPresent(predictedIoU, forKey: .predictedIoU)
            try c.encodeIfPresent(segmentation, forKey: .segmentation)
        }
    }

    /// Where the frames came from.
    public struct Source: Codable, Sendable, Equatable {
        /// "video" or "images".
        public var kind: String
        /// The video file (video input); absent for image sequences (each frame names its file).
        public var path: String?
        public var frameRate: Double?

        enum CodingKeys: String, CodingKey { case kind, path, frameRate = "frame_rate" }

        public init(kind: String, path: String? = nil, frameRate: Double? = nil) {
            self.kind = kind; self.path = path; self.frameRate = frameRate
        }
    }

    public var version: Int
    public var model: String
    public var streamID: String
    public var source: Source?
    public var frames: [Frame]
    /// Frames given but not segmented because the object was lost (an empty mask) before them.
    public var lostAfterFrame: Int?

    enum CodingKeys: String, CodingKey {
        case version, model, streamID = "stream_id", source, frames, lostAfterFrame = "lost_after_frame"
    }

    public init(model: String, streamID: String, source: Source? = nil, frames: [Frame], lostAfterFrame: Int?) {
        self.version = Self.currentVersion
        self.model = model; self.streamID = streamID; self.source = source; self.frames = frames; self.lostAfterFrame = lostAfterFrame
    }

    /// Reads version 2 and version 1 documents (a version 1 frame becomes one object, id 1).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 1
        guard version <= Self.currentVersion else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: c, debugDescription: "track JSON version \(version) is newer than this reader (\(Self.currentVersion))")
        }
        model = try c.decode(String.self, forKey: .model)
        streamID = try c.decode(String.self, forKey: .streamID)
        source = try c.decodeIfPresent(Source.self, forKey: .source)
        lostAfterFrame = try c.decodeIfPresent(Int.self, forKey: .lostAfterFrame)
        var frames = try c.decode([Frame].self, forKey: .frames)
        if version == 1 {
            for i in frames.indices where frames[i].objects.isEmpty {
                guard let seg = frames[i].segmentation else { continue }
                frames[i].objects = [Object(id: 1, area: frames[i].area ?? 0, bbox: frames[i].bbox ?? [0, 0, 0, 0],
                                            predictedIoU: frames[i].predictedIoU, segmentation: seg)]
            }
        }
        self.frames = frames
    }

    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}

extension TrackResult.Object {
    init(id: Int, area: Int, bbox: [Int], predictedIoU: Float?, segmentation: SegmentationResult.RLE) {
        self.id = id; self.area = area; self.bbox = bbox; self.predictedIoU = predictedIoU; self.segmentation = segmentation
    }
}

extension TrackResult.Frame {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        file = try c.decode(String.self, forKey: .file)
        pts = try c.decodeIfPresent(Double.self, forKey: .pts)
        width = try c.decode(Int.self, forKey: .width)
        height = try c.decode(Int.self, forKey: .height)
        objects = try c.decodeIfPresent([TrackResult.Object].self, forKey: .objects) ?? []
        area = try c.decodeIfPresent(Int.self, forKey: .area)
        bbox = try c.decodeIfPresent([Int].self, forKey: .bbox)
        predictedIoU = try c.decodeIfPresent(Float.self, forKey: .predictedIoU)
        segmentation = try c.decodeIfPresent(SegmentationResult.RLE.self, forKey: .segmentation)
    }
}
