import Checkpoint
import Foundation
import Tensor
import XCTest

final class SafeTensorsTests: XCTestCase {
    func testMixedDTypesMatchReference() throws {
        let expected = try XCTUnwrap(Fixtures.expected()["mixed.safetensors"])
        let sd = try StateDict(contentsOf: Fixtures.url("mixed", "safetensors"))
        XCTAssertEqual(sd.format, .safetensors)
        XCTAssertEqual(sd.metadata, ["format": "pt"])
        XCTAssertEqual(sd.names, expected.map(\.name))
        for e in expected {
            XCTAssertEqual(sd.info(named: e.name)?.dtype.rawValue, e.dtype)
            assertMatches(try sd.tensor(named: e.name), e)
        }
    }

    func testWriterRoundTrip() throws {
        let a = Tensor(shape: [2, 3], data: [1, -2, 3.5, .infinity, 0, -0.0])
        let b = Tensor(shape: [], data: [42])
        let c = Tensor(shape: [0, 4], data: [])
        let bytes = try SafeTensorsWriter.encode([("layer.\"a\"", a), ("b", b), ("c", c)], metadata: ["k": "v\n"])
        let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data section is 8-byte aligned")
        XCTAssertEqual(bytes.count - 8 - headerLength, (6 + 1 + 0) * 4, "data section holds exactly the tensors")
        let sd = try StateDict(bytes: bytes)
        XCTAssertEqual(sd.names, ["layer.\"a\"", "b", "c"])
        XCTAssertEqual(sd.metadata, ["k": "v\n"])
        XCTAssertEqual(try sd.tensor(named: "layer.\"a\"").data.map(\.bitPattern), a.data.map(\.bitPattern))
        XCTAssertEqual(try sd.tensor(named: "b"), b)
        XCTAssertEqual(try sd.tensor(named: "c"), c)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-ckpt-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensorsWriter.write([("a", a)], to: url)
        XCTAssertEqual(try StateDict(contentsOf: url).tensor(named: "a"), a)
    }

    func testWriterRejectsDuplicates() {
        let t = Tensor(zeros: [1])
        assertCheckpointError(try SafeTensorsWriter.encode([("x", t), ("x", t)])) { $0 == .duplicateTensor(name: "x") }
    }

    /// Hand-written headers for each validation rule.
    private func file(_ header: String, dataBytes: Int) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + [UInt8](repeating: 0, count: dataBytes)
    }

    func testHeaderValidation() {
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try StateDict(bytes: file(ok, dataBytes: 8)))

        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8)), "overlap") {
            if case let .invalidTensorLayout(_, reason) = $0 { return reason.contains("overlap") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8)), "gap") {
            if case let .invalidTensorLayout(tensor, reason) = $0 { return tensor == "a" && reason.contains("gap") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(ok, dataBytes: 12)), "trailing bytes") {
            if case let .invalidHeader(_, reason) = $0 { return reason.contains("not covered") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4)), "out of bounds") {
            if case let .invalidTensorLayout(tensor, reason) = $0 { return tensor == "a" && reason.contains("outside") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8)), "size mismatch") {
            if case let .invalidTensorLayout(tensor, reason) = $0 { return tensor == "a" && reason.contains("needs 12 bytes") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, dataBytes: 2))) {
            $0 == .unsupportedDType(name: "F8_E4M3", tensor: "a")
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}}"#, dataBytes: 8)), "2^62 elements") {
            $0 == .tensorTooLarge(tensor: "a", shape: [1 << 62])
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}"#, dataBytes: 8)), "duplicate key") {
            if case let .invalidHeader(_, reason) = $0 { return reason.contains("duplicate key 'a'") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[2]}}"#, dataBytes: 8)), "missing data_offsets") {
            if case let .invalidHeader(_, reason) = $0 { return reason.contains("data_offsets") }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}"#, dataBytes: 8)), "trailing comma") {
            if case let .invalidHeader(offset, _) = $0 { return offset == 54 }
            return false
        }
        assertCheckpointError(try StateDict(bytes: file(String(repeating: "[", count: 40) + "{", dataBytes: 0)), "deep nesting") {
            if case .unknownFormat = $0 { return true }  // does not even start with '{'
            return false
        }
        assertCheckpointError(try StateDict(bytes: file("{\"a\":" + String(repeating: "[", count: 40), dataBytes: 0)), "deep nesting") {
            if case let .invalidHeader(_, reason) = $0 { return reason.contains("nesting") }
            return false
        }
    }

    func testAbsurdHeaderLengthIsRejectedBeforeReading() {
        var bytes = withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init) + Array("{}".utf8)
        bytes[8] = UInt8(ascii: "{")
        assertCheckpointError(try StateDict(bytes: bytes)) {
            if case let .invalidHeader(offset, reason) = $0 { return offset == 0 && reason.contains("exceeds") }
            return false
        }
        var short = withUnsafeBytes(of: UInt64(1000).littleEndian, Array.init) + Array("{}".utf8)
        short[8] = UInt8(ascii: "{")
        assertCheckpointError(try StateDict(bytes: short)) {
            $0 == .truncated(context: "safetensors file", offset: 8, needed: 1000, available: 2)
        }
    }
}
