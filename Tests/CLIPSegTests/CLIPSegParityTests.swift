import Checkpoint
import CLIPSeg
import Foundation
import Imaging
import Tensor
import TestSupport
import XCTest

/// Parity with transformers' CLIPSegForImageSegmentation on the tiny random model and
/// goldens made by Tests/Reference/make_clipseg_fixtures.py.
final class CLIPSegParityTests: XCTestCase {
    func testPreprocessingMatchesViTImageProcessorBitExactly() throws {
        let g = try Fixtures.golden()
        let image = try Fixtures.image("chelsea_crop")
        // The model input of the tiny fixtures (96×96) ...
        assertClose(CLIPSegProcessor.preprocess(image, size: 96), try g.t("pixel_values"),
                    tolerance: Tolerance.pixelValues, "pixel values 96")
        // ... and rd64-refined's 352×352, compared on every 5th row and column.
        let full = CLIPSegProcessor.preprocess(image, size: 352)
        let sub = Ops.slice(Ops.slice(full, axis: 2, step: 5), axis: 3, step: 5)
        assertClose(sub, try g.t("pixel_values_352_every5"), tolerance: Tolerance.pixelValues, "pixel values 352 (every 5th)")
        assertClose(CLIPSegProcessor.preprocess(try Fixtures.image("visual_prompt"), size: 96), try g.t("prompt_pixel_values"),
                    tolerance: Tolerance.pixelValues, "visual prompt pixel values")
    }

    func testPositionEmbeddingInterpolationIsTorchBicubic() throws {
        let model = try Fixtures.model.get()
        let g = try Fixtures.golden()
        let emb = try XCTUnwrap(model.visionEncoder).visionModel.embeddings
        // 4×4 trained grid → 6×6 for a 96×96 input.
        assertClose(emb.interpolatedPositionEmbedding(height: 96, width: 96), try g.t("position_embedding_interpolated"),
                    tolerance: Tolerance.positionEmbedding, "interpolated position embedding")
        // 4×4 → 3×5: downscaling and a non-square grid (48×80 input).
        assertClose(emb.interpolatedPositionEmbedding(height: 48, width: 80), try g.t("position_embedding_interpolated_48x80"),
                    tolerance: Tolerance.positionEmbedding, "interpolated position embedding 48x80")
        assertClose(emb(try g.t("pixel_values")), try g.t("embeddings"), tolerance: Tolerance.embeddings, "vision embeddings")
    }

    func testVisionActivationsPooledAndImageFeatures() throws {
        let vision = try XCTUnwrap(try Fixtures.model.get().visionEncoder)
        let g = try Fixtures.golden()
        let out = try vision(try g.t("pixel_values"))
        XCTAssertEqual(out.activations.count, 3)
        for k in 0..<3 {
            assertClose(out.activations[k], try g.t("activations.\(k)"), tolerance: Tolerance.encoderFeatures,
                        "activation \(k) (encoder layer \(CLIPSegConfig.tinyTest.extractLayers[k]))")
        }
        assertClose(out.pooledOutput, try g.t("vision_pooled"), tolerance: Tolerance.encoderFeatures, "vision pooled output")
        assertClose(out.imageFeatures, try g.t("image_features"), tolerance: Tolerance.conditionalEmbeddings, "image features")
        // The early-exit path (no pooled output) returns the very same activations.
        let early = try vision.activations(try g.t("pixel_values"))
        for k in 0..<3 { XCTAssertEqual(early[k], out.activations[k], "early-exit activation \(k)") }
        // CLIP's vision tower itself: the last layer's output is the deepest activation (layer 3
        // of 4), and an early-exit run has no last hidden state or pooled output.
        let full = try vision.visionModel(try g.t("pixel_values"), collect: [3], pooled: true)
        XCTAssertEqual(full.lastHiddenState, out.activations[2])
        XCTAssertEqual(full.pooledOutput, out.pooledOutput)
        let partial = try vision.visionModel(try g.t("pixel_values"), collect: [1], pooled: false)
        XCTAssertEqual(partial.hiddenStates, [out.activations[0]])
        XCTAssertNil(partial.lastHiddenState)
        XCTAssertNil(partial.pooledOutput)
    }

    func testEmbedFromPhotoMatchesGoldenActivations() throws {
        let vision = try XCTUnwrap(try Fixtures.model.get().visionEncoder)
        let g = try Fixtures.golden()
        let e = try vision.embed(try Fixtures.image("chelsea_crop"))
        XCTAssertEqual([e.originalHeight, e.originalWidth, e.inputHeight, e.inputWidth, e.gridHeight, e.gridWidth],
                       [100, 120, 96, 96, 6, 6])
        for k in 0..<3 {
            assertClose(e.activations[k], try g.t("activations.\(k)"), tolerance: Tolerance.encoderFeatures, "embed activation \(k)")
        }
    }

    func testTextConditionalEmbeddingsFirstEOSRule() throws {
        let text = try XCTUnwrap(try Fixtures.model.get().textEncoder)
        let ids = try Fixtures.cases().input_ids
        XCTAssertEqual(try text.textModel.pooledIndex(ids[1]), 4, "first eos (998), not the larger added token 999")
        assertClose(try text.textFeatures(ids), try Fixtures.golden().t("text_features"),
                    tolerance: Tolerance.conditionalEmbeddings, "text features (eos 998)")
    }

    func testTextConditionalEmbeddingsLegacyArgmaxRule() throws {
        // rd64-refined's config has eos_token_id = 2, which selects upstream's argmax rule.
        var config = CLIPSegConfig.tinyTest
        config.text.eosTokenID = 2
        let text = try CLIPSegTextEncoder(try WeightLoader(try Fixtures.checkpoint()), config: config)
        let ids = try Fixtures.cases().input_ids
        XCTAssertEqual(try text.textModel.pooledIndex(ids[1]), 1, "argmax picks the added token 999")
        assertClose(try text.textFeatures(ids), try Fixtures.golden().t("text_features_legacy_eos"),
                    tolerance: Tolerance.conditionalEmbeddings, "text features (legacy argmax pooling)")
    }

    func testTextPromptLogitsOneImageManyPrompts() throws {
        let model = try Fixtures.model.get()
        let g = try Fixtures.golden()
        let ids = try Fixtures.cases().input_ids
        // Upstream ran the image twice (batch 2); the decoder head shares one image's activations.
        let acts = try XCTUnwrap(model.visionEncoder).activations(try g.t("pixel_values"))
        let cond = try model.conditionalEmbeddings(.text(ids))
        let logits = try XCTUnwrap(model.decoder)(activations: acts, conditionalEmbeddings: cond, gridHeight: 6, gridWidth: 6)
        assertClose(logits, try g.t("logits_text"), tolerance: Tolerance.logits, "logits (text prompts, shared activations)")
    }

    func testVisualPromptLogitsThroughFullModel() throws {
        let model = try Fixtures.model.get()
        let g = try Fixtures.golden()
        let prompt = try g.t("prompt_pixel_values")
        assertClose(try model.conditionalEmbeddings(.visualPrompt(prompt)), try g.t("visual_prompt_features"),
                    tolerance: Tolerance.conditionalEmbeddings, "visual prompt features")
        let logits = try model(pixelValues: try g.t("pixel_values"), conditioning: .visualPrompt(prompt))
        assertClose(logits, try g.t("logits_visual"), tolerance: Tolerance.logits, "logits (visual prompt)")
    }

    func testDecoderFromEncodedEmbeddingMatchesDirect() throws {
        let model = try Fixtures.model.get()
        let g = try Fixtures.golden()
        let e = try XCTUnwrap(model.visionEncoder).embed(try Fixtures.image("chelsea_crop"))
        let decoded = try CLIPSegImageEmbedding.decode(e.encoded(dtype: .f32)).embedding
        let cond = try model.conditionalEmbeddings(.visualPrompt(try g.t("prompt_pixel_values")))
        let logits = try XCTUnwrap(model.decoder)(decoded, conditionalEmbeddings: cond)
        assertClose(logits, try g.t("logits_visual"), tolerance: Tolerance.logits, "logits from a decoded embedding")
    }

    func testPostprocessingToOriginalSize() throws {
        let g = try Fixtures.golden()
        let expected = try g.t("probabilities_original_size").reshaped([100, 120])
        let probs = CLIPSegProcessor.probabilities(logits: try g.t("logits_visual"), originalHeight: 100, originalWidth: 120)
        assertClose(probs, expected, tolerance: Tolerance.probabilities, "probabilities at original size")
        let threshold = try Fixtures.cases().threshold
        XCTAssertEqual(threshold, CLIPSegProcessor.defaultThreshold)
        let mask = try CLIPSegProcessor.mask(probabilities: probs)
        var fg = 0, mismatches = 0
        for y in 0..<100 {
            for x in 0..<120 {
                let p = expected.data[y * 120 + x]
                if mask[x, y] { fg += 1 }
                // Only pixels within rounding of the threshold may legitimately flip.
                if mask[x, y] != (p > threshold) && abs(p - threshold) > 1e-6 { mismatches += 1 }
            }
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertTrue(fg > 0 && fg < 12_000, "mask should be neither empty nor full (got \(fg) foreground pixels)")
    }
}
