import Checkpoint
import Foundation
import Imaging
import SAM
import Tensor
import XCTest

/// Parity of AutomaticMaskGenerator with segment_anything's SamAutomaticMaskGenerator and
/// amg.py on golden files made by Tests/Reference/make_amg_fixtures.py.
enum AMGTolerance {
    /// Each Swift mask against its matched upstream mask. The decoders agree to ~1e-6 of
    /// the logits' scale (SAMParityTests), so only pixels whose logit lies within that of
    /// the 0 cutoff can flip; 0.98 allows a few such pixels on the smallest masks here
    /// (~40 px after small-region removal) while any wrong crop offset, resize, threshold
    /// or RLE run breaks whole rows or regions.
    static let maskIoUMinimum = 0.98
    /// Predicted IoU is a float32 MLP output in ~[-1, 1]; decoders agree to ~1e-6 here,
    /// 1e-4 is two orders of headroom and far below the gaps the thresholds cut through.
    static let predictedIoUAbsolute = 1e-4
    /// Stability score = count(logit > t+o) / count(logit > t-o): a ratio of pixel counts.
    /// A logit within rounding of a cutoff moves it by 1/union; 2e-3 is two such pixels on
    /// the ~1000 px masks here.
    static let stabilityAbsolute = 2e-3
    /// Point coordinates: the same float64 operations (grid × crop size + crop offset).
    static let pointAbsolute = 1e-9
}

// MARK: - Fixture decoding

struct AMGGoldenRLE: Decodable {
    var size: [Int]
    var counts: String
}

struct AMGGoldenRecord: Decodable {
    var segmentation: AMGGoldenRLE
    var area: Int
    var bbox: [Int]
    var predicted_iou: Double
    var point_coords: [[Double]]
    var stability_score: Double
    var crop_box: [Int]
}

struct AMGGoldenParams: Decodable {
    var points_per_side: Int?
    var points_per_batch: Int?
    var pred_iou_thresh: Double?
    var stability_score_thresh: Double?
    var stability_score_offset: Double?
    var box_nms_thresh: Double?
    var crop_n_layers: Int?
    var crop_nms_thresh: Double?
    var crop_overlap_ratio: Double?
    var crop_n_points_downscale_factor: Int?
    var min_mask_region_area: Int?

    /// Upstream's keyword arguments over upstream's defaults.
    var parameters: AutomaticMaskGenerator.Parameters {
        var p = AutomaticMaskGenerator.Parameters()
        if let v = points_per_side { p.pointsPerSide = v }
        if let v = points_per_batch { p.pointsPerBatch = v }
        if let v = pred_iou_thresh { p.predIoUThresh = v }
        if let v = stability_score_thresh { p.stabilityScoreThresh = v }
        if let v = stability_score_offset { p.stabilityScoreOffset = v }
        if let v = box_nms_thresh { p.boxNMSThresh = v }
        if let v = crop_n_layers { p.cropNLayers = v }
        if let v = crop_nms_thresh { p.cropNMSThresh = v }
        if let v = crop_overlap_ratio { p.cropOverlapRatio = v }
        if let v = crop_n_points_downscale_factor { p.cropNPointsDownscaleFactor = v }
        if let v = min_mask_region_area { p.minMaskRegionArea = v }
        p.outputMode = .cocoRLE
        return p
    }
}

struct AMGGoldenRun: Decodable {
    var params: AMGGoldenParams
    var height: Int
    var width: Int
    var records: [AMGGoldenRecord]
}

func loadAMGRuns(_ name: String) throws -> [String: AMGGoldenRun] {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
    return try JSONDecoder().decode([String: AMGGoldenRun].self, from: Data(contentsOf: url))
}

func maskIoU(_ a: [UInt8], _ b: [UInt8]) -> Double {
    var inter = 0, union = 0
    for i in 0..<a.count {
        inter += Int(a[i] & b[i])
        union += Int(a[i] | b[i])
    }
    return union == 0 ? 1 : Double(inter) / Double(union)
}

/// Runs the generator on a fixture image and checks every record against upstream's.
/// Returns the matched IoUs (worst first) for the report.
@discardableResult
func checkAMGRun(_ sam: Sam, image: RGBImage, golden: AMGGoldenRun, label: String,
                 file: StaticString = #filePath, line: UInt = #line) throws -> [Double] {
    XCTAssertEqual([image.height, image.width], [golden.height, golden.width], label, file: file, line: line)
    let generator = try AutomaticMaskGenerator(sam, parameters: golden.params.parameters)
    let start = Date()
    let records = try generator.generate(rgb: image.pixels, width: image.width, height: image.height)
    print("AMG \(label): \(records.count) masks (upstream \(golden.records.count)) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")

    // The JSON the product writes: keep it for the pycocotools check
    // (Tests/Reference/make_amg_fixtures.py --check-swift-json PATH --against LABEL).
    let json = try AutomaticMaskGenerator.json(records)
    let jsonURL = FileManager.default.temporaryDirectory.appendingPathComponent("segflow_amg_\(label).json")
    try json.write(to: jsonURL)
    print("AMG \(label): Swift records written to \(jsonURL.path)")
    try checkJSONRoundTrip(json, records, label: label, file: file, line: line)

    XCTAssertEqual(records.count, golden.records.count, "\(label): mask count", file: file, line: line)

    // Decode both sides; check each side's own bbox/area against its mask.
    let swiftMasks = try records.map { r -> [UInt8] in
        guard case let .cocoRLE(rle) = r.segmentation else {
            XCTFail("\(label): segmentation is \(r.segmentation), expected COCO RLE", file: file, line: line)
            return []
        }
        let mask = try rle.decode()
        XCTAssertEqual([rle.height, rle.width], [image.height, image.width], label, file: file, line: line)
        XCTAssertEqual(r.area, mask.area, "\(label): Swift area", file: file, line: line)
        XCTAssertEqual(r.bbox, upstreamBBox(mask), "\(label): Swift bbox", file: file, line: line)
        return mask.bits
    }
    let refMasks = try golden.records.map { g -> [UInt8] in
        let rle = try COCORLE(height: g.segmentation.size[0], width: g.segmentation.size[1], compressedCounts: g.segmentation.counts)
        let mask = try rle.decode()
        XCTAssertEqual(g.area, mask.area, "\(label): fixture area", file: file, line: line)
        XCTAssertEqual(g.bbox, upstreamBBox(mask), "\(label): fixture bbox", file: file, line: line)
        return mask.bits
    }

    // One-to-one matching: each upstream record takes the unmatched Swift record with the
    // best mask IoU among those from the same prompt point and crop (a point yields up to
    // three masks), or among all when none shares the point.
    var used = [Bool](repeating: false, count: records.count)
    var ious: [Double] = []
    for (gi, g) in golden.records.enumerated() {
        func samePrompt(_ r: AutomaticMaskGenerator.MaskRecord) -> Bool {
            r.cropBox == g.crop_box && zip(r.pointCoords[0], g.point_coords[0]).allSatisfy { abs($0 - $1) <= AMGTolerance.pointAbsolute }
        }
        var candidates = records.indices.filter { !used[$0] && samePrompt(records[$0]) }
        if candidates.isEmpty { candidates = records.indices.filter { !used[$0] } }
        guard let best = candidates.max(by: { maskIoU(swiftMasks[$0], refMasks[gi]) < maskIoU(swiftMasks[$1], refMasks[gi]) }) else {
            XCTFail("\(label): no Swift mask left for upstream record \(gi)", file: file, line: line)
            continue
        }
        used[best] = true
        let r = records[best]
        let iou = maskIoU(swiftMasks[best], refMasks[gi])
        ious.append(iou)
        XCTAssertGreaterThanOrEqual(iou, AMGTolerance.maskIoUMinimum, "\(label): upstream record \(gi) ↔ Swift \(best)", file: file, line: line)
        XCTAssertEqual(r.cropBox, g.crop_box, "\(label): crop_box of record \(gi)", file: file, line: line)
        XCTAssertTrue(samePrompt(r), "\(label): point \(r.pointCoords) vs upstream \(g.point_coords) (record \(gi))", file: file, line: line)
        XCTAssertEqual(Double(r.predictedIoU), g.predicted_iou, accuracy: AMGTolerance.predictedIoUAbsolute,
                       "\(label): predicted_iou of record \(gi)", file: file, line: line)
        XCTAssertEqual(Double(r.stabilityScore), g.stability_score, accuracy: AMGTolerance.stabilityAbsolute,
                       "\(label): stability_score of record \(gi)", file: file, line: line)
        // Area and box follow the mask: identical masks have identical ones, and the area
        // can differ by no more than the pixels outside the intersection.
        if iou == 1 {
            XCTAssertEqual(r.area, g.area, "\(label): area of record \(gi)", file: file, line: line)
            XCTAssertEqual(r.bbox, g.bbox, "\(label): bbox of record \(gi)", file: file, line: line)
        } else {
            // |A| − |B| is bounded by the symmetric difference |A ∪ B| − |A ∩ B|.
            var inter = 0, union = 0
            for (a, b) in zip(swiftMasks[best], refMasks[gi]) { inter += Int(a & b); union += Int(a | b) }
            XCTAssertLessThanOrEqual(abs(r.area - g.area), union - inter, "\(label): area of record \(gi)", file: file, line: line)
        }
    }
    ious.sort()
    if let worst = ious.first {
        print("AMG \(label): matched mask IoU min \(worst), mean \(ious.reduce(0, +) / Double(ious.count)), exact \(ious.filter { $0 == 1 }.count)/\(ious.count)")
    }
    return ious
}

/// Upstream's bbox of a mask: XYWH where W = right − left of the inclusive edges.
func upstreamBBox(_ mask: BinaryMask) -> [Int] {
    let b = mask.boundingBox
    return mask.area == 0 ? [0, 0, 0, 0] : [b.x, b.y, b.width - 1, b.height - 1]
}

/// The JSON holds what the records hold, with pycocotools' compressed counts.
func checkJSONRoundTrip(_ json: Data, _ records: [AutomaticMaskGenerator.MaskRecord], label: String,
                        file: StaticString, line: UInt) throws {
    let back = try JSONDecoder().decode([AMGGoldenRecord].self, from: json)
    XCTAssertEqual(back.count, records.count, file: file, line: line)
    for (b, r) in zip(back, records) {
        let rle = try COCORLE(height: b.segmentation.size[0], width: b.segmentation.size[1], compressedCounts: b.segmentation.counts)
        XCTAssertEqual(rle, r.rle, "\(label): JSON RLE", file: file, line: line)
        XCTAssertEqual(b.area, r.area, file: file, line: line)
        XCTAssertEqual(b.bbox, r.bbox, file: file, line: line)
        XCTAssertEqual(b.crop_box, r.cropBox, file: file, line: line)
        XCTAssertEqual(b.point_coords, r.pointCoords, file: file, line: line)
        XCTAssertEqual(Float(b.predicted_iou), r.predictedIoU, file: file, line: line)
        XCTAssertEqual(Float(b.stability_score), r.stabilityScore, file: file, line: line)
    }
}

// MARK: - Tests

final class AutomaticMaskGeneratorTinyTests: XCTestCase {
    /// The tiny random ViT SAM of SAMParityTests (sam_tiny_vit.pth, its config).
    func loadTinySam() throws -> Sam {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "sam_tiny_vit", withExtension: "pth", subdirectory: "Fixtures"))
        let vb = try WeightLoader(try StateDict(contentsOf: url))
        let sam = try Sam.build(.samViTB, vb, vitConfig: TinyViTSamParityTests.tinyConfig, promptEmbedDim: 32, maskInChans: 8,
                                decoderMLPDim: 64, decoderHeads: 2, iouHeadHiddenDim: 32)
        try vb.finish()
        return sam
    }

    func testWholeImageMatchesUpstream() throws {
        let golden = try XCTUnwrap(loadAMGRuns("amg_tiny")["whole"])
        XCTAssertGreaterThan(golden.records.count, 50, "fixture should exercise many masks")
        try checkAMGRun(try loadTinySam(), image: try fixtureImage("chelsea_crop"), golden: golden, label: "tiny_whole")
    }

    func testCropsAndSmallRegionRemovalMatchUpstream() throws {
        let golden = try XCTUnwrap(loadAMGRuns("amg_tiny")["crops"])
        XCTAssertEqual(golden.params.crop_n_layers, 1)
        XCTAssertGreaterThan(golden.params.min_mask_region_area ?? 0, 0)
        try checkAMGRun(try loadTinySam(), image: try fixtureImage("chelsea_crop"), golden: golden, label: "tiny_crops")
    }

    func testOutputModes() throws {
        let sam = try loadTinySam()
        let image = try fixtureImage("chelsea_crop")
        var p = try XCTUnwrap(loadAMGRuns("amg_tiny")["whole"]).params.parameters
        p.pointsPerSide = 4
        var results: [AutomaticMaskGenerator.OutputMode: [AutomaticMaskGenerator.MaskRecord]] = [:]
        for mode in AutomaticMaskGenerator.OutputMode.allCases {
            p.outputMode = mode
            results[mode] = try AutomaticMaskGenerator(sam, parameters: p).generate(rgb: image.pixels, width: image.width, height: image.height)
        }
        let rles = try XCTUnwrap(results[.cocoRLE])
        XCTAssertFalse(rles.isEmpty)
        for (i, r) in rles.enumerated() {
            guard case let .binaryMask(mask) = results[.binaryMask]![i].segmentation else { return XCTFail("binary mode") }
            XCTAssertEqual(COCORLE(mask: mask), r.rle)
            guard case let .uncompressedRLE(u) = results[.uncompressedRLE]![i].segmentation else { return XCTFail("rle mode") }
            XCTAssertEqual(u, r.rle)
        }
        // The uncompressed JSON form carries the counts as a list.
        let json = try AutomaticMaskGenerator.json(results[.uncompressedRLE]!)
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [[String: Any]])
        let seg = try XCTUnwrap(objects.first?["segmentation"] as? [String: Any])
        XCTAssertEqual(seg["counts"] as? [Int], rles[0].rle.counts)
    }

    func testInvalidParametersAreRejected() throws {
        let sam = try loadTinySam()
        var p = AutomaticMaskGenerator.Parameters()
        p.pointGrids = [AMG.buildPointGrid(4)]
        XCTAssertThrowsError(try AutomaticMaskGenerator(sam, parameters: p)) {  // both grid sources
            XCTAssertTrue("\($0)".contains("points_per_side"), "\($0)")
        }
        p.pointsPerSide = nil
        XCTAssertNoThrow(try AutomaticMaskGenerator(sam, parameters: p))
        p.cropNLayers = 1
        XCTAssertThrowsError(try AutomaticMaskGenerator(sam, parameters: p))  // one grid for two layers
        p = AutomaticMaskGenerator.Parameters()
        p.pointsPerSide = 3; p.cropNLayers = 1; p.cropNPointsDownscaleFactor = 4
        XCTAssertThrowsError(try AutomaticMaskGenerator(sam, parameters: p))  // layer 1 has int(3/4) = 0 points
        p = AutomaticMaskGenerator.Parameters()
        p.pointsPerBatch = 0
        XCTAssertThrowsError(try AutomaticMaskGenerator(sam, parameters: p))
        p = AutomaticMaskGenerator.Parameters()
        p.predIoUThresh = .nan
        XCTAssertThrowsError(try AutomaticMaskGenerator(sam, parameters: p))
    }
}

/// The amg.py helpers and torchvision's batched_nms on synthetic inputs (amg_utils.json).
final class AMGUtilitiesTests: XCTestCase {
    struct Utils: Decodable {
        struct Grids: Decodable { var n_per_side: Int; var n_layers: Int; var scale: Int; var grids: [[[Double]]] }
        struct Crops: Decodable {
            var height: Int; var width: Int; var n_layers: Int; var overlap_ratio: Double
            var boxes: [[Int]]; var layers: [Int]
        }
        struct NMS: Decodable {
            var boxes: [[Int]]; var scores: [Double]; var categories: [Int]; var iou_threshold: Double; var keep: [Int]
        }
        struct Regions: Decodable {
            var height: Int; var width: Int; var mode: String; var area_thresh: Double
            var mask: [Int]; var result: [Int]; var changed: Bool; var box: [Int]
        }
        var point_grids: [Grids]
        var crop_boxes: [Crops]
        var nms: [NMS]
        var small_regions: [Regions]
    }

    func load() throws -> Utils {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "amg_utils", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Utils.self, from: Data(contentsOf: url))
    }

    func testPointGridsEqualNumpy() throws {
        for c in try load().point_grids {
            let grids = AMG.buildAllLayerPointGrids(nPerSide: c.n_per_side, nLayers: c.n_layers, scalePerLayer: c.scale)
            XCTAssertEqual(grids.map { $0.map { [$0.x, $0.y] } }, c.grids, "n=\(c.n_per_side) layers=\(c.n_layers) scale=\(c.scale)")
        }
    }

    func testCropBoxesEqualUpstream() throws {
        for c in try load().crop_boxes {
            let (boxes, layers) = AMG.generateCropBoxes(height: c.height, width: c.width, nLayers: c.n_layers, overlapRatio: c.overlap_ratio)
            XCTAssertEqual(boxes.map { [$0.x0, $0.y0, $0.x1, $0.y1] }, c.boxes, "\(c.height)x\(c.width) layers \(c.n_layers)")
            XCTAssertEqual(layers, c.layers)
        }
    }

    func testBatchedNMSEqualsTorchvision() throws {
        for (i, c) in try load().nms.enumerated() {
            let keep = AMG.batchedNMS(boxes: c.boxes.map { AMG.Box(x0: $0[0], y0: $0[1], x1: $0[2], y1: $0[3]) },
                                      scores: c.scores.map { Float($0) }, categories: c.categories, iouThreshold: c.iou_threshold)
            if c.boxes.count <= 1000 {
                XCTAssertEqual(keep, c.keep, "case \(i)")
            } else {
                // Above 1000 boxes torchvision re-sorts its result with an unstable sort:
                // the kept set is defined, the order among equal scores is not.
                XCTAssertEqual(Set(keep), Set(c.keep), "case \(i)")
                XCTAssertEqual(keep.map { c.scores[$0] }, c.keep.map { c.scores[$0] }, "case \(i): score order")
            }
        }
    }

    func testRemoveSmallRegionsEqualsOpenCV() throws {
        for (i, c) in try load().small_regions.enumerated() {
            var mask = try COCORLE(height: c.height, width: c.width, counts: c.mask).decode().bits
            let expected = try COCORLE(height: c.height, width: c.width, counts: c.result).decode().bits
            XCTAssertEqual(AMG.maskToBox(mask, width: c.width, height: c.height).description, "\(c.box)", "case \(i): box")
            let changed = AMG.removeSmallRegions(&mask, width: c.width, height: c.height, areaThreshold: c.area_thresh,
                                                 mode: c.mode == "holes" ? .holes : .islands)
            XCTAssertEqual(changed, c.changed, "case \(i) (\(c.mode), \(c.area_thresh))")
            XCTAssertEqual(mask, expected, "case \(i) (\(c.mode), \(c.area_thresh))")
        }
    }

    func testUncroppedRLEEqualsPaddedMask() throws {
        var bits = [UInt8](repeating: 0, count: 7 * 5)
        for p in [0, 3, 4, 8, 17, 20, 21, 34] { bits[p] = 1 }
        let crop = AMG.Box(x0: 2, y0: 3, x1: 9, y1: 8)
        let rle = bits.withUnsafeBufferPointer { AMG.uncroppedRLE($0, cropBox: crop, origWidth: 12, origHeight: 10) }
        var padded = [UInt8](repeating: 0, count: 12 * 10)
        for y in 0..<5 { for x in 0..<7 { padded[(y + 3) * 12 + x + 2] = bits[y * 7 + x] } }
        XCTAssertEqual(rle, COCORLE(mask: try BinaryMask(width: 12, height: 10, values: padded)))
    }
}

final class AutomaticMaskGeneratorLiteMedSAMTests: XCTestCase {
    func testRealLiteMedSAMMatchesUpstreamOnChelsea() throws {
        // Same rule as LiteMedSAMRealWeightsTests: skip without the checkpoint, fail in CI.
        let checkpoint = LiteMedSAMRealWeightsTests.checkpoint
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("LiteMedSAM checkpoint missing at \(checkpoint.path): Deploy/setup.sh must fetch it in CI")
            }
            throw XCTSkip("LiteMedSAM checkpoint not cached at \(checkpoint.path); run Deploy/setup.sh")
        }
        let sam = try Sam.load(.liteMedSAM, checkpoint: checkpoint)
        let golden = try XCTUnwrap(loadAMGRuns("amg_litemedsam")["whole"])
        XCTAssertGreaterThan(golden.records.count, 5, "fixture should exercise several masks")
        try checkAMGRun(sam, image: try fixtureImage("chelsea"), golden: golden, label: "litemedsam")
    }
}
