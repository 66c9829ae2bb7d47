import CLIP
import Checkpoint
import Foundation
import Tensor
import XCTest

/// The entry type end to end: bundled tokenizer + a tiny random tower over the full
/// 49408-token vocabulary, against transformers fed open_clip's ids.
final class CLIPTextEncoderTests: XCTestCase {
    struct E2E {
        let prompts: [String]
        let ids: [[Int]]
        let config: CLIPTextConfig
        let golden: Tensor

        init() throws {
            let root = try XCTUnwrap(try fixtureJSON("model_cases.json") as? [String: Any])
            let e2e = try XCTUnwrap(root["e2e"] as? [String: Any])
            prompts = try XCTUnwrap(e2e["prompts"] as? [String])
            ids = try XCTUnwrap(e2e["input_ids"] as? [[Int]])
            config = try CLIPTextConfig(huggingFaceConfigJSON: JSONSerialization.data(withJSONObject: e2e["config"]!))
            golden = try StateDict(contentsOf: fixtureURL("clip_e2e_golden.safetensors")).tensor(named: "text_embeds")
        }
    }

    func testEncodeMatchesTransformersOnOpenCLIPTokens() throws {
        let e = try E2E()
        let enc = try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_e2e.safetensors"), config: e.config)
        XCTAssertEqual(enc.layout, .textModelWithProjection)
        XCTAssertEqual(enc.tokenizer.tokenize(e.prompts), e.ids)

        let results = try enc.embed(texts: e.prompts)
        let flat = results.flatMap(\.vector)
        assertClose(Tensor(shape: e.golden.shape, data: flat), e.golden, relative: Tolerance.modelRelative, "e2e text_embeds")
        for (r, row) in zip(results, e.ids) {
            XCTAssertEqual(r.droppedTokens, 0)
            XCTAssertEqual(r.tokens, Array(row.prefix { $0 != 0 }))
        }

        // Normalised: each golden row divided by its norm.
        let normalized = try enc.encode(texts: e.prompts, normalize: true)
        let p = e.config.projectionDim
        for (i, v) in normalized.enumerated() {
            let g = Array(e.golden.data[(i * p)..<((i + 1) * p)])
            let norm = g.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            XCTAssertLessThanOrEqual(relativeMaxAbs(v, g.map { $0 / norm }), Tolerance.modelRelative)
            XCTAssertEqual(v.reduce(Float(0)) { $0 + $1 * $1 }, 1, accuracy: 1e-5)
        }
    }

    /// `embed` runs each text unpadded up to its end token; the padded 77-position batch
    /// (what transformers runs) must give the same vectors, here also for a truncated text.
    func testUnpaddedRunEqualsThePaddedBatch() throws {
        let e = try E2E()
        let enc = try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_e2e.safetensors"), config: e.config)
        let texts = e.prompts + [String(repeating: "segment the liver and the spleen ", count: 20)]
        let padded = try enc.model(enc.tokenizer.tokenize(texts)).textEmbeds
        let unpadded = try enc.embed(texts: texts)
        XCTAssertTrue(unpadded.last!.wasTruncated)
        assertClose(Tensor(shape: padded.shape, data: unpadded.flatMap(\.vector)), padded,
                    relative: Tolerance.unpaddedVsPaddedRelative, "unpadded vs padded text_embeds")
    }

    func testInputErrors() throws {
        let e = try E2E()
        let enc = try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_e2e.safetensors"), config: e.config)
        func expect(_ texts: [String], _ expected: CLIPError, overlength: CLIPTextEncoder.Overlength = .truncate,
                    line: UInt = #line) {
            XCTAssertThrowsError(try enc.embed(texts: texts, overlength: overlength), line: line) {
                XCTAssertEqual($0 as? CLIPError, expected, line: line)
            }
        }
        expect(["a cat", ""], .emptyText(index: 1))
        expect([" \t\n "], .emptyText(index: 0))
        expect(["&nbsp;&#32;"], .emptyText(index: 0))  // unescapes to whitespace only
        expect(["<end_of_text>"], .onlySpecialTokens(index: 0, text: "<end_of_text>"))
        expect(["ok", " <START_OF_TEXT><end_of_text> "], .onlySpecialTokens(index: 1, text: " <START_OF_TEXT><end_of_text> "))
        let long = String(repeating: "kidney ", count: 100)
        expect([long], .textTooLong(index: 0, tokens: 102, limit: 77), overlength: .reject)
        let truncated = try enc.embed(texts: [long])[0]
        XCTAssertEqual(truncated.droppedTokens, 25)
        XCTAssertEqual(truncated.tokens.count, 77)
        XCTAssertEqual(truncated.tokens.last, 49407)

        // A literal special token inside real text is kept (as open_clip does).
        XCTAssertEqual(try enc.embed(texts: ["a <end_of_text> cat"])[0].tokens, [49406, 320, 49407, 2368, 49407])

        let missing = URL(fileURLWithPath: "/nonexistent/clip.safetensors")
        XCTAssertThrowsError(try CLIPTextEncoder.load(checkpoint: missing, config: e.config)) {
            XCTAssertEqual($0 as? CLIPError, .checkpointNotFound(path: "/nonexistent/clip.safetensors"))
        }
    }

    func testTokenIdsBeyondTheModelVocabularyAreReported() throws {
        let c = try ModelCase("text_proj")  // vocab 1000: the real tokenizer's ids do not fit
        let enc = try CLIPTextEncoder.load(checkpoint: fixtureURL("clip_text_proj.safetensors"), config: c.textConfig())
        XCTAssertThrowsError(try enc.encode(texts: ["a cat"])) {
            XCTAssertEqual($0 as? CLIPError, .tokenOutOfRange(id: 49406, row: 0, position: 0, vocabularySize: 1000))
        }
    }

    func testConfigJSONAndActivationNames() throws {
        let json = #"{"text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "#
            + #""num_hidden_layers": 12, "eos_token_id": 2}, "projection_dim": 768}"#
        XCTAssertEqual(try CLIPTextConfig(huggingFaceConfigJSON: Data(json.utf8)), .openAIViTL14)
        XCTAssertEqual(try CLIPTextConfig.Activation(huggingFaceName: "gelu_new"), .geluTanh)
        XCTAssertThrowsError(try CLIPTextConfig.Activation(huggingFaceName: "relu")) {
            XCTAssertEqual($0 as? CLIPError, .unsupportedActivation(name: "relu"))
        }
    }
}
