import Checkpoint
import Foundation
import Imaging
import SAM
import SAM2
import Tensor
import TestSupport
import XCTest

/// Parity of SAM 2 image mode with transformers 5.x `Sam2Model` (and, through the same
/// weights under the official names, with facebookresearch/sam2's modules) on golden files
/// made by Tests/Reference/make_sam2_fixtures.py.
enum Tolerance {
    /// Backbone and neck, relative to each tensor's max: float32 with other summation orders
    /// (BLAS blocking, fused attention, bicubic position grid) drifts ~1e-6 per block; 7
    /// blocks plus the neck stay far below 1e-4, while any wrong name, pooling, window or
    /// top-down rule is an O(1e-1) error.
    static let features: Float = 1e-4
    /// Prompt embeddings: sin/cos of the same float32 products; only libm's last ulp differs.
    static let promptEmbedding: Float = 1e-5
    /// Mask logits, IoU and object score after the two-way transformer and upscaling:
    /// the features' budget plus the decoder's own reordering.
    static let decoder: Float = 1e-4
    /// Pixel values: the processor resizes uint8 with torchvision's antialiased bilinear,
    /// ported from Pillow's fixed-point resampler as Segflow's PILResample is; then the same
    /// two float32 roundings (÷255, (x − mean)/std).
    static let pixelValues: Float = 1e-6
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        let base = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures")
        let u = base.appendingPathComponent(name)
        XCTAssertTrue(FileManager.default.fileExists(atPath: u.path), "fixture \(name) missing")
        return u
    }
    static func golden() throws -> StateDict { try StateDict(contentsOf: url("sam2_golden.safetensors")) }
}

final class Sam2ParityTests: XCTestCase {
    static let hf = Result { try Sam2.load(url: Fixtures.url("sam2_tiny")) }
    static let goldenDict = Result { try Fixtures.golden() }

    var model: Sam2 { get throws { try Self.hf.get() } }
    func g(_ name: String) throws -> Tensor { try Self.goldenDict.get().tensor(named: name) }

    func embedding() throws -> Sam2ImageEmbedding {
        let size = try g("original_size").data
        return try model.embed(pixels: g("pixel_values"), originalSize: (Int(size[0]), Int(size[1])))
    }

    func testPreprocessingMatchesTheProcessor() throws {
        let img = try PNG.decodeRGB(contentsOfFile: Fixtures.url("image.png").path)
        let px = try model.preprocess(rgb: img.pixels, width: img.width, height: img.height)
        assertClose(px, try g("pixel_values"), tolerance: Tolerance.pixelValues, "pixel_values")
    }

    func testBackboneStagesAndNeckLevels() throws {
        let (stages, levels) = try model.features(g("pixel_values"))
        XCTAssertEqual(stages.count, 4)
        for (i, s) in stages.enumerated() {
            assertClose(s, try g("backbone.stage\(i)"), tolerance: Tolerance.features, "backbone stage \(i)")
        }
        XCTAssertEqual(levels.count, 3)
        for (i, l) in levels.enumerated() {
            assertClose(Ops.permute(l, [0, 3, 1, 2]), try g("fpn.level\(i)"), tolerance: Tolerance.features, "fpn level \(i)")
        }
    }

    func testImageEmbeddings() throws {
        let e = try embedding()
        assertClose(e.highRes0, try g("image_embeddings.0"), tolerance: Tolerance.features, "image_embeddings[0] (conv_s0)")
        assertClose(e.highRes1, try g("image_embeddings.1"), tolerance: Tolerance.features, "image_embeddings[1] (conv_s1)")
        assertClose(try model.imageModeEmbedding(e), try g("image_embeddings.2"), tolerance: Tolerance.features, "image_embeddings[2] (+ no memory)")
        assertClose(try model.imagePositionalEncoding, try g("image_pe"), tolerance: Tolerance.promptEmbedding, "image PE")
    }

    static let cases = ["point", "box", "box_multi", "points_box", "mask_input"]

    /// The prompt of golden case `name`, in original-image coordinates.
    func prompt(_ name: String) throws -> SamPrompt {
        let dict = try Self.goldenDict.get()
        var p = SamPrompt()
        if dict.contains("\(name).input_points_original") {
            let pts = try g("\(name).input_points_original").data, labels = try g("\(name).input_labels").data
            p.points = (0..<labels.count).map { SamPrompt.Point(x: pts[2 * $0], y: pts[2 * $0 + 1], label: Int(labels[$0])) }
        }
        if dict.contains("\(name).input_boxes_original") {
            let b = try g("\(name).input_boxes_original").data
            p.box = (b[0], b[1], b[2], b[3])
        }
        if dict.contains("\(name).input_masks") { p.maskInput = try g("\(name).input_masks") }
        p.multimask = try g("\(name).pred_masks").shape[2] > 1
        return p
    }

    func testPromptEmbeddings() throws {
        let e = try embedding()
        for name in Self.cases {
            let p = try prompt(name)
            let sparse = try model.sparseEmbedding(p, e)
            let ref = try g("\(name).sparse")
            assertClose(sparse.reshaped(ref.shape), ref, tolerance: Tolerance.promptEmbedding, "\(name) sparse")
            let g4 = try model.config.embeddingGrid * 4
            let dense = try model.promptEncoder.denseEmbedding(mask: p.maskInput?.reshaped([1, 1, g4, g4]))
            assertClose(dense, try g("\(name).dense"), tolerance: Tolerance.decoder, "\(name) dense")
        }
    }

    func testPredictionsMatchTransformers() throws {
        try checkPredictions(try model, label: "transformers layout")
    }

    func checkPredictions(_ m: Sam2, label: String) throws {
        let size = try g("original_size").data
        let e = m.embed(pixels: try g("pixel_values"), originalSize: (Int(size[0]), Int(size[1])))
        for name in Self.cases {
            let pred = try m.predict(e, prompt(name))
            let refMasks = try g("\(name).pred_masks")
            let count = refMasks.shape[2]
            assertClose(pred.lowResLogits.reshaped(refMasks.shape), refMasks, tolerance: Tolerance.decoder, "\(label) \(name) low-res logits")
            assertClose(Tensor(shape: [1, 1, count], data: pred.iouPredictions), try g("\(name).iou_scores"),
                        tolerance: Tolerance.decoder, "\(label) \(name) iou")
            let obj = try g("\(name).object_score_logits")
            assertClose(Tensor(shape: obj.shape, data: [pred.objectScoreLogit]), obj, tolerance: Tolerance.decoder, "\(label) \(name) object score")
            let full = try g("\(name).masks")
            assertClose(pred.logits.reshaped(full.shape), full, tolerance: Tolerance.decoder, "\(label) \(name) masks at original size")
        }
    }

    /// The same weights under facebookresearch/sam2's names in `{"model": state_dict}`
    /// (`sam2.1_hiera_*.pt`) give the same answers; the geometry comes from the config file.
    func testOfficialCheckpointLayoutGivesTheSameAnswers() throws {
        let m = try Sam2.load(url: Fixtures.url("sam2_tiny_original.pt"), config: Fixtures.url("sam2_tiny/config.json"))
        XCTAssertEqual(m.names, .original)
        try checkPredictions(m, label: "official layout")
    }
}

final class Sam2LoaderTests: XCTestCase {
    func tensors() throws -> [(name: String, tensor: Tensor)] {
        let sd = try StateDict(contentsOf: Fixtures.url("sam2_tiny/model.safetensors"))
        return try sd.names.map { ($0, try sd.tensor(named: $0)) }
    }
    func config() throws -> Sam2Config {
        try Sam2Config(json: Data(contentsOf: Fixtures.url("sam2_tiny/config.json")), path: "config.json")
    }
    func build(_ t: [(name: String, tensor: Tensor)]) throws -> Sam2 {
        try Sam2.build(stateDict: StateDict(bytes: SafeTensorsWriter.encode(t)), config: config())
    }

    func testAMissingTensorIsNamed() throws {
        let t = try tensors().filter { $0.name != "mask_decoder.conv_s1.bias" }
        XCTAssertThrowsError(try build(t)) { e in
            XCTAssertTrue("\(e)".contains("mask_decoder.conv_s1.bias"), "\(e)")
        }
    }

    func testAMisShapedTensorIsNamed() throws {
        let t = try tensors().map { $0.name == "vision_encoder.backbone.pos_embed" ? ($0.name, Tensor(zeros: [1, 16, 5, 5])) : $0 }
        XCTAssertThrowsError(try build(t)) { e in
            XCTAssertTrue("\(e)".contains("vision_encoder.backbone.pos_embed"), "\(e)")
        }
    }

    func testAnUnexpectedTensorIsNamedButVideoModulesAreAccepted() throws {
        var t = try tensors()
        t.append(("memory_attention.layers.0.self_attn.q_proj.weight", Tensor(zeros: [4, 4])))
        t.append(("no_object_pointer", Tensor(zeros: [1, 32])))
        XCTAssertNoThrow(try build(t), "video-only modules are skipped in image mode")
        t.append(("mask_decoder.extra_head.weight", Tensor(zeros: [2, 2])))
        XCTAssertThrowsError(try build(t)) { e in
            XCTAssertTrue("\(e)".contains("mask_decoder.extra_head.weight"), "\(e)")
        }
    }

    func testNotASam2CheckpointSaysWhatItExpected() throws {
        let sd = try StateDict(bytes: SafeTensorsWriter.encode([("encoder.weight", Tensor(zeros: [2]))]))
        XCTAssertThrowsError(try Sam2.build(stateDict: sd, config: .hieraTiny)) { e in
            XCTAssertTrue("\(e)".contains("vision_encoder.backbone") && "\(e)".contains("encoder.weight"), "\(e)")
        }
    }

    func testConfigErrorsNameTheKey() throws {
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("sam2_tiny/config.json"))) as? [String: Any])
        var vision = try XCTUnwrap(root["vision_config"] as? [String: Any])
        var bb = try XCTUnwrap(vision["backbone_config"] as? [String: Any])
        bb["num_attention_heads_per_stage"] = [1, 2, 4]
        vision["backbone_config"] = bb
        root["vision_config"] = vision
        let data = try JSONSerialization.data(withJSONObject: root)
        XCTAssertThrowsError(try Sam2Config(json: data, path: "cfg.json")) { e in
            XCTAssertTrue("\(e)".contains("num_attention_heads_per_stage") && "\(e)".contains("cfg.json"), "\(e)")
        }
        XCTAssertThrowsError(try Sam2Config(json: Data("{\"model_type\": \"sam\"}".utf8), path: "x.json")) { e in
            XCTAssertTrue("\(e)".contains("model_type"), "\(e)")
        }
        XCTAssertThrowsError(try Sam2Config(json: Data("[1]".utf8), path: "y.json")) { e in
            XCTAssertTrue("\(e)".contains("y.json"), "\(e)")
        }
    }

    func testOfficialPresetsHaveTheUpstreamGeometry() throws {
        // ref: sam2/configs/sam2.1/*.yaml (embed_dim, num_heads, stages, global_att_blocks)
        XCTAssertEqual(Sam2Config.hieraTiny.hiera.blocksPerStage.reduce(0, +), 12)
        XCTAssertEqual(Sam2Config.hieraSmall.hiera.blocksPerStage.reduce(0, +), 16)
        XCTAssertEqual(Sam2Config.hieraBasePlus.hiera.blocksPerStage.reduce(0, +), 24)
        XCTAssertEqual(Sam2Config.hieraLarge.hiera.blocksPerStage.reduce(0, +), 48)
        for c in [Sam2Config.hieraTiny, .hieraSmall, .hieraBasePlus, .hieraLarge] {
            XCTAssertNoThrow(try c.validate(path: "preset"))
            XCTAssertEqual(c.embeddingGrid, 64)
        }
        // Every tensor name and shape of the full-size tiny model is what a real file holds:
        // a synthesizing loader records them; spot-check the ones the yaml fixes.
        let vb = WeightLoader.synthesizing(zeros: true)
        _ = try Sam2(vb, config: .hieraTiny, names: .original)
        let shapes = Dictionary(vb.synthesizedTensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(shapes["image_encoder.trunk.pos_embed"], [1, 96, 7, 7])
        XCTAssertEqual(shapes["image_encoder.trunk.pos_embed_window"], [1, 96, 8, 8])
        XCTAssertEqual(shapes["image_encoder.trunk.blocks.11.attn.qkv.weight"], [2304, 768])
        XCTAssertEqual(shapes["image_encoder.neck.convs.0.conv.weight"], [256, 768, 1, 1])
        XCTAssertEqual(shapes["sam_mask_decoder.conv_s0.weight"], [32, 256, 1, 1])
        XCTAssertEqual(shapes["no_mem_embed"], [1, 1, 256])
    }
}
