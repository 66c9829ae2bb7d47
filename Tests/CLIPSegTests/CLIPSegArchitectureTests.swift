import Checkpoint
import CLIPSeg
import Foundation
import Tensor
import XCTest

/// The rd64-refined preset against the real checkpoint layout. No CLIPSeg weights exist
/// offline, so the names and shapes come from transformers itself (a model built on the
/// meta device with the hub config, Tests/Reference/make_clipseg_fixtures.py).
final class CLIPSegArchitectureTests: XCTestCase {
    struct Entry: Decodable, Hashable { var name: String; var shape: [Int] }

    func testRd64RefinedRequestsExactlyTheUpstreamStateDict() throws {
        let upstream = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: Fixtures.url("rd64_refined_state_dict", "json")))
        let vb = WeightLoader.synthesizing(zeros: true)
        let config = CLIPSegConfig.rd64Refined
        _ = try CLIPSegVisionEncoder(vb, config: config)
        _ = try CLIPSegTextEncoder(vb, config: config)
        _ = try CLIPSegDecoderHead(vb.pp("decoder"), config: config)
        let requested = vb.synthesizedTensors.map { Entry(name: $0.name, shape: $0.shape) }
        XCTAssertEqual(requested.count, Set(requested).count, "a tensor was requested twice")
        // clip.logit_scale is the only tensor deliberately not bound (contrastive head only).
        let expected = Set(upstream).subtracting([Entry(name: "clip.logit_scale", shape: [])])
        XCTAssertEqual(upstream.count, 462)
        XCTAssertEqual(Set(requested).subtracting(expected).map(\.name).sorted(), [], "requested but not upstream")
        XCTAssertEqual(expected.subtracting(requested).map(\.name).sorted(), [], "upstream but not requested")
    }

    /// Full-size shapes end to end at 352×352: the 14×14 → 22×22 position grid, 485-token
    /// activations, the complex head's ×4 ×4 upsampling back to 352×352.
    func testRd64RefinedRunsAt352() throws {
        let config = CLIPSegConfig.rd64Refined
        let vb = WeightLoader.synthesizing(seed: 7)
        let vision = try CLIPSegVisionEncoder(vb, config: config)
        let decoder = try CLIPSegDecoderHead(vb.pp("decoder"), config: config)
        let pixels = Tensor(shape: [1, 3, 352, 352]) { Float(($0 * 7919) % 255) / 127.5 - 1 }
        let start = Date()
        let acts = try vision.activations(pixels)
        XCTAssertEqual(acts.map(\.shape), Array(repeating: [1, 485, 768], count: 3))
        let logits = try decoder(activations: acts, conditionalEmbeddings: Tensor(repeating: 0.1, shape: [2, 512]),
                                 gridHeight: 22, gridWidth: 22)
        print("[CLIPSeg] rd64-refined random weights at 352²: activations + decoder for 2 prompts in \(Date().timeIntervalSince(start)) s")
        XCTAssertEqual(logits.shape, [2, 352, 352])
        XCTAssertTrue(logits.data.allSatisfy(\.isFinite))
        let e = CLIPSegImageEmbedding(activations: acts, extractLayers: config.extractLayers, gridHeight: 22, gridWidth: 22,
                                      originalHeight: 352, originalWidth: 352, inputHeight: 352, inputWidth: 352)
        XCTAssertEqual(e.encoded(dtype: .f32).count, 36 + 12 + 3 * 485 * 768 * 4)
    }
}
