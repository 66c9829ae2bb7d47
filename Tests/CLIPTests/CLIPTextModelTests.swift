import CLIP
import Checkpoint
import Foundation
import Tensor
import XCTest

/// Parity with transformers' CLIPTextModelWithProjection / CLIPModel on tiny random models
/// (Tests/Reference/make_clip_fixtures.py), weight binding by name, and the presets.
final class CLIPTextModelTests: XCTestCase {
    func testTextModelWithProjectionMatchesTransformers() throws {
        let c = try ModelCase("text_proj")
        let config = try c.textConfig()
        XCTAssertEqual(config.hiddenAct, .quickGELU)
        XCTAssertEqual(config.eosTokenID, 2)  // legacy: argmax pooling
        XCTAssertEqual(config.projectionDim, 16)
        let dict = try StateDict(contentsOf: fixtureURL("clip_text_proj.safetensors"))
        let vb = try WeightLoader(dict)
        let model = try CLIPTextModelWithProjection(vb, config: config)
        try vb.finish()

        let golden = try StateDict(contentsOf: fixtureURL("clip_text_proj_golden.safetensors"))
        let out = try model(c.ids)
        assertClose(out.lastHiddenState, try golden.tensor(named: "last_hidden_state"),
                    relative: Tolerance.modelRelative, "text_proj last_hidden_state")
        assertClose(out.pooledOutput, try golden.tensor(named: "pooler_output"),
                    relative: Tolerance.modelRelative, "text_proj pooler_output")
        assertClose(out.textEmbeds, try golden.tensor(named: "text_embeds"),
                    relative: Tolerance.modelRelative, "text_proj text_embeds")
    }

    func testCLIPModelLayoutSkipsTheVisionTowerAndPoolsAtTheFirstEOS() throws {
        let c = try ModelCase("clip_model")
        let config = try c.textConfig()
        XCTAssertEqual(config.hiddenAct, .gelu)
        XCTAssertEqual(config.eosTokenID, 500)
        XCTAssertEqual(config.projectionDim, 12)  // CLIPConfig.projection_dim, not text_config's
        let dict = try StateDict(contentsOf: fixtureURL("clip_model.safetensors"))

        // Without skipping, exactly the image half is left over.
        let strict = try WeightLoader(dict)
        _ = try CLIPTextModelWithProjection(strict, config: config)
        let leftover = strict.unusedTensors
        XCTAssertFalse(leftover.isEmpty)
        XCTAssertTrue(leftover.allSatisfy { $0.hasPrefix("vision_model.") || $0 == "visual_projection.weight" || $0 == "logit_scale" },
                      "\(leftover)")
        XCTAssertEqual(leftover.count, dict.names.filter { !$0.hasPrefix("text_") }.count)
        XCTAssertThrowsError(try strict.finish())

        let vb = try WeightLoader(dict)
        let model = try CLIPTextModelWithProjection(vb, config: config)
        XCTAssertEqual(CLIPTextModelWithProjection.skipVisionTensors(vb, stateDict: dict), leftover.count)
        try vb.finish()

        // ids > eos appear before the eos: argmax pooling would take another position.
        for row in c.ids {
            XCTAssertNotEqual(try CLIPTextTransformer.pooledIndex(row, eosTokenID: 500),
                              try CLIPTextTransformer.pooledIndex(row, eosTokenID: 2), "\(row)")
        }
        let golden = try StateDict(contentsOf: fixtureURL("clip_model_golden.safetensors"))
        let out = try model(c.ids)
        assertClose(out.lastHiddenState, try golden.tensor(named: "last_hidden_state"),
                    relative: Tolerance.modelRelative, "clip_model last_hidden_state")
        assertClose(out.pooledOutput, try golden.tensor(named: "pooler_output"),
                    relative: Tolerance.modelRelative, "clip_model pooler_output")
        assertClose(out.textEmbeds, try golden.tensor(named: "text_features"),
                    relative: Tolerance.modelRelative, "clip_model get_text_features")
    }

    func testUnknownTensorsAreRejectedEvenBesideTheVisionTower() throws {
        let c = try ModelCase("clip_model")
        let dict = try StateDict(contentsOf: fixtureURL("clip_model.safetensors"))
        var tensors = try dict.names.map { ($0, try dict.tensor(named: $0)) }
        // A misnamed text tensor and a near-miss of a skipped prefix.
        tensors.append(("text_model.encoder.layers.0.self_attn.qkv.weight", Tensor(zeros: [2])))
        tensors.append(("vision_modelx.weight", Tensor(zeros: [2])))
        tensors.append(("logit_scale_extra", Tensor(zeros: [1])))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("clip-extra-\(UUID().uuidString).safetensors")
        try Data(SafeTensorsWriter.encode(tensors.map { (name: $0.0, tensor: $0.1) })).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try CLIPTextEncoder.load(checkpoint: url, config: c.textConfig())) { error in
            XCTAssertEqual(error as? CLIPError, .checkpoint(.unusedTensors(names: [
                "text_model.encoder.layers.0.self_attn.qkv.weight", "vision_modelx.weight", "logit_scale_extra"])))
        }
        // The clean file loads, and is recognised as the CLIPModel layout.
        let enc = try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_model.safetensors"), config: c.textConfig())
        XCTAssertEqual(enc.layout, .clipModel)
        // With skipping off, the vision tower itself is the unused set.
        XCTAssertThrowsError(try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_model.safetensors"),
                                                      config: c.textConfig(), skipVisionTower: false)) { error in
            guard case let .checkpoint(.unusedTensors(names))? = error as? CLIPError else { return XCTFail("\(error)") }
            XCTAssertTrue(names.contains("visual_projection.weight") && names.contains("logit_scale"))
        }
    }

    func testWrongConfigFailsWithTheTensorPath() throws {
        var config = try ModelCase("text_proj").textConfig()
        config.intermediateSize = 36
        XCTAssertThrowsError(try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_text_proj.safetensors"), config: config)) { error in
            XCTAssertEqual(error as? CLIPError, .checkpoint(.shapeMismatch(
                path: "text_model.encoder.layers.0.mlp.fc1.weight", expected: [36, 32], actual: [37, 32])))
        }
    }

    func testPooledIndexRules() throws {
        // ref: CLIPTextModel.forward — argmax (first maximum) for eos_token_id == 2, else first eos.
        XCTAssertEqual(try CLIPTextTransformer.pooledIndex([49406, 320, 49407, 0, 0], eosTokenID: 2), 2)
        XCTAssertEqual(try CLIPTextTransformer.pooledIndex([49406, 49407, 5, 49407], eosTokenID: 2), 1)
        XCTAssertEqual(try CLIPTextTransformer.pooledIndex([49406, 320, 49407, 0], eosTokenID: 49407), 2)
        // No end token: upstream pools position 0 (argmax of an all-zero row); Segflow rejects
        // the row, naming it and the eos id.
        XCTAssertThrowsError(try CLIPTextTransformer.pooledIndex([1, 2, 3], eosTokenID: 9, row: 4)) {
            XCTAssertEqual($0 as? CLIPError, .missingEndOfText(row: 4, eosTokenID: 9))
        }
        XCTAssertThrowsError(try CLIPTextTransformer.pooledIndex([1, 2, 3], eosTokenID: 9)) {
            XCTAssertEqual($0 as? CLIPError, .missingEndOfText(row: 0, eosTokenID: 9))
        }
    }

    /// The whole tower refuses a batch with a row lacking the end token (before running the
    /// encoder), and reports bad ids by row and position.
    func testTowerRejectsRowsWithoutEndTokenAndBadIds() throws {
        let c = try ModelCase("clip_model")  // eos_token_id 500: first-occurrence rule
        let dict = try StateDict(contentsOf: fixtureURL("clip_model.safetensors"))
        let config = try c.textConfig()
        let model = try CLIPTextModelWithProjection(WeightLoader(dict), config: config)
        let noEOS = c.ids[1].map { $0 == 500 ? 7 : $0 }
        func error(_ ids: [[Int]]) -> CLIPError? {
            do { _ = try model(ids); return nil } catch { return error }
        }
        XCTAssertNil(error(c.ids))
        XCTAssertEqual(error([c.ids[0], noEOS]), .missingEndOfText(row: 1, eosTokenID: 500))
        XCTAssertEqual(error([[1, 500], [1, -3]]), .tokenOutOfRange(id: -3, row: 1, position: 1, vocabularySize: config.vocabSize))
        XCTAssertEqual(error([[1, 500], [500]]), .raggedTokenRows(lengths: [2, 1]))
        XCTAssertEqual(error([]), .invalidSequenceLength(length: 0, maxPositions: config.maxPositionEmbeddings))
    }

    func testCausalMaskHidesLaterPositions() throws {
        let c = try ModelCase("text_proj")
        let dict = try StateDict(contentsOf: fixtureURL("clip_text_proj.safetensors"))
        let model = try CLIPTextModelWithProjection(WeightLoader(dict), config: c.textConfig())
        var changed = c.ids[1]
        changed[20] = 5  // inside the padding, after the eos at 8
        let a = try model([c.ids[1]]).lastHiddenState, b = try model([changed]).lastHiddenState
        let d = 32
        XCTAssertEqual(Array(a.data[0..<(20 * d)]), Array(b.data[0..<(20 * d)]))
        XCTAssertNotEqual(Array(a.data[(20 * d)..<(21 * d)]), Array(b.data[(20 * d)..<(21 * d)]))
    }

    /// Segflow's presets bind exactly the tensors (names and shapes) of transformers'
    /// CLIPTextModelWithProjection for the OpenAI towers.
    func testPresetsMatchTransformersStateDicts() throws {
        let official = try XCTUnwrap(try fixtureJSON("official_text_state_dicts.json") as? [String: [String: [Int]]])
        let presets: [(String, CLIPTextConfig)] = [("openai/clip-vit-base-patch32", .openAIViTB32),
                                                   ("openai/clip-vit-base-patch32", .openAIViTB16),
                                                   ("openai/clip-vit-large-patch14", .openAIViTL14)]
        for (name, config) in presets {
            let expected = try XCTUnwrap(official[name])
            let vb = WeightLoader.synthesizing(zeros: true)
            _ = try CLIPTextModelWithProjection(vb, config: config)
            let bound = Dictionary(uniqueKeysWithValues: vb.synthesizedTensors.map { ($0.name, $0.shape) })
            XCTAssertEqual(bound, expected, name)
        }
        XCTAssertEqual(CLIPTextConfig.openAIViTL14.headDim, 64)
        XCTAssertEqual(CLIPTextConfig.openAIViTB32.headDim, 64)
    }
}
