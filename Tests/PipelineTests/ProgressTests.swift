import Pipeline
import XCTest

final class ProgressTests: XCTestCase {
    func testLineCountsAndEstimates() {
        XCTAssertEqual(ProgressReporter.line(label: "everything", done: 1, total: 4, item: "cat", elapsedMs: 2000),
                       "everything 1/4 (25%) cat, about 6 s left")
        XCTAssertEqual(ProgressReporter.line(label: "embed", done: 4, total: 4, item: "", elapsedMs: 9000), "embed 4/4 (100%)")
        // A video of unknown length (total 0) or whose estimate was low: the count alone.
        XCTAssertEqual(ProgressReporter.line(label: "track", done: 7, total: 0, item: "frame 7", elapsedMs: 900), "track 7 frame 7")
        XCTAssertEqual(ProgressReporter.line(label: "track", done: 7, total: 6, item: "", elapsedMs: 900), "track 7")
    }

    /// Quiet when asked, or when stderr is not a terminal (as under XCTest's pipes); when
    /// enabled, each update rewrites one line and finish() clears it.
    func testQuietAndTerminalOnly() {
        var written: [String] = []
        let quiet = ProgressReporter(total: 2, label: "x", quiet: true, write: { written.append($0) })
        quiet.advance("a"); quiet.finish()
        XCTAssertFalse(quiet.enabled)
        XCTAssertEqual(written, [])
        let shown = ProgressReporter(total: 2, label: "x", quiet: false, enabled: true, write: { written.append($0) })
        shown.advance("a"); shown.advance("b"); shown.finish()
        XCTAssertEqual(written.count, 3)
        XCTAssertTrue(written[0].hasPrefix("\rx 1/2 (50%) a"), written[0])
        XCTAssertTrue(written[1].hasPrefix("\rx 2/2 (100%) b"), written[1])
        // Cleared: the last line's width in blanks between carriage returns.
        XCTAssertEqual(written[2], "\r" + String(repeating: " ", count: "x 2/2 (100%) b".count) + "\r")
    }

    func testSpeedLineNamesEveryStage() {
        let t = StageTimings(["preprocess": 3.14, "encode": 412, "decode": 20.44])
        XCTAssertEqual(t.speedText, "3.1ms preprocess, 412.0ms encode, 20.4ms decode, - postprocess")
        XCTAssertEqual(StageTimings.imageLine(index: 2, total: 5, name: "cat.jpg", width: 451, height: 300, summary: "12 masks", timings: t),
                       "image 2/5 cat.jpg 451x300: 12 masks, Speed: 3.1ms preprocess, 412.0ms encode, 20.4ms decode, - postprocess")
    }
}
