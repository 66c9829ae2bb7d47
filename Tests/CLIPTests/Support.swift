import CLIP
import Checkpoint
import Foundation
import Tensor
import XCTest

/// Named error budgets for the parity tests.
enum Tolerance {
    /// Model outputs: max |swift − torch| ≤ this × max |torch|. Both sides compute in float32
    /// with different summation orders (BLAS blocking, fused masked softmax, LayerNorm in
    /// double here); over 1–2 layers that is ~1e-6 relative. 1e-4 leaves two orders of
    /// margin, while any real mistake is far outside it: exact vs quick GELU differ by ~1e-2,
    /// a missing causal mask or a swapped q/k changes outputs by O(1).
    static let modelRelative: Float = 1e-4
    /// Per-text unpadded run vs the padded 77-position batch: mathematically identical under
    /// the causal mask (masked scores contribute exactly 0), only GEMM shapes differ.
    static let unpaddedVsPaddedRelative: Float = 1e-5
}

func fixtureURL(_ name: String) throws -> URL {
    let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
    return try XCTUnwrap(Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures"),
                         "missing fixture \(name)")
}

func fixtureJSON(_ name: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL(name)))
}

/// max |a − b| / max |b|.
func relativeMaxAbs(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) -> Float {
    XCTAssertEqual(a.count, b.count, "length", file: file, line: line)
    var diff: Float = 0, scale: Float = 0
    for (x, y) in zip(a, b) {
        if x.isNaN || y.isNaN { return .infinity }
        diff = max(diff, abs(x - y))
        scale = max(scale, abs(y))
    }
    return diff / max(scale, .leastNormalMagnitude)
}

func assertClose(_ actual: Tensor, _ expected: Tensor, relative tolerance: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(what) shape", file: file, line: line)
    let err = relativeMaxAbs(actual.data, expected.data, file: file, line: line)
    XCTAssertLessThanOrEqual(err, tolerance, "\(what): relative max-abs error \(err)", file: file, line: line)
    print("[CLIP parity] \(what): relative max-abs error \(err) (budget \(tolerance))")
}

/// `model_cases.json` → config + ids of one model golden.
struct ModelCase {
    let ids: [[Int]]
    let config: [String: Any]

    init(_ key: String) throws {
        let root = try XCTUnwrap(try fixtureJSON("model_cases.json") as? [String: Any])
        let entry = try XCTUnwrap(root[key] as? [String: Any])
        ids = try XCTUnwrap(entry["input_ids"] as? [[Int]])
        config = try XCTUnwrap(entry["config"] as? [String: Any])
    }

    /// The config as Segflow reads a transformers config.json.
    func textConfig() throws -> CLIPTextConfig {
        try CLIPTextConfig(huggingFaceConfigJSON: JSONSerialization.data(withJSONObject: config))
    }
}
