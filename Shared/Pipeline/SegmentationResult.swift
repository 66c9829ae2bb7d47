import Foundation
import Imaging
import SAM

/// What `segflow segment` reports, in-process or over Kafka; written as `--json`.
public struct SegmentationResult: Codable, Sendable, Equatable {
    public struct Mask: Codable, Sendable, Equatable {
        public var predictedIoU: Float
        public var stabilityScore: Float
        public var area: Int
        /// COCO XYWH.
        public var bbox: [Int]
        /// COCO RLE ({"size": [h, w], "counts": compressed string}), as pycocotools reads it.
        public var segmentation: RLE

        enum CodingKeys: String, CodingKey {
            case predictedIoU = "predicted_iou", stabilityScore = "stability_score", area, bbox, segmentation
        }

        public init(predictedIoU: Float, stabilityScore: Float, area: Int, bbox: [Int], segmentation: RLE) {
            self.predictedIoU = predictedIoU; self.stabilityScore = stabilityScore; self.area = area
            self.bbox = bbox; self.segmentation = segmentation
        }
    }

    public struct RLE: Codable, Sendable, Equatable {
        public var size: [Int]
        public var counts: String
        public init(size: [Int], counts: String) { self.size = size; self.counts = counts }
    }

    public struct PromptResult: Codable, Sendable, Equatable {
        public var points: [[Float]]
        public var box: [Float]?
        public var masks: [Mask]
        /// Index into `masks` of the highest predicted IoU (the one in the mask PNG).
        public var best: Int

        public init(points: [[Float]], box: [Float]?, masks: [Mask], best: Int) {
            self.points = points; self.box = box; self.masks = masks; self.best = best
        }
    }

    public var model: String
    public var width: Int, height: Int
    public var prompts: [PromptResult]
    public var timingsMs: [String: Double]

    enum CodingKeys: String, CodingKey { case model, width, height, prompts, timingsMs = "timings_ms" }

    public init(model: String, width: Int, height: Int, prompts: [PromptResult], timingsMs: [String: Double]) {
        self.model = model; self.width = width; self.height = height; self.prompts = prompts; self.timingsMs = timingsMs
    }

    /// The best mask of every prompt (decoded from RLE).
    public func bestMasks() throws -> [BinaryMask] {
        try prompts.map { p in
            let m = p.masks[p.best]
            return try COCORLE(height: m.segmentation.size[0], width: m.segmentation.size[1],
                               compressedCounts: m.segmentation.counts).decode()
        }
    }

    /// Union of the best masks, 0/255 gray, for `--out mask.png`.
    public func unionMask() throws -> GrayImage {
        var px = [UInt8](repeating: 0, count: width * height)
        for m in try bestMasks() {
            for y in 0..<height { for x in 0..<width where m[x, y] { px[y * width + x] = 255 } }
        }
        return try GrayImage(width: width, height: height, pixels: px)
    }

    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}
