import Foundation
import SAM
import Tensor
import XCTest

/// The measured effect of bf16 GEMMs (TensorRuntime.precision = .bf16) on LiteMedSAM's
/// masks, with the real weights on the parity photographs: the encoder and decoder run
/// their GEMMs in bf16 (f32 accumulation), everything else in f32.
final class BF16EncoderTests: XCTestCase {
    /// bf16 keeps ~2.4 significant digits per GEMM input; the mask decision (logit > 0)
    /// only flips for pixels whose logit is near the threshold, i.e. on the boundary.
    /// Measured on the 9 parity masks: min 0.980, mean 0.9955 (6 of 9 identical); the
    /// encoder accounts for nearly all of it (bf16 encoder + f32 decoder: min 0.981).
    /// Budget 0.97: lower would mean bf16 rounding is amplified somewhere it should not be.
    static let minimumMaskIoU = 0.97
    /// The issue's fidelity target for a precision users may pick (bf16 vs f32 IoU ≥ 0.99
    /// on the real fixtures), over the 9 masks: measured 0.9955.
    static let minimumMeanMaskIoU = 0.99

    override func tearDown() { try? TensorRuntime.setPrecision(.f32) }

    func testBF16MasksCloseToF32() throws {
        let support = BF16Support.detect()
        guard support.isNative else { throw XCTSkip("needs native bf16 GEMM: \(support.summary)") }
        let sam = try LiteMedSAMRealWeightsTests.realModel()
        let specs = try loadCases()
        var ious: [Double] = [], encoderOnlyIoUs: [Double] = [], embeddingErrors: [Double] = []
        for name in ["chelsea", "coffee"] {
            let image = try fixtureImage(name)
            try TensorRuntime.setPrecision(.f32)
            let f32 = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            let cases = try XCTUnwrap(specs[name]).cases
            let f32Masks = try cases.map { try sam.predict(f32, prompt($0)) }
            try TensorRuntime.setPrecision(.bf16)
            let bf16 = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
            var maxErr = 0.0, maxRef = 0.0
            for (a, b) in zip(f32.embedding.data, bf16.embedding.data) {
                maxErr = max(maxErr, abs(Double(a) - Double(b))); maxRef = max(maxRef, abs(Double(a)))
            }
            embeddingErrors.append(maxErr / maxRef)
            for (c, a) in zip(cases, f32Masks) {
                let b = try sam.predict(bf16, prompt(c))
                for m in 0..<a.maskCount { ious.append(iou(a.mask(m), b.mask(m))) }
            }
            // The same bf16 embedding decoded in f32: the encoder's share of the effect.
            try TensorRuntime.setPrecision(.f32)
            for (c, a) in zip(cases, f32Masks) {
                let b = try sam.predict(bf16, prompt(c))
                for m in 0..<a.maskCount { encoderOnlyIoUs.append(iou(a.mask(m), b.mask(m))) }
            }
        }
        let worst = ious.min() ?? 0
        func stats(_ v: [Double]) -> String {
            "min \(String(format: "%.5f", v.min() ?? 0)), mean \(String(format: "%.5f", v.reduce(0, +) / Double(max(1, v.count)))), all \(v.map { String(format: "%.4f", $0) })"
        }
        print("bf16 vs f32 LiteMedSAM over \(ious.count) masks: encoder+decoder bf16 IoU \(stats(ious)); encoder bf16, decoder f32 IoU \(stats(encoderOnlyIoUs)); embedding relative max error \(embeddingErrors.map { String(format: "%.2e", $0) })")
        XCTAssertGreaterThanOrEqual(worst, Self.minimumMaskIoU)
        XCTAssertGreaterThanOrEqual(ious.reduce(0, +) / Double(max(1, ious.count)), Self.minimumMeanMaskIoU)
        XCTAssertGreaterThanOrEqual(encoderOnlyIoUs.min() ?? 0, Self.minimumMaskIoU)
        // It really ran in bf16 (an f32 run would reproduce the embedding to ~1e-6).
        XCTAssertGreaterThan(embeddingErrors.min() ?? 0, 1e-4, "bf16 embedding as exact as f32: bf16 did not run")
    }
}
