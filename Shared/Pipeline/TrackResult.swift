import Foundation
import Imaging

/// What `segflow track --json` writes, whichever path (in-process or Kafka) and model
/// family tracked: one record per frame with the mask as COCO RLE and its box as COCO XYWH.
public struct TrackResult: Codable, Sendable, Equatable {
    public struct Frame: Codable, Sendable, Equatable {
        public var index: Int
        public var file: String
        public var width: Int, height: Int
        public var area: Int
        /// COCO XYWH of the mask (pycocotools' toBbox; [0, 0, 0, 0] for an empty mask).
        public var bbox: [Int]
        /// SAM's predicted IoU; nil for in-context models, which predict none.
        public var predictedIoU: Float?
        public var segmentation: SegmentationResult.RLE

        enum CodingKeys: String, CodingKey {
            case index, file, width, height, area, bbox, predictedIoU = "predicted_iou", segmentation
        }

        public init(index: Int, file: String, mask: BinaryMask, predictedIoU: Float?) {
            let rle = COCORLE(mask: mask)
            let b = rle.boundingBox  // pycocotools' toBbox, as in segment's records
            self.index = index; self.file = file; self.width = mask.width; self.height = mask.height
            self.area = mask.area
            self.bbox = mask.area == 0 ? [0, 0, 0, 0] : [b.x, b.y, b.width, b.height]
            self.predictedIoU = predictedIoU
            self.segmentation = .init(size: [mask.height, mask.width], counts: rle.compressedCounts)
        }
    }

    public var model: String
    public var streamID: String
    public var frames: [Frame]
    /// Frames given but not segmented because the object was lost (an empty mask) before them.
    public var lostAfterFrame: Int?

    enum CodingKeys: String, CodingKey { case model, streamID = "stream_id", frames, lostAfterFrame = "lost_after_frame" }

    public init(model: String, streamID: String, frames: [Frame], lostAfterFrame: Int?) {
        self.model = model; self.streamID = streamID; self.frames = frames; self.lostAfterFrame = lostAfterFrame
    }

    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}
