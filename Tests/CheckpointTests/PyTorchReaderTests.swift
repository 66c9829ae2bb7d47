import Checkpoint
import Foundation
import Tensor
import XCTest

final class PyTorchReaderTests: XCTestCase {
    private func checkAgainstReference(_ file: String) throws {
        let expected = try XCTUnwrap(Fixtures.expected()["\(file).pth"])
        let sd = try StateDict(contentsOf: Fixtures.url(file, "pth"))
        XCTAssertEqual(sd.format, .pytorch)
        XCTAssertEqual(sd.names, expected.map(\.name))
        for e in expected {
            let info = try XCTUnwrap(sd.info(named: e.name))
            XCTAssertEqual(info.dtype.rawValue, e.dtype, e.name)
            XCTAssertEqual(info.shape, e.shape, e.name)
            assertMatches(try sd.tensor(named: e.name), e)
        }
    }

    func testDTypesMatchTorchLoad() throws { try checkAgainstReference("dtypes") }
    func testViewsMatchTorchLoad() throws { try checkAgainstReference("views") }
    func testNestedMatchesTorchLoad() throws { try checkAgainstReference("nested") }
    func testSmallMatchesTorchLoad() throws { try checkAgainstReference("small") }

    func testEveryDTypeConvertsExactly() throws {
        let sd = try StateDict(contentsOf: Fixtures.url("dtypes", "pth"))
        XCTAssertEqual(try sd.tensor(named: "i64").data, [0, -3, 7, 1_048_576])
        XCTAssertEqual(try sd.tensor(named: "i32").data, [1, -2, 3])
        XCTAssertEqual(try sd.tensor(named: "f64").data, [0.5, -1.25])
        XCTAssertEqual(try sd.tensor(named: "scalar"), Tensor(shape: [], data: [2.5]))
        XCTAssertEqual(try sd.tensor(named: "empty").shape, [0, 3])
        XCTAssertEqual(sd.info(named: "bf16")?.dtype, .bf16)
        XCTAssertEqual(sd.info(named: "f16")?.dtype, .f16)
    }

    /// Views sharing one storage (offsets, transposes, strides, stride 0) materialise to
    /// the same values the dense base tensor gives.
    func testSharedStorageViewsMaterialise() throws {
        let sd = try StateDict(contentsOf: Fixtures.url("views", "pth"))
        let base = try sd.tensor(named: "base")
        XCTAssertEqual(base.shape, [4, 6])
        let t = try sd.tensor(named: "transposed")
        for i in 0 ..< 4 { for j in 0 ..< 6 { XCTAssertEqual(t[j, i], base[i, j]) } }
        XCTAssertEqual(try sd.tensor(named: "row2").data, (0 ..< 6).map { base[2, $0] })
        XCTAssertEqual(try sd.tensor(named: "col3").data, (0 ..< 4).map { base[$0, 3] })
        XCTAssertEqual(try sd.tensor(named: "strided").data, [base[1, 0], base[1, 2], base[1, 4], base[3, 0], base[3, 2], base[3, 4]])
        XCTAssertEqual(try sd.tensor(named: "expanded").data, [1.5, 1.5, 1.5, -0.5, -0.5, -0.5])
        XCTAssertEqual(try sd.tensor(named: "unit_dims").data, (0 ..< 6).map { base[1, $0] })
        XCTAssertEqual(try sd.tensor(named: "permuted").data, [0, 1, 2, 3, 4, 5])
    }

    func testNestedCheckpointSkipsNonTensorValues() throws {
        let sd = try StateDict(contentsOf: Fixtures.url("nested", "pth"))
        XCTAssertFalse(sd.contains("epoch"))
        XCTAssertFalse(sd.contains("arch"))
        XCTAssertTrue(sd.names.allSatisfy { $0.hasPrefix("model.") || $0.hasPrefix("extra.") })
        XCTAssertEqual(try sd.tensor(named: "model.1.running_mean").data, [0.25, 0.25, 0.25])
        XCTAssertEqual(try sd.tensor(named: "extra.scale").data, [2, 3])  // nn.Parameter via _rebuild_parameter
        XCTAssertEqual(sd.info(named: "model.1.num_batches_tracked")?.dtype, .i64)
    }

    func testMissingNameThrows() throws {
        let sd = try StateDict(contentsOf: Fixtures.url("small", "pth"))
        assertCheckpointError(try sd.tensor(named: "nope")) { $0 == .missingTensor(path: "nope", expectedShape: nil) }
    }

    func testInMemoryMatchesMapped() throws {
        let mapped = try StateDict(contentsOf: Fixtures.url("views", "pth"))
        let memory = try StateDict(bytes: Fixtures.bytes("views", "pth"))
        XCTAssertEqual(mapped.tensors, memory.tensors)
        for name in mapped.names { XCTAssertEqual(try mapped.tensor(named: name), try memory.tensor(named: name)) }
    }

    /// A hand-written pickle through the test zip builder: checks the builder and the
    /// LONG1 / stride path independent of torch.save's encoding choices.
    func testHandWrittenPickle() throws {
        let pkl = P.tensorDict(numel: 6, offset: 1, size: [2, 2], stride: [1, 2])
        let sd = try StateDict(bytes: TestZip.checkpoint(pickle: pkl, storages: [("0", floatBytes([0, 1, 2, 3, 4, 5]))]))
        XCTAssertEqual(try sd.tensor(named: "w"), Tensor(shape: [2, 2], data: [1, 3, 2, 4]))
    }
}
