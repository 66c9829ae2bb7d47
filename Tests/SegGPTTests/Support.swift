import Checkpoint
import Foundation
import Imaging
import SegGPT
import Tensor
import TestSupport
import XCTest

/// Error budgets against the PyTorch goldens, as relative max error
/// `max|swift − torch| / max|torch|`. Never raise one to make a test pass: find the bug.
enum Tolerance {
    /// PIL's fixed-point resample reproduced bit for bit; ÷255 and (x − mean) ÷ std are the
    /// same two float32 roundings as the PIL processor.
    static let pixelValues: Float = 0
    /// Pillow 13.0.0 (the reference venv) sometimes runs the vertical resample pass before
    /// the horizontal one, unlike its published Resample.c (horizontal, then vertical, uint8
    /// in between), which Segflow implements bit for bit (`*_pixel_values_hfirst`). The
    /// order changes some uint8 values by up to 6 levels on these photos (measured, recorded
    /// in seggpt_cases.json): 6 levels / 255 / 0.225 (smallest std) = 0.105 absolute, over a
    /// max |value| of ~2.6.
    static let pillow13PassOrder: Float = 0.05
    /// Whole forward of the tiny model (patch GEMM, 6 pre-norm layers with rel-pos softmax,
    /// decoder GEMM, 3×3 conv as 9 GEMMs, layer norm, GELU): float32 summation-order drift
    /// is ~1e-6 per stage relative to the scale; 1e-4 still catches any wrong weight, name,
    /// token, layer index or ensemble rule (those are O(1e-2…1) errors, see the
    /// transformers-rule test).
    static let prediction: Float = 1e-4
    /// Two identical prompts vs one: the ensemble means of equal values are exact; what is
    /// left is float32 reordering from running batch 4 instead of 2 (OpenBLAS picks other
    /// kernels / splits for other GEMM sizes, attention switches between its serial and
    /// threaded problem split). The test measures that drift without any ensembling (same
    /// batch, `featureEnsemble: false`) as a control: ~1e-6 here. A wrong rule is ≥ 5e-2.
    static let identicalPrompts: Float = 5e-6
    /// Depth/restoration decoding of predictions that already agree to `prediction`:
    /// ×10000 scaling amplifies nothing relative, bilinear/bicubic taps add a few ulp.
    static let decoded: Float = 1e-4
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        let base = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures")
        let u = base.appendingPathComponent(name)
        XCTAssertTrue(FileManager.default.fileExists(atPath: u.path), "fixture \(name) missing")
        return u
    }
    static func golden() throws -> StateDict { try StateDict(contentsOf: url("seggpt_golden.safetensors")) }
    static func image(_ name: String) throws -> RGBImage { try PNG.decodeRGB(contentsOfFile: url(name + ".png").path) }
    static func mask(_ name: String) throws -> BinaryMask {
        try BinaryMask(png: [UInt8](Data(contentsOf: url(name + ".png"))))
    }
    /// The mode-L class-index PNG (decoded as grey RGB: r = g = b = index).
    static func classes(_ name: String, numLabels: Int) throws -> SegGPTClassMap {
        let img = try image(name)
        return try SegGPTClassMap(width: img.width, height: img.height,
                                  labels: stride(from: 0, to: img.pixels.count, by: 3).map { Int(img.pixels[$0]) },
                                  numLabels: numLabels)
    }
    /// The rectangle mask_b of the reference script: rows 8..<30, columns 5..<25 of 37×39.
    static func maskB() throws -> BinaryMask {
        var v = [UInt8](repeating: 0, count: 37 * 39)
        for y in 8..<30 { for x in 5..<25 { v[y * 37 + x] = 1 } }
        return try BinaryMask(width: 37, height: 39, values: v)
    }

    static let numLabels = 3

    /// The HF directory model, shared by the tests.
    static let hfModel: Result<SegGPT, Error> = Result { try SegGPT.load(url: url("seggpt_tiny")) }
}

extension StateDict {
    func t(_ name: String) throws -> Tensor { try tensor(named: name) }
}

/// `[1, 3, h, w]` → `[3, h, w]`.
func squeeze(_ t: Tensor) -> Tensor { t.reshaped(Array(t.shape.dropFirst())) }
