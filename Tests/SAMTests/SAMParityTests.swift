import Checkpoint
import Foundation
import Imaging
import SAM
import Tensor
import XCTest

/// Parity with segment_anything's SamPredictor on golden files made by
/// Tests/Reference/make_sam_fixtures.py.
enum Tolerance {
    /// Embeddings: max |swift - torch| ≤ 1e-3 × max |torch|. Float32 with different
    /// summation orders (BLAS blocking, fused attention) drifts ~1e-5 per layer; 1e-3 of
    /// the scale leaves room for a dozen layers and still catches any wrong weight or op.
    static let embeddingRelative: Float = 1e-3
    /// Low-res mask logits: same budget relative to the logits' scale.
    static let logitsRelative: Float = 1e-3
    /// Predicted IoU is a small MLP output in ~[0, 1]; absolute.
    static let iouAbsolute: Float = 1e-3
    /// Final binary masks: only pixels whose logit is within rounding of 0 may flip.
    static let maskIoUMinimum = 0.995
}

struct Golden {
    let dict: StateDict
    init(_ name: String) throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"))
        dict = try StateDict(contentsOf: url)
    }
    func tensor(_ name: String) throws -> Tensor { try dict.tensor(named: name) }

    /// np.packbits(masks, axis=-1) → masks [M, H, W] of 0/1.
    func masks(_ name: String, height: Int, width: Int) throws -> [[UInt8]] {
        let packed = try tensor(name)
        let m = packed.shape[0], rowBytes = packed.shape[2]
        return (0..<m).map { i in
            var out = [UInt8](repeating: 0, count: height * width)
            for y in 0..<height {
                for x in 0..<width {
                    let byte = UInt8(packed.data[(i * height + y) * rowBytes + x / 8])
                    out[y * width + x] = (byte >> (7 - UInt8(x % 8))) & 1
                }
            }
            return out
        }
    }
}

struct CaseSpec: Decodable {
    var points: [[Float]]?
    var labels: [Int]?
    var box: [Float]?
    var multimask: Bool
    var mask_input_from: Int?
}

struct ImageSpec: Decodable {
    var height: Int, width: Int
    var cases: [CaseSpec]
}

func loadCases() throws -> [String: ImageSpec] {
    let url = try XCTUnwrap(Bundle.module.url(forResource: "cases", withExtension: "json", subdirectory: "Fixtures"))
    return try JSONDecoder().decode([String: ImageSpec].self, from: Data(contentsOf: url))
}

func fixtureImage(_ name: String) throws -> RGBImage {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "png", subdirectory: "Fixtures"))
    return try PNG.decodeRGB(contentsOfFile: url.path)
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

func maxAbs(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }

func iou(_ a: [UInt8], _ b: [UInt8]) -> Double {
    var inter = 0, union = 0
    for i in 0..<a.count {
        if a[i] != 0 && b[i] != 0 { inter += 1 }
        if a[i] != 0 || b[i] != 0 { union += 1 }
    }
    return union == 0 ? 1 : Double(inter) / Double(union)
}

/// Every `step`-th row and column of the last two axes.
func subsample(_ t: Tensor, step: Int) -> [Float] {
    let (h, w) = (t.dim(-2), t.dim(-1))
    let lead = t.count / (h * w)
    var out: [Float] = []
    for l in 0..<lead {
        for y in stride(from: 0, to: h, by: step) {
            for x in stride(from: 0, to: w, by: step) { out.append(t.data[l * h * w + y * w + x]) }
        }
    }
    return out
}

func prompt(_ c: CaseSpec, maskInput: Tensor? = nil) -> SamPrompt {
    let pts = zip(c.points ?? [], c.labels ?? []).map { SamPrompt.Point(x: $0[0], y: $0[1], label: $1) }
    let box = c.box.map { (x0: $0[0], y0: $0[1], x1: $0[2], y1: $0[3]) }
    return SamPrompt(points: pts, box: box, maskInput: maskInput, multimask: c.multimask)
}

final class TinyViTSamParityTests: XCTestCase {
    static let tinyConfig: ImageEncoderViT.Config = {
        var c = ImageEncoderViT.Config(embedDim: 48, depth: 3, numHeads: 3, globalAttnIndexes: [2])
        c.imgSize = 128; c.outChans = 32; c.windowSize = 3
        return c
    }()

    func loadTinySam() throws -> Sam {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "sam_tiny_vit", withExtension: "pth", subdirectory: "Fixtures"))
        let vb = try WeightLoader(try StateDict(contentsOf: url))
        let sam = try Sam.build(.samViTB, vb, vitConfig: Self.tinyConfig, promptEmbedDim: 32, maskInChans: 8,
                                decoderMLPDim: 64, decoderHeads: 2, iouHeadHiddenDim: 32)
        try vb.finish()
        return sam
    }

    func testTinyViTSamMatchesSegmentAnything() throws {
        let sam = try loadTinySam()
        let golden = try Golden("sam_tiny_vit_golden")
        let spec = try XCTUnwrap(loadCases()["tiny"])
        let image = try fixtureImage("chelsea_crop")
        XCTAssertEqual([image.height, image.width], [spec.height, spec.width])

        // PIL's resize, bit for bit.
        let (nh, nw) = Sam.preprocessShape(height: image.height, width: image.width, longSide: sam.imageSize)
        let resized = PILResample.bilinear(image.pixels, width: image.width, height: image.height, channels: 3, toWidth: nw, toHeight: nh)
        XCTAssertEqual(resized.map(Float.init), try golden.tensor("tiny.resized").data)

        let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
        let refEmb = try golden.tensor("tiny.embedding")
        XCTAssertEqual(emb.embedding.shape, [1] + refEmb.shape)
        XCTAssertLessThanOrEqual(maxAbsDiff(emb.embedding.data, refEmb.data), Tolerance.embeddingRelative * maxAbs(refEmb.data))

        for (i, c) in spec.cases.enumerated() {
            let maskInput = try c.mask_input_from.map { try golden.tensor("tiny.case\($0).low_res").data }
                .map { Tensor(shape: [1, 1, 32, 32], data: Array($0.prefix(32 * 32))) }
            let p = try sam.predict(emb, prompt(c, maskInput: maskInput))
            let refLow = try golden.tensor("tiny.case\(i).low_res")
            XCTAssertEqual(p.lowResLogits.shape, refLow.shape, "case \(i)")
            XCTAssertLessThanOrEqual(maxAbsDiff(p.lowResLogits.data, refLow.data), Tolerance.logitsRelative * maxAbs(refLow.data), "case \(i)")
            XCTAssertLessThanOrEqual(maxAbsDiff(p.iouPredictions, try golden.tensor("tiny.case\(i).iou").data), Tolerance.iouAbsolute, "case \(i)")
            let refMasks = try golden.masks("tiny.case\(i).masks_packed", height: spec.height, width: spec.width)
            XCTAssertEqual(refMasks.count, p.maskCount)
            for (m, ref) in refMasks.enumerated() {
                XCTAssertGreaterThanOrEqual(iou(p.mask(m), ref), Tolerance.maskIoUMinimum, "case \(i) mask \(m)")
            }
        }
    }

    func testBatchedPromptsEqualOneByOne() throws {
        let sam = try loadTinySam()
        let image = try fixtureImage("chelsea_crop")
        let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
        var prompts: [SamPrompt] = []
        for i in 0..<5 {
            let point = SamPrompt.Point(x: Float(10 + 17 * i), y: Float(5 + 13 * i), label: 1)
            prompts.append(SamPrompt(points: [point], multimask: true))
        }
        prompts.append(SamPrompt(box: (x0: 5, y0: 5, x1: 90, y1: 70)))
        let batched = try sam.predict(emb, prompts)
        for (p, b) in zip(prompts, batched) {
            let single = try sam.predict(emb, p)
            XCTAssertLessThanOrEqual(maxAbsDiff(single.lowResLogits.data, b.lowResLogits.data), 1e-5 * max(1, maxAbs(single.lowResLogits.data)))
        }
    }

    func testInvalidPromptsAreRejected() throws {
        let sam = try loadTinySam()
        let image = try fixtureImage("chelsea_crop")
        let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
        XCTAssertThrowsError(try sam.predict(emb, SamPrompt(points: [.init(x: .nan, y: 1, label: 1)]))) {
            guard case let .invalidCoordinate(what, value)? = $0 as? SamError else { return XCTFail("\($0)") }
            XCTAssertEqual(what, "point[0].x")
            XCTAssertTrue(value.isNaN)
        }
        XCTAssertThrowsError(try sam.predict(emb, SamPrompt(points: [.init(x: 500, y: 1, label: 1)])))
        XCTAssertThrowsError(try sam.predict(emb, SamPrompt(points: [.init(x: 5, y: 1, label: 7)])))
        XCTAssertThrowsError(try sam.predict(emb, SamPrompt(box: (x0: 50, y0: 5, x1: 10, y1: 20))))
        XCTAssertThrowsError(try sam.predict(emb, SamPrompt(points: [.init(x: 5, y: 1, label: 1)], maskInput: Tensor(zeros: [1, 1, 8, 8]))))
    }

    func testCheckpointWithMissingTensorNamesIt() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "sam_tiny_vit", withExtension: "pth", subdirectory: "Fixtures"))
        let vb = try WeightLoader(try StateDict(contentsOf: url))
        // Wrong architecture for this checkpoint: ViT-B's real width.
        XCTAssertThrowsError(try Sam.build(.samViTB, vb)) { error in
            XCTAssertTrue("\(error)".contains("image_encoder."), "error should name the tensor path: \(error)")
        }
    }
}

final class LiteMedSAMRealWeightsTests: XCTestCase {
    static var checkpoint: URL {
        let env = ProcessInfo.processInfo.environment
        let home = env["SEGFLOW_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: env["XDG_CACHE_HOME"] ?? (env["HOME"] ?? "/root") + "/.cache").appendingPathComponent("segflow")
        return home.appendingPathComponent("weights/lite_medsam.pth")
    }

    func loadModel() throws -> Sam {
        guard FileManager.default.fileExists(atPath: Self.checkpoint.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("LiteMedSAM checkpoint missing at \(Self.checkpoint.path): Deploy/setup.sh must fetch it in CI")
            }
            throw XCTSkip("LiteMedSAM checkpoint not cached at \(Self.checkpoint.path); run Deploy/setup.sh")
        }
        return try Sam.load(.liteMedSAM, checkpoint: Self.checkpoint)
    }

    func testRealLiteMedSAMMatchesUpstreamOnPhotographs() throws {
        let sam = try loadModel()
        let golden = try Golden("litemedsam_golden")
        let specs = try loadCases()
        for name in ["chelsea", "coffee"] {
            let spec = try XCTUnwrap(specs[name])
            let image = try fixtureImage(name)
            let (nh, nw) = Sam.preprocessShape(height: image.height, width: image.width, longSide: 256)
            let resized = PILResample.bilinear(image.pixels, width: image.width, height: image.height, channels: 3, toWidth: nw, toHeight: nh)
            XCTAssertEqual(resized.map(Float.init), try golden.tensor("\(name).resized").data, "\(name): PIL resize")

            let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            XCTAssertEqual(emb.embedding.shape, [1, 256, 64, 64])
            let refSub = try golden.tensor("\(name).embedding_sub4")
            let stats = try golden.tensor("\(name).embedding_stats").data  // sum, abs-sum, abs-max
            let err = maxAbsDiff(subsample(emb.embedding, step: 4), refSub.data)
            XCTAssertLessThanOrEqual(err, Tolerance.embeddingRelative * stats[2], "\(name): embedding")

            for (i, c) in spec.cases.enumerated() {
                let p = try sam.predict(emb, prompt(c))
                let refLow = try golden.tensor("\(name).case\(i).low_res_sub2")
                let lowErr = maxAbsDiff(subsample(p.lowResLogits, step: 2), refLow.data)
                XCTAssertLessThanOrEqual(lowErr, Tolerance.logitsRelative * maxAbs(refLow.data), "\(name) case \(i): logits")
                XCTAssertLessThanOrEqual(maxAbsDiff(p.iouPredictions, try golden.tensor("\(name).case\(i).iou").data),
                                         Tolerance.iouAbsolute, "\(name) case \(i): iou")
                let refMasks = try golden.masks("\(name).case\(i).masks_packed", height: spec.height, width: spec.width)
                XCTAssertEqual(refMasks.count, p.maskCount)
                for (m, ref) in refMasks.enumerated() {
                    XCTAssertGreaterThanOrEqual(iou(p.mask(m), ref), Tolerance.maskIoUMinimum, "\(name) case \(i) mask \(m)")
                }
            }
        }
    }
}
