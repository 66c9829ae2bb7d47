import Messaging
import XCTest

final class EverythingFieldTests: XCTestCase {
    func testAutomaticMaskParamsRoundTrip() throws {
        let p = AutomaticMaskParams(pointsPerSide: 16, pointsPerBatch: 32, predIoUThresh: 0.5, stabilityScoreThresh: 0.8,
                                    stabilityScoreOffset: 0.5, boxNMSThresh: 0.6, minMaskRegionArea: 100)
        let r = PromptRequest(requestID: "r", imageID: "i", everything: p)
        let back = try PromptRequest(bytes: r.encode())
        XCTAssertEqual(back.everything, p)
        XCTAssertNil(try PromptRequest(bytes: PromptRequest(requestID: "r", imageID: "i").encode()).everything)
    }

    func testNonFiniteThresholdIsRejectedNamingTheField() {
        let r = PromptRequest(requestID: "r", imageID: "i", everything: AutomaticMaskParams(predIoUThresh: .nan))
        XCTAssertThrowsError(try PromptRequest(bytes: r.encode())) { XCTAssertTrue("\($0)".contains("everything.pred_iou_thresh"), "\($0)") }
    }
}

extension EverythingFieldTests {
    /// Regression: an explicit 0 threshold was read as "upstream default" on the wire
    /// (in-process honoured it), so LiteMedSAM's `everything` with 0 thresholds kept no masks
    /// over Kafka.
    func testExplicitZeroThresholdSurvivesTheWire() throws {
        let p = AutomaticMaskParams(predIoUThresh: 0, stabilityScoreThresh: 0, stabilityScoreOffset: 0, boxNMSThresh: 0)
        let back = try PromptRequest(bytes: PromptRequest(requestID: "r", imageID: "i", everything: p).encode()).everything
        XCTAssertEqual(back?.predIoUThresh, 0)
        XCTAssertEqual(back?.stabilityScoreThresh, 0)
        XCTAssertEqual(back?.stabilityScoreOffset, 0)
        XCTAssertEqual(back?.boxNMSThresh, 0)
        // Unset stays unset.
        let unset = try PromptRequest(bytes: PromptRequest(requestID: "r", imageID: "i", everything: AutomaticMaskParams()).encode())
        XCTAssertNil(unset.everything?.predIoUThresh)
        XCTAssertNil(unset.everything?.stabilityScoreThresh)
    }

    /// A writer that predates the Threshold sub-messages (only the float fields, 0 = unset)
    /// is still read as before: field 3 (pred_iou_thresh) = 0.5 as a fixed32.
    func testLegacyFloatFieldsAreStillRead() throws {
        // PromptRequest{request_id "r" (1), image_id "i" (2), everything (15) {pred_iou_thresh (3) = 0.5f}}
        let half: [UInt8] = [0x00, 0x00, 0x00, 0x3f]
        let params: [UInt8] = [0x1d] + half
        let bytes: [UInt8] = [0x0a, 0x01, 0x72, 0x12, 0x01, 0x69, 0x7a, UInt8(params.count)] + params
        let r = try PromptRequest(bytes: bytes)
        XCTAssertEqual(r.everything?.predIoUThresh, 0.5)
        XCTAssertNil(r.everything?.stabilityScoreThresh)
    }
}
