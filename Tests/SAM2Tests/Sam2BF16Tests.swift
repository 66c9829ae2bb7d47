import Foundation
import SAM
import SAM2
import Tensor
import XCTest

/// The measured effect of bf16 GEMMs on SAM 2 (tiny random parity models; every GEMM forced
/// onto the bf16 path, whatever its size): low-res logits of the image cases and of a tracked
/// box, relative to f32.
final class Sam2BF16Tests: XCTestCase {
    /// bf16 keeps 8 significant bits per GEMM input (relative rounding 2⁻⁹), accumulation
    /// stays f32. Through the 7 Hiera blocks, the neck and the decoder of the tiny model the
    /// logits moved by at most 1.4 % of their scale (measured below); 5 % still catches a
    /// path that rounds twice or keeps bf16 between ops (≥ 10 %).
    static let logitsRelative: Float = 0.05
    /// Tracking adds memory attention and the memory encoder per frame (measured ≤ 2.2 %).
    static let trackedRelative: Float = 0.05

    override func tearDown() {
        try? TensorRuntime.setPrecision(.f32)
        TensorRuntime.bf16MinimumMultiplyAdds = TensorRuntime.defaultBF16MinimumMultiplyAdds
    }

    func relative(_ a: Tensor, _ b: Tensor) -> Float {
        var d: Float = 0, s: Float = 0
        for (x, y) in zip(a.data, b.data) { d = max(d, abs(x - y)); s = max(s, abs(y)) }
        return s > 0 ? d / s : d
    }

    func testBF16StaysCloseToF32() throws {
        let support = BF16Support.detect()
        guard support.isNative else { throw XCTSkip("needs native bf16 GEMM: \(support.summary)") }
        let video = try Sam2Video.load(directory: Fixtures.url("sam2_video_tiny"))
        let golden = try Fixtures.golden()
        let pixels = try golden.tensor(named: "pixel_values")
        let prompts = [SamPrompt(points: [.init(x: 20.5, y: 15, label: 1), .init(x: 40, y: 30, label: 0)], multimask: true),
                       SamPrompt(box: (10, 8, 45, 33)), SamPrompt(points: [.init(x: 20.5, y: 15, label: 1)], box: (10, 8, 45, 33))]
        func run(_ p: GEMMPrecision) throws -> (image: [Tensor], track: [Tensor]) {
            try TensorRuntime.setPrecision(p)
            TensorRuntime.bf16MinimumMultiplyAdds = 0
            let e = video.image.embed(pixels: pixels, originalSize: (40, 56))
            let image = try video.image.predict(e, prompts).map(\.lowResLogits)
            var states = [Sam2ObjectState()]
            var track: [Tensor] = []
            for t in 0..<4 {
                let r = try video.step(frame: t, features: e, states: &states, prompts: t == 0 ? [0: SamPrompt(box: (12, 10, 30, 28))] : [:])
                track.append(r[0].lowResMask)
            }
            return (image, track)
        }
        let f32 = try run(.f32), bf16 = try run(.bf16)
        let imageErr = zip(f32.image, bf16.image).map { relative($1, $0) }
        let trackErr = zip(f32.track, bf16.track).map { relative($1, $0) }
        print("[bf16] SAM 2 tiny: image-mode logits relative \(imageErr.map { String(format: "%.4f", $0) }), tracked frames \(trackErr.map { String(format: "%.4f", $0) })")
        XCTAssertLessThanOrEqual(imageErr.max() ?? 1, Self.logitsRelative)
        XCTAssertLessThanOrEqual(trackErr.max() ?? 1, Self.trackedRelative)
        XCTAssertGreaterThan(imageErr.max() ?? 0, 1e-5, "bf16 as exact as f32: bf16 did not run")
    }
}
