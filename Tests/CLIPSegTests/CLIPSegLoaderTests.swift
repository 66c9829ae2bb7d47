import Checkpoint
import CLIPSeg
import Foundation
import Tensor
import XCTest

/// Strict loading: every tensor of the checkpoint is bound by its upstream name, and
/// anything missing, mis-shaped or left over is an error naming the tensor.
final class CLIPSegLoaderTests: XCTestCase {
    /// The fixture checkpoint re-encoded with `edit` applied to its (name, tensor) list.
    func checkpoint(_ edit: (inout [(name: String, tensor: Tensor)]) -> Void) throws -> StateDict {
        let sd = try Fixtures.checkpoint()
        var tensors = try sd.names.map { (name: $0, tensor: try sd.tensor(named: $0)) }
        edit(&tensors)
        return try StateDict(bytes: SafeTensorsWriter.encode(tensors))
    }

    func testFixtureLoadsCompletely() throws {
        let sd = try Fixtures.checkpoint()
        XCTAssertEqual(sd.count, 174)
        XCTAssertNoThrow(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest))
    }

    func testMissingTensorIsNamed() throws {
        let sd = try checkpoint { $0.removeAll { $0.name == "decoder.layers.2.mlp.fc1.bias" } }
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest)) { error in
            XCTAssertEqual(error as? CheckpointError, .missingTensor(path: "decoder.layers.2.mlp.fc1.bias", expectedShape: [32]))
        }
    }

    func testExtraTensorIsNamed() throws {
        let sd = try checkpoint { $0.append((name: "decoder.reduces.3.weight", tensor: Tensor(zeros: [16, 32]))) }
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest)) { error in
            XCTAssertEqual(error as? CheckpointError, .unusedTensors(names: ["decoder.reduces.3.weight"]))
            XCTAssertTrue("\(error)".contains("decoder.reduces.3.weight"))
        }
    }

    func testWrongShapeIsNamed() throws {
        // The complex head's first transposed conv must be [reduce, reduce/2, patch/4, patch/4].
        let sd = try checkpoint { list in
            let i = list.firstIndex { $0.name == "decoder.transposed_convolution.2.weight" }!
            list[i].tensor = Tensor(zeros: [16, 8, 16, 16])
        }
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .shapeMismatch(path: "decoder.transposed_convolution.2.weight", expected: [16, 8, 4, 4], actual: [16, 8, 16, 16]))
        }
    }

    func testWrongPresetFailsOnFirstTensor() throws {
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: try Fixtures.checkpoint(), config: .rd64Refined)) { error in
            guard case let .shapeMismatch(path, _, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(path.hasPrefix("clip.vision_model."), path)
        }
    }

    func testPartialLoadSkipsOnlyTheOtherParts() throws {
        let decoderOnly = try CLIPSegForImageSegmentation(stateDict: try Fixtures.checkpoint(), config: .tinyTest, parts: [.decoder])
        XCTAssertNil(decoderOnly.visionEncoder)
        XCTAssertNil(decoderOnly.textEncoder)
        XCTAssertNotNil(decoderOnly.decoder)
        XCTAssertThrowsError(try decoderOnly.conditionalEmbeddings(.text([[997, 998]]))) { error in
            XCTAssertEqual(error as? CLIPSegModelError, .partNotLoaded(.text))
        }
        // Skipping the other parts by prefix must not hide a stray tensor outside them.
        let sd = try checkpoint { $0.append((name: "clip.vision_model.extra_norm.weight", tensor: Tensor(zeros: [32]))) }
        XCTAssertNoThrow(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest, parts: [.decoder]),
                         "vision tensors are skipped wholesale when the vision part is not loaded")
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: sd, config: .tinyTest, parts: [.vision, .decoder])) { error in
            XCTAssertEqual(error as? CheckpointError, .unusedTensors(names: ["clip.vision_model.extra_norm.weight"]))
        }
        let stray = try checkpoint { $0.append((name: "clip.bogus", tensor: Tensor(zeros: [1]))) }
        XCTAssertThrowsError(try CLIPSegForImageSegmentation(stateDict: stray, config: .tinyTest, parts: [.decoder])) { error in
            XCTAssertEqual(error as? CheckpointError, .unusedTensors(names: ["clip.bogus"]))
        }
    }
}
