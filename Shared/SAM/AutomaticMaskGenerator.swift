import Foundation
import Imaging
import NN
import Tensor

public enum AutomaticMaskGeneratorError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidParameter(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, reason): "automatic mask generator: \(name) = \(value): \(reason)"
        }
    }
}

/// "Segment everything": prompts SAM with a grid of single foreground points over the
/// image (and optionally over overlapping crops of it), keeps the confident and stable
/// masks and removes duplicates with box NMS.
/// ref: segment_anything/automatic_mask_generator.py SamAutomaticMaskGenerator
public struct AutomaticMaskGenerator: Sendable {
    /// How each record's `segmentation` is given. ref: SamAutomaticMaskGenerator output_mode
    public enum OutputMode: String, Sendable, CaseIterable, Codable {
        case binaryMask = "binary_mask"
        case uncompressedRLE = "uncompressed_rle"
        case cocoRLE = "coco_rle"
    }

    /// Upstream's constructor arguments with upstream's defaults (chosen there for ViT-H).
    public struct Parameters: Sendable, Equatable {
        /// Points per side of the grid (layer 0); nil when `pointGrids` is given.
        public var pointsPerSide: Int? = 32
        /// Prompts per decoder call.
        public var pointsPerBatch: Int = 64
        /// Keep masks whose predicted IoU is > this (0 disables the filter).
        public var predIoUThresh: Double = 0.88
        /// Keep masks whose stability score is ≥ this (0 disables the filter).
        public var stabilityScoreThresh: Double = 0.95
        /// Shift of the logit cutoff for the stability score.
        public var stabilityScoreOffset: Double = 1.0
        /// Box IoU above which NMS drops a duplicate within one crop.
        public var boxNMSThresh: Double = 0.7
        /// Crop layers; layer i has (2^i)² crops.
        public var cropNLayers: Int = 0
        /// Box IoU above which NMS drops a duplicate between crops.
        public var cropNMSThresh: Double = 0.7
        /// Overlap of neighbouring crops in the first layer, as a fraction of the short side.
        public var cropOverlapRatio: Double = 512.0 / 1500.0
        /// Points per side in layer n are divided by this^n.
        public var cropNPointsDownscaleFactor: Int = 1
        /// Explicit normalised point grids, one per crop layer (exclusive with pointsPerSide).
        public var pointGrids: [[AMG.Point]]? = nil
        /// If > 0, holes and islands smaller than this many pixels are removed.
        public var minMaskRegionArea: Int = 0
        public var outputMode: OutputMode = .binaryMask

        public init() {}
    }

    public enum Segmentation: Sendable, Equatable {
        case binaryMask(BinaryMask)
        /// COCO RLE with a list of counts.
        case uncompressedRLE(COCORLE)
        /// COCO RLE whose counts are written as pycocotools' compressed string.
        case cocoRLE(COCORLE)
    }

    /// One mask, with upstream's record fields. ref: SamAutomaticMaskGenerator.generate
    public struct MaskRecord: Sendable, Equatable {
        public var segmentation: Segmentation
        /// The mask as RLE whatever the output mode (upstream's mask_data["rles"]).
        public var rle: COCORLE
        /// Foreground pixels (area_from_rle).
        public var area: Int
        /// XYWH with upstream's convention: width = right − left of the inclusive edges.
        public var bbox: [Int]
        public var predictedIoU: Float
        /// The point prompt that produced the mask, in image pixels.
        public var pointCoords: [[Double]]
        public var stabilityScore: Float
        /// The crop the mask was predicted in, XYWH.
        public var cropBox: [Int]

        public init(segmentation: Segmentation, rle: COCORLE, area: Int, bbox: [Int], predictedIoU: Float,
                    pointCoords: [[Double]], stabilityScore: Float, cropBox: [Int]) {
            self.segmentation = segmentation; self.rle = rle; self.area = area; self.bbox = bbox
            self.predictedIoU = predictedIoU; self.pointCoords = pointCoords; self.stabilityScore = stabilityScore
            self.cropBox = cropBox
        }
    }

    public let sam: Sam
    public let parameters: Parameters
    /// Normalised point grid per crop layer.
    public let pointGrids: [[AMG.Point]]

    public init(_ sam: Sam, parameters: Parameters = Parameters()) throws {
        let p = parameters
        func bad(_ name: String, _ value: Any, _ reason: String) -> AutomaticMaskGeneratorError {
            .invalidParameter(name: name, value: "\(value)", reason: reason)
        }
        // ref: SamAutomaticMaskGenerator.__init__ asserts; upstream fails later (or never)
        // on the other values checked here.
        guard (p.pointsPerSide == nil) != (p.pointGrids == nil) else {
            throw bad("points_per_side", p.pointsPerSide as Any, "exactly one of points_per_side or point_grids must be provided")
        }
        guard p.pointsPerBatch > 0 else { throw bad("points_per_batch", p.pointsPerBatch, "must be positive") }
        guard p.cropNLayers >= 0 else { throw bad("crop_n_layers", p.cropNLayers, "must be ≥ 0") }
        guard p.cropNPointsDownscaleFactor >= 1 else {
            throw bad("crop_n_points_downscale_factor", p.cropNPointsDownscaleFactor, "must be ≥ 1")
        }
        guard p.minMaskRegionArea >= 0 else { throw bad("min_mask_region_area", p.minMaskRegionArea, "must be ≥ 0") }
        for (name, v) in [("pred_iou_thresh", p.predIoUThresh), ("stability_score_thresh", p.stabilityScoreThresh),
                          ("stability_score_offset", p.stabilityScoreOffset), ("box_nms_thresh", p.boxNMSThresh),
                          ("crop_nms_thresh", p.cropNMSThresh), ("crop_overlap_ratio", p.cropOverlapRatio)] where !v.isFinite {
            throw bad(name, v, "must be a finite number")
        }
        let grids: [[AMG.Point]]
        if let n = p.pointsPerSide {
            guard n > 0 else { throw bad("points_per_side", n, "must be positive") }
            grids = AMG.buildAllLayerPointGrids(nPerSide: n, nLayers: p.cropNLayers, scalePerLayer: p.cropNPointsDownscaleFactor)
        } else {
            grids = p.pointGrids!
        }
        for (i, g) in grids.prefix(p.cropNLayers + 1).enumerated() where g.isEmpty {
            throw bad(p.pointsPerSide == nil ? "point_grids[\(i)]" : "points_per_side", p.pointsPerSide ?? 0,
                      "crop layer \(i) would have no points (int(points_per_side / crop_n_points_downscale_factor^\(i)) = 0)")
        }
        guard grids.count >= p.cropNLayers + 1 else {
            throw bad("point_grids", "\(grids.count) grids", "needs one grid per crop layer (\(p.cropNLayers + 1))")
        }
        for (i, g) in grids.enumerated() where g.contains(where: { !(0...1).contains($0.x) || !(0...1).contains($0.y) }) {
            throw bad("point_grids[\(i)]", "…", "points must be normalised to [0, 1]")
        }
        self.sam = sam
        self.parameters = p
        pointGrids = grids
    }

    /// Masks for the whole image (RGB, row-major, 3 bytes a pixel), in upstream's order.
    /// ref: SamAutomaticMaskGenerator.generate
    public func generate(rgb: [UInt8], width: Int, height: Int) throws -> [MaskRecord] {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw SamError.emptyImage(width: width, height: height)
        }
        return try records(from: try generateMasks(rgb: rgb, width: width, height: height, embedding: nil))
    }

    /// Masks from an embedding computed elsewhere (the prompt-decoder service's cache):
    /// possible without the pixels only when there are no crop layers, since every crop
    /// needs its own embedding.
    public func generate(embedding: ImageEmbedding) throws -> [MaskRecord] {
        guard parameters.cropNLayers == 0 else {
            throw AutomaticMaskGeneratorError.invalidParameter(name: "crop_n_layers", value: "\(parameters.cropNLayers)",
                                                               reason: "crops need the image pixels; run with the image in-process")
        }
        let (h, w) = embedding.originalSize
        return try records(from: try generateMasks(rgb: [], width: w, height: h, embedding: embedding))
    }

    func records(from generated: MaskData) throws -> [MaskRecord] {
        var data = generated

        if parameters.minMaskRegionArea > 0 {
            data = Self.postprocessSmallRegions(data, minArea: parameters.minMaskRegionArea,
                                                nmsThresh: max(parameters.boxNMSThresh, parameters.cropNMSThresh))
        }

        var records: [MaskRecord] = []
        records.reserveCapacity(data.count)
        for i in 0..<data.count {
            let rle = data.rles[i]
            let segmentation: Segmentation
            switch parameters.outputMode {
            case .cocoRLE: segmentation = .cocoRLE(rle)
            case .uncompressedRLE: segmentation = .uncompressedRLE(rle)
            case .binaryMask: segmentation = .binaryMask(try rle.decode())
            }
            records.append(MaskRecord(segmentation: segmentation, rle: rle, area: rle.area, bbox: data.boxes[i].xywh,
                                      predictedIoU: data.iouPreds[i],
                                      pointCoords: [[data.points[i].x, data.points[i].y]],
                                      stabilityScore: data.stabilityScores[i], cropBox: data.cropBoxes[i].xywh))
        }
        return records
    }

    // MARK: - Pipeline

    /// Struct-of-arrays of candidate masks. ref: amg.py MaskData
    struct MaskData {
        var rles: [COCORLE] = []
        var boxes: [AMG.Box] = []
        var iouPreds: [Float] = []
        var points: [AMG.Point] = []
        var stabilityScores: [Float] = []
        var cropBoxes: [AMG.Box] = []

        var count: Int { rles.count }

        mutating func append(_ other: MaskData) {
            rles += other.rles; boxes += other.boxes; iouPreds += other.iouPreds
            points += other.points; stabilityScores += other.stabilityScores; cropBoxes += other.cropBoxes
        }

        /// Keeps (and reorders to) `indices`. ref: MaskData.filter with an index tensor
        /// Fields not yet set (crop boxes inside a crop) stay empty.
        func filtered(_ indices: [Int]) -> MaskData {
            func pick<T>(_ a: [T]) -> [T] { a.isEmpty ? [] : indices.map { a[$0] } }
            return MaskData(rles: pick(rles), boxes: pick(boxes), iouPreds: pick(iouPreds), points: pick(points),
                            stabilityScores: pick(stabilityScores), cropBoxes: pick(cropBoxes))
        }
    }

    /// ref: SamAutomaticMaskGenerator._generate_masks
    func generateMasks(rgb: [UInt8], width: Int, height: Int, embedding: ImageEmbedding?) throws -> MaskData {
        let (cropBoxes, layerIdxs) = AMG.generateCropBoxes(height: height, width: width, nLayers: parameters.cropNLayers,
                                                           overlapRatio: parameters.cropOverlapRatio)
        var data = MaskData()
        for (cropBox, layerIdx) in zip(cropBoxes, layerIdxs) {
            data.append(try processCrop(rgb: rgb, width: width, height: height, cropBox: cropBox, layerIdx: layerIdx,
                                        embedding: layerIdx == 0 ? embedding : nil))
        }
        // Remove duplicate masks between crops, preferring masks from smaller crops.
        if cropBoxes.count > 1 {
            // scores = 1 / box_area(crop_boxes): int64 area, true division in float32.
            let scores = data.cropBoxes.map { 1 / Float($0.area) }
            let keep = AMG.batchedNMS(boxes: data.boxes, scores: scores, categories: [Int](repeating: 0, count: data.count),
                                      iouThreshold: parameters.cropNMSThresh)
            data = data.filtered(keep)
        }
        return data
    }

    /// ref: SamAutomaticMaskGenerator._process_crop
    func processCrop(rgb: [UInt8], width: Int, height: Int, cropBox: AMG.Box, layerIdx: Int,
                     embedding: ImageEmbedding? = nil) throws -> MaskData {
        // Each crop gets its own embedding, from its own pixels (so per-image normalisation
        // such as LiteMedSAM's min-max applies per crop, as upstream's set_image(cropped_im)).
        // The whole-image crop (layer 0) may reuse an embedding computed elsewhere.
        let cw = cropBox.x1 - cropBox.x0, ch = cropBox.y1 - cropBox.y0
        let emb: ImageEmbedding
        if let embedding {
            emb = embedding
        } else {
            var cropped = [UInt8](repeating: 0, count: cw * ch * 3)
            for y in 0..<ch {
                let src = ((cropBox.y0 + y) * width + cropBox.x0) * 3
                cropped.replaceSubrange((y * cw * 3)..<((y + 1) * cw * 3), with: rgb[src..<(src + cw * 3)])
            }
            emb = try sam.embed(rgb: cropped, width: cw, height: ch)
        }

        // points_for_image = grid * [crop_w, crop_h] (float64)
        let points = pointGrids[layerIdx].map { AMG.Point(x: $0.x * Double(cw), y: $0.y * Double(ch)) }

        var data = MaskData()
        // ref: amg.py batch_iterator
        for start in stride(from: 0, to: points.count, by: parameters.pointsPerBatch) {
            let batch = Array(points[start..<min(start + parameters.pointsPerBatch, points.count)])
            data.append(try processBatch(batch, emb: emb, cropBox: cropBox, origWidth: width, origHeight: height))
        }

        // Remove duplicates within this crop.
        let keep = AMG.batchedNMS(boxes: data.boxes, scores: data.iouPreds, categories: [Int](repeating: 0, count: data.count),
                                  iouThreshold: parameters.boxNMSThresh)
        data = data.filtered(keep)

        // Return to the original image frame.
        data.boxes = data.boxes.map { AMG.uncrop($0, cropBox) }
        data.points = data.points.map { AMG.uncrop($0, cropBox) }
        data.cropBoxes = [AMG.Box](repeating: cropBox, count: data.count)
        return data
    }

    /// One decoder call for a batch of single-point prompts, then upstream's filters.
    /// Boxes and points stay in crop coordinates; RLEs are already at the original size.
    /// ref: SamAutomaticMaskGenerator._process_batch
    func processBatch(_ points: [AMG.Point], emb: ImageEmbedding, cropBox: AMG.Box,
                      origWidth: Int, origHeight: Int) throws -> MaskData {
        // predict_torch(points, labels=1, multimask_output=True, return_logits=True):
        // SamPrediction.logits are exactly those logits, postprocessed to the crop size.
        // Sam.transform scales the coordinates in float64 as apply_coords does; the points
        // pass through Float first (upstream keeps float64 until the positional encoding,
        // a difference of < 1 ulp of float32 there).
        let prompts = points.map { SamPrompt(points: [.init(x: Float($0.x), y: Float($0.y), label: 1)], multimask: true) }
        let predictions = try sam.predict(emb, prompts)

        let (h, w) = (emb.originalSize.height, emb.originalSize.width)
        let plane = h * w
        let origBox = AMG.Box(x0: 0, y0: 0, x1: origWidth, y1: origHeight)
        // torch compares a float32 tensor with a Python float in float32.
        let iouThresh = Float(parameters.predIoUThresh), stabilityThresh = Float(parameters.stabilityScoreThresh)
        var data = MaskData()
        var binary = [UInt8](repeating: 0, count: plane)

        // masks.flatten(0, 1): point-major, then the model's masks; points.repeat(M, axis=0).
        for (point, prediction) in zip(points, predictions) {
            prediction.logits.data.withUnsafeBufferPointer { all in
                for m in 0..<prediction.maskCount {
                    let iou = prediction.iouPredictions[m]
                    // Filter by predicted IoU.
                    if parameters.predIoUThresh > 0 && !(iou > iouThresh) { continue }
                    let logits = UnsafeBufferPointer(rebasing: all[(m * plane)..<((m + 1) * plane)])
                    // Stability score on the logits.
                    let stability = AMG.stabilityScore(logits, maskThreshold: Sam.maskThreshold,
                                                       offset: parameters.stabilityScoreOffset)
                    if parameters.stabilityScoreThresh > 0 && !(stability >= stabilityThresh) { continue }
                    // Threshold masks and calculate boxes.
                    let box = binary.withUnsafeMutableBufferPointer { b -> AMG.Box in
                        for p in 0..<plane { b[p] = logits[p] > Sam.maskThreshold ? 1 : 0 }
                        return AMG.maskToBox(UnsafeBufferPointer(b), width: w, height: h)
                    }
                    // Filter boxes that touch crop boundaries.
                    if AMG.isBoxNearCropEdge(box, cropBox: cropBox, origBox: origBox) { continue }
                    // Uncrop and compress to RLE.
                    let rle = binary.withUnsafeBufferPointer {
                        AMG.uncroppedRLE($0, cropBox: cropBox, origWidth: origWidth, origHeight: origHeight)
                    }
                    data.rles.append(rle)
                    data.boxes.append(box)
                    data.iouPreds.append(iou)
                    data.points.append(point)
                    data.stabilityScores.append(stability)
                }
            }
        }
        return data
    }

    /// Fills small holes and removes small islands in every mask, then reruns box NMS
    /// preferring masks that did not change. ref: SamAutomaticMaskGenerator.postprocess_small_regions
    static func postprocessSmallRegions(_ data: MaskData, minArea: Int, nmsThresh: Double) -> MaskData {
        guard data.count > 0 else { return data }
        var newMasks: [[UInt8]] = []
        var scores: [Float] = []
        var boxes: [AMG.Box] = []
        for rle in data.rles {
            // The RLE was built from a valid mask; decode cannot fail.
            var mask = (try? rle.decode())!.bits
            let (w, h) = (rle.width, rle.height)
            let holesChanged = AMG.removeSmallRegions(&mask, width: w, height: h, areaThreshold: Double(minArea), mode: .holes)
            let islandsChanged = AMG.removeSmallRegions(&mask, width: w, height: h, areaThreshold: Double(minArea), mode: .islands)
            // score 1 for unchanged masks, 0 for changed ones, so NMS prefers the former.
            scores.append(holesChanged || islandsChanged ? 0 : 1)
            boxes.append(AMG.maskToBox(mask, width: w, height: h))
            newMasks.append(mask)
        }
        let keep = AMG.batchedNMS(boxes: boxes, scores: scores, categories: [Int](repeating: 0, count: boxes.count),
                                  iouThreshold: nmsThresh)
        var out = data
        // Only recalculate RLEs (and boxes) for masks that have changed.
        for i in keep where scores[i] == 0 {
            let mask = try? BinaryMask(width: data.rles[i].width, height: data.rles[i].height, values: newMasks[i])
            out.rles[i] = COCORLE(mask: mask!)
            out.boxes[i] = boxes[i]
        }
        return out.filtered(keep)
    }
}

// MARK: - JSON

extension AutomaticMaskGenerator {
    /// Records as upstream's JSON (what `json.dump(generator.generate(image))` writes for
    /// the RLE modes): segmentation {"size": [h, w], "counts": compressed string or list},
    /// area, bbox, predicted_iou, point_coords, stability_score, crop_box. A binary-mask
    /// segmentation is written as compressed COCO RLE, the form pycocotools reads.
    public static func json(_ records: [MaskRecord]) throws -> Data {
        let objects: [[String: Any]] = records.map { r in
            let segmentation: [String: Any]
            switch r.segmentation {
            case let .uncompressedRLE(rle):
                segmentation = ["size": [rle.height, rle.width], "counts": rle.counts]
            case .cocoRLE, .binaryMask:
                segmentation = ["size": [r.rle.height, r.rle.width], "counts": r.rle.compressedCounts]
            }
            return [
                "segmentation": segmentation,
                "area": r.area,
                "bbox": r.bbox,
                // Float → Double is exact, as torch's .item().
                "predicted_iou": Double(r.predictedIoU),
                "point_coords": r.pointCoords,
                "stability_score": Double(r.stabilityScore),
                "crop_box": r.cropBox,
            ]
        }
        return try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
    }
}
