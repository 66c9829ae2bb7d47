import Checkpoint
import CLIPSeg
import Foundation
import Imaging
import Tensor
import TestSupport
import XCTest

/// Error budgets against the PyTorch goldens, as relative max error
/// `max|swift − torch| / max|torch|`. Never raise one to make a test pass: find the bug.
enum Tolerance {
    /// Preprocessing is the same fixed-point PIL resample and the same two float32 roundings
    /// (÷255, then (x − mean) ÷ std): bit-exact.
    static let pixelValues: Float = 0
    /// Bicubic taps are 4×4 float32 products summed in upstream's order; torch's vectorised
    /// loop may fuse multiply-adds, so allow a few ulp of the largest value.
    static let positionEmbedding: Float = 1e-6
    /// One patch GEMM (K = 3·16·16 = 768) summed in a different blocked order than oneDNN.
    static let embeddings: Float = 1e-5
    /// Encoder features after 2–4 pre-norm layers: float32 GEMM / softmax reordering drifts
    /// ~1e-6 per layer relative to the scale; 1e-4 still catches any wrong weight, op or
    /// layer index (those are O(1) errors).
    static let encoderFeatures: Float = 1e-4
    /// Projected pooled features of a whole tower (vision 4 layers, text 2 layers + pooling).
    static let conditionalEmbeddings: Float = 1e-4
    /// Logits after the full pipeline (vision tower, conditioning, 3 decoder layers, three
    /// convolutions): same per-layer drift, more layers.
    static let logits: Float = 1e-4
    /// Postprocessing of identical logits: bilinear taps computed like torch, sigmoid via libm.
    static let probabilities: Float = 1e-6
}

enum Fixtures {
    static func url(_ name: String, _ ext: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"),
                      "fixture \(name).\(ext) missing")
    }
    static func checkpoint() throws -> StateDict { try StateDict(contentsOf: url("clipseg_tiny", "safetensors")) }
    static func golden() throws -> StateDict { try StateDict(contentsOf: url("clipseg_tiny_golden", "safetensors")) }
    static func image(_ name: String) throws -> RGBImage { try PNG.decodeRGB(contentsOfFile: url(name, "png").path) }

    struct Cases: Decodable {
        var input_ids: [[Int]]
        var input_size: Int
        var threshold: Float
    }
    static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: url("clipseg_cases", "json")))
    }

    /// One fully loaded tiny model shared by the tests (loading is cheap but not free).
    static let model: Result<CLIPSegForImageSegmentation, Error> = Result {
        try CLIPSegForImageSegmentation(stateDict: checkpoint(), config: .tinyTest)
    }
}

extension StateDict {
    func t(_ name: String) throws -> Tensor { try tensor(named: name) }
}

extension Tolerance {
    /// Visual-prompt engineering: the same float32 operations in the same order as the numpy
    /// golden (normalise, 15-tap blur rows then columns, blend, crop, nearest); only the
    /// Gaussian taps come from a different libm's exp (in double, then rounded to float), which
    /// may move a tap by one float ulp. A wrong crop, border rule or mask resize is O(1).
    /// Measured here: 0 (bit-exact) on both fixture pairs.
    static let engineeredPixels: Float = 1e-6
}

extension Fixtures {
    static func visualPromptGolden() throws -> StateDict { try StateDict(contentsOf: url("clipseg_visual_prompt_golden", "safetensors")) }
    /// A mask PNG as grey levels (the red channel, as prompt pairs are read): nonzero = foreground.
    static func mask(_ name: String) throws -> GrayImage {
        let rgb = try image(name)
        return try GrayImage(width: rgb.width, height: rgb.height, pixels: stride(from: 0, to: rgb.pixels.count, by: 3).map { rgb.pixels[$0] })
    }
    static func visualPromptPairs() throws -> [(image: RGBImage, mask: GrayImage)] {
        [(try image("visual_prompt"), try mask("visual_prompt_mask")), (try image("visual_prompt_b"), try mask("visual_prompt_b_mask"))]
    }
}
