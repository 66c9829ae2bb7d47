import Checkpoint
import Foundation
import Imaging
import SegGPT
import Tensor
import XCTest

/// Strict loading: malformed configs name the key, checkpoints that do not fit name the tensor.
final class SegGPTLoaderTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("seggpt-loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func config(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        var d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("seggpt_tiny_config.json"))) as? [String: Any])
        edit(&d)
        let u = tmp.appendingPathComponent("config-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: d).write(to: u)
        return u
    }

    func assertConfigError(_ key: String, _ edit: (inout [String: Any]) -> Void, file: StaticString = #filePath, line: UInt = #line) throws {
        let u = try config(edit)
        XCTAssertThrowsError(try SegGptConfig(json: Data(contentsOf: u)), file: file, line: line) { e in
            guard case .badConfigValue(let k, _, _)? = e as? SegGPTError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(k, key, file: file, line: line)
            print("[SegGPT loader] \(e)")
        }
    }

    func testConfigReadsTransformersKeys() throws {
        let c = try SegGptConfig(json: Data(contentsOf: Fixtures.url("seggpt_tiny_config.json")))
        XCTAssertEqual(c.hiddenSize, 32); XCTAssertEqual(c.numHiddenLayers, 6); XCTAssertEqual(c.numAttentionHeads, 2)
        XCTAssertEqual(c.imageSize.h, 64); XCTAssertEqual(c.imageSize.w, 32); XCTAssertEqual(c.patchSize, 8)
        XCTAssertEqual(c.pretrainImageSize, 32); XCTAssertEqual(c.decoderHiddenSize, 8); XCTAssertEqual(c.mlpDim, 128)
        XCTAssertEqual(c.mergeIndex, 2); XCTAssertEqual(c.intermediateHiddenStateIndices, [2, 3, 4, 5])
        XCTAssertEqual(try SegGptConfig(json: Data("{}".utf8)), .vitLarge, "absent keys take transformers' defaults")
    }

    func testMalformedConfigsNameTheKey() throws {
        try assertConfigError("hidden_size") { $0["hidden_size"] = "wide" }
        try assertConfigError("hidden_size") { $0["hidden_size"] = 32.5 }
        try assertConfigError("image_size") { $0["image_size"] = [64, 32, 3] }
        try assertConfigError("image_size") { $0["image_size"] = [60, 32] }
        try assertConfigError("num_attention_heads") { $0["num_attention_heads"] = 3 }
        try assertConfigError("qkv_bias") { $0["qkv_bias"] = 1 }
        try assertConfigError("hidden_act") { $0["hidden_act"] = "relu" }
        try assertConfigError("merge_index") { $0["merge_index"] = 3 }
        try assertConfigError("intermediate_hidden_state_indices") { $0["intermediate_hidden_state_indices"] = [2, 9] }
        try assertConfigError("model_type") { $0["model_type"] = "sam" }
        XCTAssertThrowsError(try SegGptConfig(json: Data("[1]".utf8))) { e in
            guard case .malformedConfig? = e as? SegGPTError else { return XCTFail("\(e)") }
        }
    }

    /// Re-saves the tiny transformers checkpoint after `edit`.
    func checkpoint(_ edit: (inout [(name: String, tensor: Tensor)]) -> Void) throws -> URL {
        let sd = try StateDict(contentsOf: Fixtures.url("seggpt_tiny/model.safetensors"))
        var list = try sd.names.map { (name: $0, tensor: try sd.tensor(named: $0)) }
        edit(&list)
        let u = tmp.appendingPathComponent("ckpt-\(UUID().uuidString).safetensors")
        try Data(SafeTensorsWriter.encode(list)).write(to: u)
        return u
    }

    func assertCheckpointError(_ expected: CheckpointError, _ edit: (inout [(name: String, tensor: Tensor)]) -> Void,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let u = try checkpoint(edit)
        XCTAssertThrowsError(try SegGPT.load(url: u, config: Fixtures.url("seggpt_tiny_config.json")), file: file, line: line) { e in
            XCTAssertEqual(e as? SegGPTError, .checkpoint(expected), file: file, line: line)
            print("[SegGPT loader] \(e)")
        }
    }

    func testStrictCheckpointErrorsNameTheTensor() throws {
        try assertCheckpointError(.missingTensor(path: "model.encoder.layers.3.attention.rel_pos_h", expectedShape: [15, 16])) {
            $0.removeAll { $0.name == "model.encoder.layers.3.attention.rel_pos_h" }
        }
        try assertCheckpointError(.unusedTensors(names: ["model.encoder.layers.9.extra"])) {
            $0.append((name: "model.encoder.layers.9.extra", tensor: Tensor(zeros: [2])))
        }
        try assertCheckpointError(.shapeMismatch(path: "decoder.decoder_pred.head.weight", expected: [3, 8, 1, 1], actual: [3, 8])) {
            if let i = $0.firstIndex(where: { $0.name == "decoder.decoder_pred.head.weight" }) {
                $0[i].tensor = $0[i].tensor.reshaped([3, 8])
            }
        }
    }

    func testUnknownLayoutAndKindMismatch() throws {
        let u = try checkpoint { $0 = [(name: "encoder.weight", tensor: Tensor(zeros: [1]))] }
        XCTAssertThrowsError(try SegGPT.load(url: u)) { e in
            guard case .unknownLayout? = e as? SegGPTError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try SegGPT.load(url: Fixtures.url("painter_tiny.pth"), config: Fixtures.url("seggpt_tiny_config.json"),
                                             kind: .seggpt)) { e in
            XCTAssertEqual(e as? SegGPTError, .wrongKind(requested: "seggpt", checkpoint: "painter"))
        }
        XCTAssertThrowsError(try SegGPT.load(url: tmp.appendingPathComponent("nope.pth"))) { e in
            XCTAssertEqual(e as? SegGPTError, .missingFile(path: self.tmp.appendingPathComponent("nope.pth").path))
        }
        // .pth with the wrong (default ViT-L) geometry: the first mismatching tensor is named.
        XCTAssertThrowsError(try SegGPT.load(url: Fixtures.url("seggpt_tiny_original.pth"))) { e in
            guard case .checkpoint(.shapeMismatch(let path, _, _))? = e as? SegGPTError else { return XCTFail("\(e)") }
            print("[SegGPT loader] \(e)")
            XCTAssertFalse(path.isEmpty)
        }
    }

    func testPreprocessorConfigIsHonouredAndChecked() throws {
        let c = try SegGptConfig(json: Data(contentsOf: Fixtures.url("seggpt_tiny_config.json")))
        let custom = #"{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": {"height": 32, "width": 32}, "resample": 2}"#
        let p = try SegGPTProcessor(preprocessorConfig: Data(custom.utf8), config: c)
        XCTAssertEqual(p.imageMean, [0.5, 0.5, 0.5]); XCTAssertEqual(p.imageStd, [0.25, 0.25, 0.25]); XCTAssertEqual(p.resample, .bilinear)
        for (bad, key) in [(#"{"size": {"height": 448, "width": 448}}"#, "size"), (#"{"image_mean": [0.5]}"#, "image_mean"),
                           (#"{"resample": 1}"#, "resample"), (#"{"do_normalize": false}"#, "do_normalize")] {
            XCTAssertThrowsError(try SegGPTProcessor(preprocessorConfig: Data(bad.utf8), config: c)) { e in
                guard case .badConfigValue(let k, _, _)? = e as? SegGPTError else { return XCTFail("\(e)") }
                XCTAssertEqual(k, key)
            }
        }
    }

    func testBadInputsAreErrorsNotTraps() throws {
        let m = try Fixtures.hfModel.get()
        XCTAssertThrowsError(try m.predictQueryHalf(query: Tensor(zeros: [3, 32, 32]), prompts: []))
        XCTAssertThrowsError(try m.predictQueryHalf(query: Tensor(zeros: [3, 16, 32]), prompts: [(Tensor(zeros: [3, 32, 32]), Tensor(zeros: [3, 32, 32]))]))
        let gray = try GrayImage(width: 2, height: 1, pixels: [0, 3])
        let map = try SegGPTClassMap(gray: gray, numLabels: 3)
        XCTAssertEqual(map.labels, [0, 3]); XCTAssertEqual(map.grayImage, gray)
        XCTAssertThrowsError(try SegGPTClassMap(width: 2, height: 1, labels: [0, 4], numLabels: 3)) { e in
            XCTAssertEqual(e as? SegGPTError, .classOutOfRange(index: 4, numLabels: 3))
        }
    }
}
