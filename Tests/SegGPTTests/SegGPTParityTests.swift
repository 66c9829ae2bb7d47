import Checkpoint
import Foundation
import Imaging
import SegGPT
import Tensor
import TestSupport
import XCTest

/// Parity with transformers' SegGptForImageSegmentation (original ensemble rule patched in)
/// and with the original SegGPT / Painter forward, on the tiny random models and goldens of
/// Tests/Reference/make_seggpt_fixtures.py.
final class SegGPTParityTests: XCTestCase {
    func testPreprocessingMatchesSegGptImageProcessorPil() throws {
        let g = try Fixtures.golden()
        let p = try Fixtures.hfModel.get().processor
        XCTAssertEqual(p.size.h, 32); XCTAssertEqual(p.size.w, 32); XCTAssertEqual(p.resample, .bicubic)
        for name in ["query", "prompt_a", "prompt_b"] {
            let ours = p.preprocess(image: try Fixtures.image(name))
            assertClose(ours, squeeze(try g.t("\(name)_pixel_values_hfirst")),
                        tolerance: Tolerance.pixelValues, "\(name) pixel values (published Pillow pass order)")
            assertClose(ours, squeeze(try g.t("\(name)_pixel_values")),
                        tolerance: Tolerance.pillow13PassOrder, "\(name) pixel values vs SegGptImageProcessorPil on Pillow 13")
        }
        assertClose(p.preprocess(target: .binaryMask(try Fixtures.mask("mask_a"))), squeeze(try g.t("mask_a_pixel_values")),
                    tolerance: Tolerance.pixelValues, "binary mask a")
        assertClose(p.preprocess(target: .binaryMask(try Fixtures.maskB())), squeeze(try g.t("mask_b_pixel_values")),
                    tolerance: Tolerance.pixelValues, "binary mask b")
        let classes = try Fixtures.classes("classes_a", numLabels: Fixtures.numLabels)
        assertClose(p.preprocess(target: .classMap(classes)), squeeze(try g.t("classes_a_pixel_values")),
                    tolerance: Tolerance.pixelValues, "class map a (build_palette colours)")
    }

    func testPaletteIsBuildPalette() {
        // json from the reference script: build_palette(3)
        let pal = SegGPTProcessor.palette(numLabels: 3).map { [Int($0.r), Int($0.g), Int($0.b)] }
        XCTAssertEqual(pal, [[0, 0, 0], [255, 255, 255], [255, 255, 127], [255, 127, 255]])
        XCTAssertEqual(SegGPTProcessor.palette(numLabels: 150).count, 151)
    }

    /// Inputs from the goldens (so the forward is tested on exactly the reference's pixels).
    func inputs(_ g: StateDict, prompts: [(String, String)]) throws -> (Tensor, Tensor, Tensor) {
        let q = try g.t("query_pixel_values")
        let n = prompts.count
        let qs = Ops.concat(Array(repeating: q, count: n), axis: 0)
        let pi = Ops.concat(try prompts.map { try g.t("\($0.0)_pixel_values") }, axis: 0)
        let pm = Ops.concat(try prompts.map { try g.t("\($0.1)_pixel_values") }, axis: 0)
        return (qs, pi, pm)
    }

    func network(_ m: SegGPT) throws -> SegGptForImageSegmentation {
        try XCTUnwrap(m.segGptNetwork, "not a SegGPT network")
    }

    func testOneShotInstanceWholeCanvasFromHFDirectory() throws {
        let m = try Fixtures.hfModel.get()
        XCTAssertEqual(m.kind, .seggpt); XCTAssertEqual(m.names, .transformers)
        let g = try Fixtures.golden()
        let (q, pi, pm) = try inputs(g, prompts: [("prompt_a", "mask_a")])
        let pred = try network(m)(pixelValues: q, promptPixelValues: pi, promptMasks: pm, embeddingType: .instance)
        assertClose(pred, try g.t("one_shot_instance.pred_masks"), tolerance: Tolerance.prediction, "one-shot instance pred_masks")
        // The query-half-only decoder gives the same pixels.
        let half = try m.predictQueryHalf(query: squeeze(q), prompts: [(squeeze(pi), squeeze(pm))], embeddingType: .instance)
        assertClose(half, try g.t("one_shot_instance.query_half"), tolerance: Tolerance.prediction, "one-shot instance query half")
    }

    func testOneShotSemanticFromSingleSafetensors() throws {
        let m = try SegGPT.load(url: Fixtures.url("seggpt_tiny/model.safetensors"), config: Fixtures.url("seggpt_tiny_config.json"))
        let g = try Fixtures.golden()
        let half = try m.predictQueryHalf(query: squeeze(try g.t("query_pixel_values")),
                                          prompts: [(squeeze(try g.t("prompt_a_pixel_values")), squeeze(try g.t("mask_a_pixel_values")))],
                                          embeddingType: .semantic)
        assertClose(half, try g.t("one_shot_semantic.query_half"), tolerance: Tolerance.prediction, "one-shot semantic")
        // Instance and semantic type tokens really differ.
        XCTAssertGreaterThan(relativeError(half, try g.t("one_shot_instance.query_half"), "semantic vs instance"), 1e-3)
    }

    func testTwoPromptsOriginalEnsembleRule() throws {
        let m = try Fixtures.hfModel.get()
        let g = try Fixtures.golden()
        let prompts = try [("prompt_a", "mask_a"), ("prompt_b", "mask_b")].map {
            (squeeze(try g.t("\($0.0)_pixel_values")), squeeze(try g.t("\($0.1)_pixel_values")))
        }
        let half = try m.predictQueryHalf(query: squeeze(try g.t("query_pixel_values")), prompts: prompts, embeddingType: .instance)
        assertClose(half, try g.t("two_prompts_instance.query_half"), tolerance: Tolerance.prediction,
                    "two prompts, original ensemble rule")
        // transformers 5.24's own rule (cross-stream mean at the merge layer) gives a visibly
        // different answer; Segflow follows the original.
        XCTAssertGreaterThan(relativeError(half, try g.t("two_prompts_instance_transformers_rule.query_half"),
                                           "two prompts vs transformers' rule"), 100 * Tolerance.prediction)
    }

    func testIdenticalPromptsReproduceOnePrompt() throws {
        let m = try Fixtures.hfModel.get()
        let g = try Fixtures.golden()
        let q = squeeze(try g.t("query_pixel_values"))
        let pair = (squeeze(try g.t("prompt_a_pixel_values")), squeeze(try g.t("mask_a_pixel_values")))
        let one = try m.predictQueryHalf(query: q, prompts: [pair])
        let two = try m.predictQueryHalf(query: q, prompts: [pair, pair])
        let three = try m.predictQueryHalf(query: q, prompts: [pair, pair, pair])
        assertClose(two, one, tolerance: Tolerance.identicalPrompts, "two identical prompts vs one")
        // Control: the same batch of two without ensembling shows the batch-size drift alone.
        let net = try network(m)
        let b2 = { (t: Tensor) in Ops.concat([t.reshaped([1, 3, 32, 32]), t.reshaped([1, 3, 32, 32])], axis: 0) }
        let plain = try net(pixelValues: b2(q), promptPixelValues: b2(pair.0), promptMasks: b2(pair.1), featureEnsemble: false)
        let plainHalf = Ops.slice(squeeze(Ops.slice(plain, axis: 0, end: 1)), axis: 1, start: 32)
        assertClose(plainHalf, one, tolerance: Tolerance.identicalPrompts, "control: batch of two, no ensemble, vs one")
        // Three: a sum of three equal floats ÷ 3 can be one ulp off per layer; still tight.
        assertClose(three, one, tolerance: 10 * Tolerance.identicalPrompts, "three identical prompts vs one")
    }

    func testClassMapPromptAndPaletteDecoding() throws {
        let m = try Fixtures.hfModel.get()
        let g = try Fixtures.golden()
        let query = try Fixtures.image("query")
        let classes = try Fixtures.classes("classes_a", numLabels: Fixtures.numLabels)
        let out = try m.segment(query: query, prompts: [SegGPTPrompt(image: try Fixtures.image("prompt_a"), target: .classMap(classes))],
                                embeddingType: .semantic)
        assertClose(out.raw, try g.t("e2e_classes_semantic.query_half"), tolerance: Tolerance.prediction, "class-map prompt, semantic")
        let map = try XCTUnwrap(out.classMap)
        XCTAssertNil(out.mask)
        XCTAssertEqual([map.height, map.width], [45, 37])
        // Decoding the golden prediction itself must match transformers' post-processing exactly.
        let fromGolden = m.processor.classMap(try g.t("classes_semantic.query_half"), numLabels: Fixtures.numLabels, width: 37, height: 45)
        XCTAssertEqual(fromGolden.labels.map(Float.init), try g.t("classes_semantic.class_map").data,
                       "post_process_semantic_segmentation class map")
        let agree = zip(map.labels, fromGolden.labels).filter { $0 == $1 }.count
        print("[SegGPT parity] class map from Swift prediction: \(agree)/\(map.labels.count) pixels equal the golden")
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(map.labels.count), 0.99)
        XCTAssertGreaterThan(out.timings.forward, 0)
    }

    func testSegmentBinaryMaskEndToEnd() throws {
        let m = try Fixtures.hfModel.get()
        let g = try Fixtures.golden()
        let out = try m.segment(query: try Fixtures.image("query"),
                                prompts: [SegGPTPrompt(image: try Fixtures.image("prompt_a"), target: .binaryMask(try Fixtures.mask("mask_a")))])
        assertClose(out.raw, try g.t("e2e_one_shot_instance.query_half"), tolerance: Tolerance.prediction, "segment() raw")
        assertClose(m.processor.unnormalize(try g.t("one_shot_instance.query_half")), try g.t("one_shot_instance.query_rgb"),
                    tolerance: 1e-6, "unnormalised query half")
        let mask = try XCTUnwrap(out.mask)
        let golden = try g.t("one_shot_instance.mask")
        let fromGolden = m.processor.binaryMask(try g.t("one_shot_instance.query_half"), width: 37, height: 45)
        XCTAssertEqual(fromGolden.bits.map(Float.init), golden.data, "mask decoded from the golden prediction")
        let agree = zip(mask.bits.map(Float.init), golden.data).filter { $0 == $1 }.count
        print("[SegGPT parity] binary mask: \(agree)/\(golden.count) pixels equal the golden")
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(golden.count), 0.99)

        let two = try m.segment(query: try Fixtures.image("query"), prompts: [
            SegGPTPrompt(image: try Fixtures.image("prompt_a"), target: .binaryMask(try Fixtures.mask("mask_a"))),
            SegGPTPrompt(image: try Fixtures.image("prompt_b"), target: .binaryMask(try Fixtures.maskB())),
        ])
        assertClose(two.raw, try g.t("e2e_two_prompts_instance.query_half"), tolerance: Tolerance.prediction, "segment() two prompts")
    }

    func testOriginalPthNamesGiveTheSameModel() throws {
        let m = try SegGPT.load(url: Fixtures.url("seggpt_tiny_original.pth"), config: Fixtures.url("seggpt_tiny_config.json"))
        XCTAssertEqual(m.kind, .seggpt); XCTAssertEqual(m.names, .original)
        let g = try Fixtures.golden()
        let q = squeeze(try g.t("query_pixel_values"))
        let a = (squeeze(try g.t("prompt_a_pixel_values")), squeeze(try g.t("mask_a_pixel_values")))
        let b = (squeeze(try g.t("prompt_b_pixel_values")), squeeze(try g.t("mask_b_pixel_values")))
        assertClose(try m.predictQueryHalf(query: q, prompts: [a], embeddingType: .instance),
                    try g.t("one_shot_instance.query_half"), tolerance: Tolerance.prediction, ".pth one-shot instance")
        assertClose(try m.predictQueryHalf(query: q, prompts: [a], embeddingType: .semantic),
                    try g.t("one_shot_semantic.query_half"), tolerance: Tolerance.prediction, ".pth one-shot semantic")
        assertClose(try m.predictQueryHalf(query: q, prompts: [a, b]),
                    try g.t("two_prompts_instance.query_half"), tolerance: Tolerance.prediction, ".pth two prompts")
        let full = try network(m)(pixelValues: q.reshaped([1, 3, 32, 32]), promptPixelValues: a.0.reshaped([1, 3, 32, 32]),
                                  promptMasks: a.1.reshaped([1, 3, 32, 32]))
        assertClose(full, try g.t("one_shot_instance.pred_masks"), tolerance: Tolerance.prediction, ".pth whole canvas")
    }

    func testPainterMatchesOriginalForward() throws {
        let m = try SegGPT.load(url: Fixtures.url("painter_tiny.pth"), config: Fixtures.url("seggpt_tiny_config.json"))
        XCTAssertEqual(m.kind, .painter)
        let net = try XCTUnwrap(m.painterNetwork, "not Painter")
        let g = try Fixtures.golden()
        let q = try g.t("query_pixel_values"), pi = try g.t("prompt_a_pixel_values"), pm = try g.t("mask_a_pixel_values")
        let pred = try net(pixelValues: q, promptPixelValues: pi, promptMasks: pm)
        assertClose(pred, try g.t("painter.pred"), tolerance: Tolerance.prediction, "Painter whole canvas")
        let raw = try m.predictQueryHalf(query: squeeze(q), prompts: [(squeeze(pi), squeeze(pm))])
        assertClose(raw, Ops.slice(squeeze(try g.t("painter.pred")), axis: 1, start: 32), tolerance: Tolerance.prediction,
                    "Painter query half")
        // Depth and restoration decoding of the golden prediction.
        let goldenHalf = Ops.slice(squeeze(try g.t("painter.pred")), axis: 1, start: 32)
        assertClose(m.processor.depthMetres(goldenHalf, width: 37, height: 45), try g.t("painter.depth_metres"),
                    tolerance: Tolerance.decoded, "Painter depth (metres)")
        let restored = m.processor.restoredImage(goldenHalf, width: 37, height: 45)
        let ref = try g.t("painter.restored")  // [45, 37, 3] uint8 values
        let ours = restored.pixels.map(Float.init)
        let maxDiff = zip(ours, ref.data).map { abs($0 - $1) }.max() ?? 0
        print("[SegGPT parity] Painter restored image: max |Δ| = \(maxDiff) levels")
        XCTAssertLessThanOrEqual(maxDiff, 1, "truncation to uint8 may flip one level where torch's bicubic rounds differently")
        // paint() end to end.
        let out = try m.paint(query: try Fixtures.image("query"),
                              prompt: SegGPTPrompt(image: try Fixtures.image("prompt_a"), target: .binaryMask(try Fixtures.mask("mask_a"))),
                              task: .depth)
        // (The photo preprocessing differs from the Pillow-13 goldens, see `pillow13PassOrder`,
        // so paint() is checked for consistency with its own raw output.)
        assertClose(try XCTUnwrap(out.depthMetres), m.processor.depthMetres(out.raw, width: 37, height: 45),
                    tolerance: 0, "paint() depth = depthMetres(raw)")
        XCTAssertThrowsError(try m.predictQueryHalf(query: squeeze(q), prompts: [(squeeze(pi), squeeze(pm)), (squeeze(pi), squeeze(pm))]))
    }

    func testPositionEmbeddingInterpolationIsBicubic() throws {
        let m = try Fixtures.hfModel.get()
        let emb = try network(m).model.embeddings
        XCTAssertEqual(emb.interpolatedPositionEmbeddings.shape, [8 * 4, 32])
        // 4x4 → 8x4: rows are interpolated, columns copied (same width): column x of the
        // output equals bicubic along y of the trained column x.
        let trained = Ops.slice(emb.positionEmbeddings, axis: 1, start: 1).reshaped([4, 4, 32])
        let col0 = Ops.permute(Ops.slice(trained, axis: 1, end: 1).reshaped([1, 4, 1, 32]), [0, 3, 1, 2])
        let up = Ops.permute(Ops.interpolateBicubic(col0, size: Size2(8, 1)), [0, 2, 3, 1]).reshaped([8, 32])
        let ours = Ops.slice(emb.interpolatedPositionEmbeddings.reshaped([8, 4, 32]), axis: 1, end: 1).reshaped([8, 32])
        assertClose(ours, up, tolerance: 0, "position grid column 0")
    }
}
