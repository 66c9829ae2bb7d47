import Checkpoint
import Foundation
import Tensor
import XCTest

/// Hostile and damaged inputs: each must end in a specific `CheckpointError`, never a
/// crash, a hang or an absurd allocation.
final class MalformedInputTests: XCTestCase {
    private func open(_ name: String) throws -> (bytes: [UInt8], result: Result<StateDict, CheckpointError>) {
        let bytes = try Fixtures.bytes(name, "pth")
        do {
            return (bytes, .success(try StateDict(contentsOf: Fixtures.url(name, "pth"))))
        } catch let e as CheckpointError {
            return (bytes, .failure(e))
        }
    }

    func testGlobalOsSystemIsRefused() throws {
        let (bytes, result) = try open("evil_os_system")
        guard case let .failure(.forbiddenGlobal(module, name, offset)) = result else {
            return XCTFail("expected forbiddenGlobal, got \(result)")
        }
        XCTAssertEqual(module, "os")
        XCTAssertEqual(name, "system")
        XCTAssertEqual(bytes[offset], UInt8(ascii: "c"), "offset points at the GLOBAL opcode in the file")
        XCTAssertTrue("\(CheckpointError.forbiddenGlobal(module: module, name: name, offset: offset))".contains("os.system"))
    }

    func testGlobalBuiltinsEvalIsRefused() throws {
        let (_, result) = try open("evil_eval")
        guard case let .failure(.forbiddenGlobal(module, name, _)) = result else {
            return XCTFail("expected forbiddenGlobal, got \(result)")
        }
        XCTAssertEqual([module, name], ["builtins", "eval"])
    }

    func testUnknownOpcodeIsNamedWithOffset() throws {
        let (bytes, result) = try open("bad_opcode")
        guard case let .failure(.unsupportedOpcode(opcode, offset)) = result else {
            return XCTFail("expected unsupportedOpcode, got \(result)")
        }
        XCTAssertEqual(opcode, UInt8(ascii: "i"))
        XCTAssertEqual(bytes[offset], opcode)
        XCTAssertTrue(CheckpointError.unsupportedOpcode(opcode: opcode, offset: offset).description.contains("INST"))
    }

    func testMissingStorageRecord() throws {
        let (_, result) = try open("bad_missing_storage")
        guard case let .failure(.missingZipEntry(name)) = result else { return XCTFail("got \(result)") }
        XCTAssertTrue(name.hasSuffix("/data/0"), name)
    }

    func testShapeLargerThanStorage() throws {
        let (_, result) = try open("bad_numel")
        guard case let .failure(.invalidTensorLayout(tensor, reason)) = result else { return XCTFail("got \(result)") }
        XCTAssertEqual(tensor, "w")
        XCTAssertTrue(reason.contains("needs 5 element(s), storage has 3"), reason)
    }

    func testAbsurdSizeIsRejected() throws {
        let (_, result) = try open("bad_huge")
        guard case let .failure(error) = result else { return XCTFail("loaded a 2^62-element tensor") }
        XCTAssertEqual(error, .tensorTooLarge(tensor: "w", shape: [1 << 62]))
    }

    func testStorageNumelDisagreesWithRecord() throws {
        let (_, result) = try open("bad_storage_size")
        guard case let .failure(.storageSizeMismatch(record, expected, actual)) = result else { return XCTFail("got \(result)") }
        XCTAssertTrue(record.hasSuffix("/data/0"))
        XCTAssertEqual([expected, actual], [16, 12])
    }

    func testCompressedEntriesAreRejected() throws {
        let (_, result) = try open("bad_compressed")
        guard case let .failure(.compressedZipEntry(name, method)) = result else { return XCTFail("got \(result)") }
        XCTAssertTrue(name.hasPrefix("small/"), name)  // byteorder or data.pkl, whichever is read first
        XCTAssertEqual(method, 8)
    }

    func testLegacyFormatIsExplained() throws {
        let (_, result) = try open("legacy")
        guard case .failure(.legacyPyTorchFormat) = result else { return XCTFail("got \(result)") }
    }

    func testUnknownFormat() {
        assertCheckpointError(try StateDict(bytes: Array("hello world, not a checkpoint".utf8))) {
            if case .unknownFormat = $0 { return true }
            return false
        }
        assertCheckpointError(try StateDict(bytes: [UInt8]())) { $0 == .unknownFormat(leadingBytes: []) }
        assertCheckpointError(try StateDict(contentsOfFile: "/nonexistent/segflow.pth")) {
            if case let .fileUnreadable(path, errno) = $0 { return path == "/nonexistent/segflow.pth" && errno == ENOENT }
            return false
        }
    }

    /// Every prefix of a valid file is invalid and must be reported, not crash.
    func testTruncationsAtManyCutPoints() throws {
        for (name, ext) in [("small", "pth"), ("dtypes", "pth"), ("views", "pth"), ("nested", "pth"), ("mixed", "safetensors")] {
            let bytes = try Fixtures.bytes(name, ext)
            let step = bytes.count < 2000 ? 1 : 3
            for cut in stride(from: 0, to: bytes.count, by: step) {
                assertCheckpointError(try StateDict(bytes: bytes[..<cut]), "\(name).\(ext) cut at \(cut)") { _ in true }
            }
        }
    }

    func testCorruptedStructureBytes() throws {
        var zip = try Fixtures.bytes("small", "pth")
        // Break the end-of-central-directory signature.
        let eocd = try XCTUnwrap((0 ... zip.count - 4).last { zip[$0 ..< $0 + 4].elementsEqual([0x50, 0x4b, 0x05, 0x06]) })
        zip[eocd] = 0
        assertCheckpointError(try StateDict(bytes: zip)) {
            if case let .invalidZip(_, reason) = $0 { return reason.contains("end of central directory") }
            return false
        }
        // A central directory offset pointing into the middle of nowhere.
        zip[eocd] = 0x50
        zip[eocd + 16] ^= 0x01
        assertCheckpointError(try StateDict(bytes: zip)) {
            if case .invalidZip = $0 { return true }
            return false
        }
    }

    // MARK: - hand-written pickles

    private func load(_ pickle: [UInt8], storages: [(key: String, data: [UInt8])] = []) throws -> StateDict {
        try StateDict(bytes: TestZip.checkpoint(pickle: pickle, storages: storages))
    }

    func testStackGlobalIsAllowListedToo() {
        let pkl = P.proto2 + P.unicode("posix") + P.unicode("system") + [0x93] + P.stop
        assertCheckpointError(try load(pkl)) {
            if case let .forbiddenGlobal(module, name, _) = $0 { return module == "posix" && name == "system" }
            return false
        }
    }

    func testMemoAndStackErrors() {
        assertCheckpointError(try load(P.proto2 + [0x68, 7] + P.stop), "BINGET of unset memo") {
            if case let .malformedPickle(_, opcode, reason) = $0 { return opcode == "BINGET" && reason.contains("memo key 7") }
            return false
        }
        assertCheckpointError(try load(P.proto2 + P.setitem + P.stop), "SETITEM on empty stack") {
            if case let .malformedPickle(_, opcode, reason) = $0 { return opcode == "SETITEM" && reason.contains("underflow") }
            return false
        }
        assertCheckpointError(try load(P.proto2 + P.emptyDict + P.mark + P.stop), "STOP pops across MARK") {
            if case let .malformedPickle(_, opcode, _) = $0 { return opcode == "STOP" }
            return false
        }
        assertCheckpointError(try load(P.proto2 + P.int1(1) + P.emptyDict), "no STOP") {
            if case .truncated = $0 { return true }
            return false
        }
        assertCheckpointError(try load(P.proto2 + P.global("collections", "OrderedDict") + P.int1(3) + P.reduce + P.stop), "REDUCE with non-tuple args") {
            if case let .malformedPickle(_, opcode, _) = $0 { return opcode == "REDUCE" }
            return false
        }
        assertCheckpointError(try load(P.proto2 + [0x8a, 9] + [UInt8](repeating: 1, count: 9) + P.stop), "LONG1 > 64 bits") {
            if case let .malformedPickle(_, opcode, reason) = $0 { return opcode == "LONG1" && reason.contains("64 bits") }
            return false
        }
        assertCheckpointError(try load(P.proto2 + [0x58, 0xff, 0xff, 0xff, 0x7f] + P.stop), "huge BINUNICODE length") {
            if case let .truncated(_, _, needed, _) = $0 { return needed == 0x7fff_ffff }
            return false
        }
    }

    func testDeeplyNestedTuplesAreBounded() {
        let pkl = P.proto2 + P.emptyTuple + [UInt8](repeating: 0x85, count: 100_000) + P.stop
        assertCheckpointError(try load(pkl)) {
            if case let .malformedPickle(_, opcode, reason) = $0 { return opcode == "TUPLE1" && reason.contains("nested deeper") }
            return false
        }
    }

    /// A dict that contains itself (memo reference) must not recurse forever.
    func testSelfReferencingDict() {
        let pkl = P.proto2 + P.emptyDict + [0x71, 0] + P.unicode("me") + [0x68, 0] + P.setitem + P.stop
        assertCheckpointError(try load(pkl)) {
            if case let .malformedPickle(_, _, reason) = $0 { return reason.contains("nested deeper") }
            return false
        }
    }

    /// A dict referenced 2×2×…×2 times through the memo: the flattening walk is
    /// budgeted, not only depth-limited.
    func testExponentialSharingIsBudgeted() {
        func u32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }
        // root = {"l0": d0}; level k: root["l<k>"] = d_k = {"a": d_{k-1}, "b": d_{k-1}} → 2^25 paths.
        var pkl = P.proto2 + P.emptyDict + P.unicode("l0") + P.emptyDict + [0x72] + u32(0) + P.setitem
        for k in 1 ... 25 {
            pkl += P.unicode("l\(k)") + P.emptyDict
            pkl += P.unicode("a") + [0x6a] + u32(k - 1) + P.setitem
            pkl += P.unicode("b") + [0x6a] + u32(k - 1) + P.setitem
            pkl += [0x72] + u32(k) + P.setitem
        }
        pkl += P.stop
        assertCheckpointError(try load(pkl)) {
            if case let .malformedPickle(_, _, reason) = $0 { return reason.contains("exceeds") }
            return false
        }
    }

    func testStorageOffsetBeyondStorage() {
        let pkl = P.tensorDict(numel: 4, offset: 3, size: [2], stride: [1])
        assertCheckpointError(try load(pkl, storages: [("0", floatBytes([1, 2, 3, 4]))])) {
            if case let .invalidTensorLayout(tensor, reason) = $0 { return tensor == "w" && reason.contains("needs 5 element(s)") }
            return false
        }
    }

    func testStrideOverflowIsCaught() {
        let pkl = P.tensorDict(numel: 4, size: [3, 2], stride: [1 << 62, 1])
        assertCheckpointError(try load(pkl, storages: [("0", floatBytes([1, 2, 3, 4]))])) {
            $0 == .tensorTooLarge(tensor: "w", shape: [3, 2])
        }
    }

    func testHugeBroadcastViewIsCapped() {
        // stride 0 over a single element: valid in torch, but 2^40 elements to materialise.
        let pkl = P.tensorDict(numel: 1, size: [1 << 20, 1 << 20], stride: [0, 0])
        assertCheckpointError(try load(pkl, storages: [("0", floatBytes([1]))])) {
            $0 == .tensorTooLarge(tensor: "w", shape: [1 << 20, 1 << 20])
        }
    }

    func testUnknownStorageClassIsRefused() {
        let pkl = P.tensorDict(numel: 1, size: [1], stride: [1], storageClass: "ComplexFloatStorage")
        assertCheckpointError(try load(pkl, storages: [("0", floatBytes([1, 2]))])) {
            if case let .forbiddenGlobal(module, name, _) = $0 { return module == "torch" && name == "ComplexFloatStorage" }
            return false
        }
    }

    // MARK: - seeded mutation


    /// 2000 seeded mutations (bit flips, byte insert/delete, overwrite with boundary
    /// values, truncation) of the valid fixtures: every outcome is a successful load
    /// of every tensor or a `CheckpointError` — the process must not trap.
    func testSeededMutationsNeverCrash() throws {
        let seeds = try [("small", "pth"), ("dtypes", "pth"), ("views", "pth"), ("nested", "pth"), ("mixed", "safetensors")]
            .map { try Fixtures.bytes($0.0, $0.1) }
        var rng = SplitMix64(seed: 0x5e6f_1a2b_0000_2000)
        var loaded = 0, rejected = 0
        var kinds = Set<String>()
        for _ in 0 ..< 2000 {
            var b = seeds[Int.random(in: 0 ..< seeds.count, using: &rng)]
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                guard !b.isEmpty else { break }
                let i = Int.random(in: 0 ..< b.count, using: &rng)
                switch Int.random(in: 0 ..< 5, using: &rng) {
                case 0: b[i] ^= UInt8(1) << UInt8.random(in: 0 ..< 8, using: &rng)
                case 1: b.insert(UInt8.random(in: 0 ... 255, using: &rng), at: i)
                case 2: b.remove(at: i)
                case 3: b[i] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe].randomElement(using: &rng)!
                default: b.removeSubrange(i...)
                }
            }
            do {
                let sd = try StateDict(bytes: b)
                for name in sd.names {
                    let t = try sd.tensor(named: name)
                    XCTAssertEqual(t.count, sd.info(named: name)!.elementCount)
                }
                loaded += 1
            } catch {
                rejected += 1
                kinds.insert(String("\(error)".prefix(while: { $0 != "(" && $0 != ":" })))
            }
        }
        // Flips inside tensor data load fine; structural damage is rejected: both must occur.
        XCTAssertGreaterThan(loaded, 100)
        XCTAssertGreaterThan(rejected, 500)
        XCTAssertGreaterThan(kinds.count, 3, "\(kinds)")
    }
}
