import Pipeline
import SAM
import XCTest

final class PromptParsingTests: XCTestCase {
    func testPoints() throws {
        XCTAssertEqual(try PromptParsing.point("10,20"), SamPrompt.Point(x: 10, y: 20, label: 1))
        XCTAssertEqual(try PromptParsing.point(" 1.5, 2.25 ,0"), SamPrompt.Point(x: 1.5, y: 2.25, label: 0))
        for bad in ["10", "a,b", "1,2,3", "1,2,1,4", "nan,1", "inf,2", ""] {
            XCTAssertThrowsError(try PromptParsing.point(bad), bad)
        }
    }

    func testBoxes() throws {
        let b = try PromptParsing.box("1,2,30,40")
        XCTAssertEqual([b.x0, b.y0, b.x1, b.y1], [1, 2, 30, 40])
        XCTAssertThrowsError(try PromptParsing.box("30,2,1,40")) { XCTAssertTrue("\($0)".contains("x0 <= x1")) }
        XCTAssertThrowsError(try PromptParsing.box("1,2,3"))
    }

    func testOnePromptPerBoxCarryingAllPoints() throws {
        let ps = try PromptParsing.prompts(points: ["5,5", "6,6,0"], boxes: ["0,0,10,10", "1,1,9,9"], multimask: true)
        XCTAssertEqual(ps.count, 2)
        XCTAssertEqual(ps[1].points.count, 2)
        XCTAssertTrue(ps.allSatisfy(\.multimask))
        XCTAssertThrowsError(try PromptParsing.prompts(points: [], boxes: [], multimask: false))
    }

    func testModelNamesAndCheckpointErrors() throws {
        XCTAssertEqual(try ModelStore.kind(named: "LiteMedSAM"), .liteMedSAM)
        XCTAssertThrowsError(try ModelStore.kind(named: "sam-vit-x")) { XCTAssertTrue("\($0)".contains("sam-vit-b")) }
        XCTAssertThrowsError(try ModelStore.checkpoint(for: .samViTB, given: nil)) {
            XCTAssertTrue("\($0)".contains("sam_vit_b_01ec64.pth"), "\($0)")
        }
        XCTAssertThrowsError(try ModelStore.checkpoint(for: .samViTB, given: "/nonexistent/x.pth")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/x.pth"))
        }
    }

    func testPathsFollowEnvironment() {
        XCTAssertEqual(SegflowPaths.liteMedSAMCheckpoint(environment: ["SEGFLOW_HOME": "/a"]).path, "/a/weights/lite_medsam.pth")
        XCTAssertEqual(SegflowPaths.liteMedSAMCheckpoint(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).path, "/c/segflow/weights/lite_medsam.pth")
        XCTAssertEqual(SegflowPaths.liteMedSAMCheckpoint(environment: ["HOME": "/h"]).path, "/h/.cache/segflow/weights/lite_medsam.pth")
    }
}
