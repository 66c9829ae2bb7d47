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
