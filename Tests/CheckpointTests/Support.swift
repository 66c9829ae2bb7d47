import Checkpoint
import Foundation
import Tensor
import XCTest

/// One tensor as described by Tests/Reference/make_checkpoint_fixtures.py.
struct ExpectedTensor: Decodable {
    let name: String
    let dtype: String
    let shape: [Int]
    let sum: Double
    let first: [Double]
}

/// Both the reference (torch, float64 accumulation) and these tests add the same
/// Float32 values in Double; only the summation order differs, so the difference is
/// bounded by about n·ε(double)·Σ|x|. 1e-9 of Σ|x| leaves room for n up to ~10^6.
let sumRelativeTolerance = 1e-9

enum Fixtures {
    static func url(_ name: String, _ ext: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures") else {
            throw XCTSkip("fixture \(name).\(ext) missing from the test bundle")
        }
        return url
    }

    static func bytes(_ name: String, _ ext: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name, ext)))
    }

    static func expected() throws -> [String: [ExpectedTensor]] {
        try JSONDecoder().decode([String: [ExpectedTensor]].self, from: Data(contentsOf: url("expected", "json")))
    }
}

/// Compares a loaded tensor with the reference record: first values exactly, sum
/// within `sumRelativeTolerance`.
func assertMatches(_ t: Tensor, _ e: ExpectedTensor, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(t.shape, e.shape, "shape of \(e.name)", file: file, line: line)
    let first = t.data.prefix(4).map(Double.init)
    XCTAssertEqual(first, e.first, "first values of \(e.name)", file: file, line: line)
    var sum = 0.0, absSum = 0.0
    for v in t.data {
        sum += Double(v)
        absSum += abs(Double(v))
    }
    XCTAssertEqual(sum, e.sum, accuracy: sumRelativeTolerance * max(1, absSum), "sum of \(e.name)", file: file, line: line)
}

/// Runs `body`, requiring it to throw a `CheckpointError` accepted by `match`.
func assertCheckpointError<T>(_ body: @autoclosure () throws -> T, _ what: String = "",
                              file: StaticString = #filePath, line: UInt = #line,
                              _ match: (CheckpointError) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected a CheckpointError \(what)", file: file, line: line)
    } catch let error as CheckpointError {
        XCTAssertTrue(match(error), "unexpected error \(what): \(error)", file: file, line: line)
        XCTAssertFalse(error.description.isEmpty, file: file, line: line)
    } catch {
        XCTFail("expected a CheckpointError \(what), got \(error)", file: file, line: line)
    }
}

/// Builds a minimal stored zip in the layout torch.save produces (folder prefix, stored
/// entries), so tests can feed hand-written pickles through the public API.
enum TestZip {
    static func make(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func le16(_ v: Int, _ b: inout [UInt8]) { b += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func le32(_ v: Int, _ b: inout [UInt8]) { for i in 0 ..< 4 { b.append(UInt8((v >> (8 * i)) & 0xff)) } }
        for (name, data) in entries {
            let offset = out.count
            let n = Array(name.utf8)
            le32(0x0403_4b50, &out); le16(20, &out); le16(0, &out); le16(0, &out)  // sig, version, flags, method
            le16(0, &out); le16(0, &out); le32(0, &out)                            // time, date, crc (unchecked)
            le32(data.count, &out); le32(data.count, &out); le16(n.count, &out); le16(0, &out)
            out += n + data
            le32(0x0201_4b50, &central); le16(20, &central); le16(20, &central); le16(0, &central); le16(0, &central)
            le16(0, &central); le16(0, &central); le32(0, &central)
            le32(data.count, &central); le32(data.count, &central); le16(n.count, &central)
            le16(0, &central); le16(0, &central); le16(0, &central); le16(0, &central); le32(0, &central)
            le32(offset, &central)
            central += n
        }
        let cdOffset = out.count
        out += central
        le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out); le16(entries.count, &out); le16(entries.count, &out)
        le32(central.count, &out); le32(cdOffset, &out); le16(0, &out)
        return out
    }

    /// A torch-style archive holding `pickle` as archive/data.pkl plus storages.
    static func checkpoint(pickle: [UInt8], storages: [(key: String, data: [UInt8])] = []) -> [UInt8] {
        make([("archive/data.pkl", pickle)] + storages.map { ("archive/data/\($0.key)", $0.data) }
             + [("archive/byteorder", Array("little".utf8))])
    }
}

/// Pickle byte builders for hand-written test pickles.
enum P {
    static let proto2: [UInt8] = [0x80, 0x02]
    static let stop: [UInt8] = [0x2e]
    static func unicode(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        return [0x58] + withUnsafeBytes(of: UInt32(b.count).littleEndian, Array.init) + b
    }
    static func global(_ module: String, _ name: String) -> [UInt8] {
        [0x63] + Array("\(module)\n\(name)\n".utf8)
    }
    static func int1(_ v: UInt8) -> [UInt8] { [0x4b, v] }
    static func long1(_ v: Int64) -> [UInt8] { [0x8a, 8] + withUnsafeBytes(of: v.littleEndian, Array.init) }
    static let mark: [UInt8] = [0x28]
    static let tuple: [UInt8] = [0x74]
    static let tuple1: [UInt8] = [0x85]
    static let emptyTuple: [UInt8] = [0x29]
    static let emptyDict: [UInt8] = [0x7d]
    static let reduce: [UInt8] = [0x52]
    static let setitem: [UInt8] = [0x73]
    static let newfalse: [UInt8] = [0x89]
    static let binpersid: [UInt8] = [0x51]

    /// `{name: _rebuild_tensor_v2(storage(FloatStorage, key, numel), offset, size, stride, False, OrderedDict())}`
    static func tensorDict(name: String = "w", key: String = "0", numel: Int, offset: Int = 0,
                           size: [Int], stride: [Int], storageClass: String = "FloatStorage") -> [UInt8] {
        func intTuple(_ xs: [Int]) -> [UInt8] { mark + xs.flatMap { long1(Int64($0)) } + tuple }
        let pid = mark + unicode("storage") + global("torch", storageClass) + unicode(key) + unicode("cpu")
            + long1(Int64(numel)) + tuple
        let args = mark + pid + binpersid + long1(Int64(offset)) + intTuple(size) + intTuple(stride) + newfalse
            + global("collections", "OrderedDict") + emptyTuple + reduce + tuple
        return proto2 + emptyDict + unicode(name) + global("torch._utils", "_rebuild_tensor_v2") + args + reduce
            + setitem + stop
    }
}

func floatBytes(_ xs: [Float]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0, Array.init) } }
