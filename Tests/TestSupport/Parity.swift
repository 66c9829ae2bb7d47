import Tensor
import XCTest

// Shared by the parity test targets (SegGPT, CLIPSeg): one relative-error measure with the
// measured value printed, so reports can quote it.

/// Max |actual − expected| relative to max |expected| (absolute when the reference is all
/// zero); infinity on a shape or NaN mismatch.
public func relativeError(_ actual: Tensor, _ expected: Tensor, _ label: String,
                          file: StaticString = #filePath, line: UInt = #line) -> Float {
    XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return .infinity }
    var maxDiff: Float = 0, scale: Float = 0
    for (a, e) in zip(actual.data, expected.data) {
        if a.isNaN != e.isNaN { return .infinity }
        maxDiff = max(maxDiff, abs(a - e)); scale = max(scale, abs(e))
    }
    let rel = scale > 0 ? maxDiff / scale : maxDiff
    print("[parity] \(label): max|Δ| = \(maxDiff), max|ref| = \(scale), relative = \(rel)")
    return rel
}

public func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ label: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    let rel = relativeError(actual, expected, label, file: file, line: line)
    XCTAssertLessThanOrEqual(rel, tolerance, "\(label): relative error \(rel) over budget \(tolerance)", file: file, line: line)
}
