import Checkpoint
import Foundation
import SAM
import Tensor
import XCTest

/// The Swift modules ask for exactly the tensors (names and shapes) the official
/// checkpoints hold: listing from segment_anything.sam_model_registry and mobile_sam's
/// build_sam_vit_t (Tests/Reference/make_sam_fixtures.py → official_state_dicts.json).
final class OfficialArchitectureTests: XCTestCase {
    static let listing: [String: [[JSONValue]]] = {
        let url = Bundle.module.url(forResource: "official_state_dicts", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode([String: [[JSONValue]]].self, from: Data(contentsOf: url))
    }()

    enum JSONValue: Decodable {
        case name(String), shape([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .name(s) } else { self = .shape(try c.decode([Int].self)) }
        }
    }

    /// Tensors the official files hold that inference deliberately does not read.
    static func ignoredUpstream(_ name: String) -> Bool {
        name.hasSuffix("num_batches_tracked") || name.hasPrefix("image_encoder.norm_head.") || name.hasPrefix("image_encoder.head.")
    }

    func check(_ kind: SamModelKind) throws {
        let expected = try XCTUnwrap(Self.listing[kind.rawValue]).compactMap { row -> String? in
            guard case let .name(n) = row[0], case let .shape(s) = row[1], !Self.ignoredUpstream(n) else { return nil }
            return "\(n) \(s)"
        }
        let vb = WeightLoader.synthesizing(zeros: true)
        _ = try Sam.build(kind, vb)
        let asked = vb.synthesizedTensors.map { "\($0.name) \($0.shape)" }
        XCTAssertEqual(Set(asked).count, asked.count, "\(kind): a tensor was requested twice")
        let missing = Set(expected).subtracting(asked).sorted(), extra = Set(asked).subtracting(expected).sorted()
        XCTAssertEqual(missing, [], "\(kind): upstream tensors Segflow does not load")
        XCTAssertEqual(extra, [], "\(kind): tensors Segflow asks for that upstream does not have")
    }

    func testSamViTB() throws { try check(.samViTB) }
    func testSamViTL() throws { try check(.samViTL) }
    func testSamViTH() throws { try check(.samViTH) }
    func testMobileSAM() throws { try check(.mobileSAM) }
}

final class MobileSAMParityTests: XCTestCase {
    /// LiteMedSAM's real weights + MobileSAM-shaped random patch-embedding convs, exactly as
    /// make_sam_fixtures.py assembles the reference model.
    func testMobileSAMLayoutMatchesMobileSAMUpstream() throws {
        let checkpoint = LiteMedSAMRealWeightsTests.checkpoint
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("LiteMedSAM checkpoint missing at \(checkpoint.path)") }
            throw XCTSkip("LiteMedSAM checkpoint not cached; run Deploy/setup.sh")
        }
        let base = try StateDict(contentsOf: checkpoint)
        let patchURL = try XCTUnwrap(Bundle.module.url(forResource: "mobilesam_patch_embed", withExtension: "safetensors", subdirectory: "Fixtures"))
        let patch = try StateDict(contentsOf: patchURL)
        var tensors: [(name: String, tensor: Tensor)] = []
        for name in base.names {
            tensors.append((name, patch.contains(name) ? try patch.tensor(named: name) : try base.tensor(named: name)))
        }
        let merged = try StateDict(bytes: SafeTensorsWriter.encode(tensors))
        let vb = try WeightLoader(merged)
        let sam = try Sam.build(.mobileSAM, vb)
        try vb.finish()

        let golden = try Golden("mobilesam_golden")
        let spec = try XCTUnwrap(loadCases()["mobilesam"])
        let image = try fixtureImage("coffee")
        let emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
        let stats = try golden.tensor("mobilesam.embedding_stats").data
        XCTAssertLessThanOrEqual(maxAbsDiff(subsample(emb.embedding, step: 4), try golden.tensor("mobilesam.embedding_sub4").data),
                                 Tolerance.embeddingRelative * stats[2], "embedding")
        for (i, c) in spec.cases.enumerated() {
            let p = try sam.predict(emb, prompt(c))
            let refLow = try golden.tensor("mobilesam.case\(i).low_res_sub2")
            XCTAssertLessThanOrEqual(maxAbsDiff(subsample(p.lowResLogits, step: 2), refLow.data),
                                     Tolerance.logitsRelative * maxAbs(refLow.data), "case \(i): logits")
            XCTAssertLessThanOrEqual(maxAbsDiff(p.iouPredictions, try golden.tensor("mobilesam.case\(i).iou").data), Tolerance.iouAbsolute)
            let refMasks = try golden.masks("mobilesam.case\(i).masks_packed", height: spec.height, width: spec.width)
            for (m, ref) in refMasks.enumerated() {
                XCTAssertGreaterThanOrEqual(iou(p.mask(m), ref), Tolerance.maskIoUMinimum, "case \(i) mask \(m)")
            }
        }
    }
}
