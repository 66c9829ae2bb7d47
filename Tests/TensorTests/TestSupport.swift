import Foundation
import Tensor
import XCTest

/// Tests must not depend on the system RNG: Tensor's SplitMix64, plus random tensors.
typealias SeededRNG = SplitMix64

extension SplitMix64 {
    /// Uniform in [-scale, scale).
    mutating func tensor(_ shape: [Int], scale: Float = 1, offset: Float = 0) -> Tensor {
        var me = self
        let t = Tensor(shape: shape) { _ in Float.random(in: -scale..<scale, using: &me) + offset }
        self = me
        return t
    }
}

/// max|actual − expected| / max(max|expected|, floor): the error relative to the
/// reference's magnitude, so one tolerance works for any output scale.
func relativeMaxError(_ actual: Tensor, _ expected: Tensor, floor: Double = 1e-12) -> Double {
    var maxErr = 0.0, maxRef = 0.0
    for (a, e) in zip(actual.data, expected.data) {
        if e.isInfinite || a.isInfinite {
            if a != e { return .infinity }
            continue
        }
        if e.isNaN || a.isNaN {
            if !(e.isNaN && a.isNaN) { return .infinity }
            continue
        }
        maxErr = max(maxErr, abs(Double(a) - Double(e)))
        maxRef = max(maxRef, abs(Double(e)))
    }
    return maxErr / max(maxRef, floor)
}

/// Asserts equal shapes and relative max error ≤ `tol`; prints the error on failure.
func assertClose(_ actual: Tensor, _ expected: Tensor, tol: Float, _ what: @autoclosure () -> String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(what()): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let err = relativeMaxError(actual, expected)
    XCTAssertLessThanOrEqual(err, Double(tol), "\(what()): relative max error \(err) > \(tol)", file: file, line: line)
}

/// The PyTorch goldens written by Tests/Reference/make_kernel_goldens.py.
/// `@unchecked`: the `[String: Any]` params are immutable JSON values after loading.
struct Goldens: @unchecked Sendable {
    struct Case {
        let op: String
        let params: [String: Any]
        let inputs: [String: Tensor]
        let outputs: [String: Tensor]

        func input(_ name: String) -> Tensor {
            guard let t = inputs[name] else { fatalError("golden input '\(name)' missing for op \(op)") }
            return t
        }
        func output(_ name: String = "y") -> Tensor {
            guard let t = outputs[name] else { fatalError("golden output '\(name)' missing for op \(op)") }
            return t
        }
        func int(_ name: String) -> Int { (params[name] as! NSNumber).intValue }
        func float(_ name: String) -> Float { (params[name] as! NSNumber).floatValue }
        func bool(_ name: String) -> Bool { (params[name] as! NSNumber).boolValue }
        func ints(_ name: String) -> [Int] { (params[name] as! [NSNumber]).map(\.intValue) }
        func size2(_ name: String) -> Size2 { let v = ints(name); return Size2(v[0], v[1]) }
    }

    let cases: [String: Case]

    static let shared: Goldens = {
        guard let url = Bundle.module.url(forResource: "kernel_goldens", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let raw = root["cases"] as? [String: [String: Any]] else {
            fatalError("Fixtures/kernel_goldens.json missing or unreadable; run Tests/Reference/make_kernel_goldens.py")
        }
        func tensors(_ any: Any?) -> [String: Tensor] {
            var out: [String: Tensor] = [:]
            for (name, value) in (any as? [String: [String: Any]]) ?? [:] {
                let shape = (value["shape"] as! [NSNumber]).map(\.intValue)
                let vals: [Float] = (value["data"] as! [Any]).map { v in
                    if let n = v as? NSNumber { return n.floatValue }
                    switch v as? String {
                    case "Infinity": return .infinity
                    case "-Infinity": return -.infinity
                    default: return .nan
                    }
                }
                out[name] = Tensor(shape: shape, data: vals)
            }
            return out
        }
        var cases: [String: Case] = [:]
        for (name, c) in raw {
            cases[name] = Case(op: c["op"] as! String, params: (c["params"] as? [String: Any]) ?? [:],
                               inputs: tensors(c["inputs"]), outputs: tensors(c["outputs"]))
        }
        return Goldens(cases: cases)
    }()

    /// All cases of one op, sorted by name; fails the test if there are none, so a
    /// renamed op in the generator cannot silently skip its checks.
    func cases(op: String, file: StaticString = #filePath, line: UInt = #line) -> [(String, Case)] {
        let found = cases.filter { $0.value.op == op }.sorted { $0.key < $1.key }
        XCTAssertFalse(found.isEmpty, "no golden cases for op '\(op)'", file: file, line: line)
        return found
    }
}
