import Checkpoint
import Foundation
import Tensor
import XCTest

final class WeightLoaderTests: XCTestCase {
    /// A DataParallel-style checkpoint: every name under "module.", plus one without.
    private func checkpoint() throws -> StateDict {
        let tensors: [(name: String, tensor: Tensor)] = [
            ("module.encoder.layers.0.weight", Tensor(shape: [2, 3]) { Float($0) }),
            ("module.encoder.layers.0.bias", Tensor(shape: [2], data: [0.5, -0.5])),
            ("module.encoder.layers.1.weight", Tensor(shape: [3, 2]) { Float(-$0) }),
            ("module.head.scale", Tensor(shape: [], data: [4])),
            ("step", Tensor(shape: [1], data: [100])),
        ]
        return try StateDict(bytes: SafeTensorsWriter.encode(tensors))
    }

    func testNestedScopesWithIntegerIndices() throws {
        let vb = try WeightLoader(checkpoint(), stripPrefix: "module.")
        let layers = vb.pp("encoder").pp("layers")
        XCTAssertEqual(layers.prefix, "encoder.layers")
        XCTAssertEqual(layers.pp(1).path("weight"), "encoder.layers.1.weight")
        let w0 = try layers.pp(0).tensor("weight", shape: [2, 3])
        XCTAssertEqual(w0.data, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try layers.pp(1).tensor("weight", shape: [3, 2], dtype: .f32)[2, 1], -5)
        XCTAssertTrue(layers.pp(0).contains("bias"))
        XCTAssertEqual(layers.pp(0).info("bias")?.shape, [2])
    }

    func testMissingTensorNamesFullPath() throws {
        let vb = try WeightLoader(checkpoint(), stripPrefix: "module.")
        assertCheckpointError(try vb.pp("encoder").pp("layers").pp(2).tensor("weight", shape: [3, 3])) {
            $0 == .missingTensor(path: "encoder.layers.2.weight", expectedShape: [3, 3])
        }
        let message = CheckpointError.missingTensor(path: "encoder.layers.2.weight", expectedShape: [3, 3]).description
        XCTAssertTrue(message.contains("encoder.layers.2.weight") && message.contains("[3, 3]"), message)
    }

    func testWrongShapeNamesExpectedAndActual() throws {
        let vb = try WeightLoader(checkpoint(), stripPrefix: "module.")
        assertCheckpointError(try vb.pp("encoder.layers.0").tensor("weight", shape: [3, 2])) {
            $0 == .shapeMismatch(path: "encoder.layers.0.weight", expected: [3, 2], actual: [2, 3])
        }
        assertCheckpointError(try vb.pp("head").tensor("scale", shape: [], dtype: .bf16)) {
            $0 == .dtypeMismatch(path: "head.scale", expected: .bf16, actual: .f32)
        }
        XCTAssertEqual(vb.usedTensors, [], "failed loads are not recorded as used")
    }

    func testUnusedTensorsAreReportedUntilConsumed() throws {
        let vb = try WeightLoader(checkpoint(), stripPrefix: "module.")
        let enc = vb.pp("encoder").pp("layers")
        _ = try enc.pp(0).tensor("weight", shape: [2, 3])
        _ = try enc.pp(0).tensor("bias", shape: [2])
        XCTAssertEqual(vb.unusedTensors, ["encoder.layers.1.weight", "head.scale", "step"])
        assertCheckpointError(try vb.finish()) {
            $0 == .unusedTensors(names: ["encoder.layers.1.weight", "head.scale", "step"])
        }
        _ = try enc.pp(1).tensor("weight", shape: [3, 2])
        _ = try vb.pp("head").tensor("scale", shape: [])
        XCTAssertTrue(vb.skip("step"))
        XCTAssertFalse(vb.skip("no.such.tensor"))
        XCTAssertEqual(vb.unusedTensors, [])
        XCTAssertNoThrow(try vb.finish())
        XCTAssertEqual(vb.usedTensors.count, 5)
    }

    func testWithoutStripNamesKeepPrefix() throws {
        let vb = try WeightLoader(checkpoint())
        XCTAssertFalse(vb.pp("encoder").contains("layers.0.weight"))
        XCTAssertTrue(vb.pp("module").pp("encoder").contains("layers.0.weight"))
        XCTAssertEqual(try vb.pp("module.head").tensor("scale", shape: []).data, [4])
    }

    func testStripCollisionIsAnError() throws {
        let sd = try StateDict(bytes: SafeTensorsWriter.encode([
            ("module.w", Tensor(zeros: [1])), ("w", Tensor(zeros: [1])),
        ]))
        assertCheckpointError(try WeightLoader(sd, stripPrefix: "module.")) { $0 == .duplicateTensor(name: "w") }
    }

    func testLoaderOverPyTorchNestedCheckpoint() throws {
        let sd = try StateDict(contentsOf: Fixtures.url("nested", "pth"))
        let vb = try WeightLoader(sd, stripPrefix: "model.")
        let linear = vb.pp(0)
        XCTAssertEqual(try linear.tensor("weight", shape: [3, 4]).shape, [3, 4])
        _ = try linear.tensor("bias", shape: [3])
        let bn = vb.pp(1)
        for name in ["weight", "bias", "running_mean", "running_var"] { _ = try bn.tensor(name, shape: [3]) }
        XCTAssertEqual(try bn.tensor("num_batches_tracked", shape: [], dtype: .i64).data, [0])
        XCTAssertEqual(vb.unusedTensors, ["extra.scale"])
    }
}
