import XCTest
import Serving

/// The parked-prompt wait follows the encoders' progress, bounded by maxParkMs.
final class PendingPromptsProgressTests: XCTestCase {
    func testPlainWaitWithoutProgress() {
        var p = PendingPrompts<String>(maxWaitMs: 1000, maxItems: 10)
        _ = p.park("a", imageID: "x", nowMs: 0)
        XCTAssertEqual(p.expire(nowMs: 999), [])
        XCTAssertEqual(p.expire(nowMs: 1001), ["a"])
    }

    func testProgressExtendsTheWait() {
        var p = PendingPrompts<String>(maxWaitMs: 1000, maxItems: 10, maxParkMs: 5000)
        _ = p.park("a", imageID: "x", nowMs: 0)
        // Embeddings keep arriving every 800 ms: the prompt behind the burst keeps waiting.
        for t in stride(from: 800.0, through: 4000, by: 800) {
            p.noteProgress(nowMs: t)
            XCTAssertEqual(p.expire(nowMs: t + 100), [], "at \(t) ms")
        }
        // Progress stops at 4000: maxWaitMs later it expires.
        XCTAssertEqual(p.expire(nowMs: 4900), [])
        XCTAssertEqual(p.expire(nowMs: 5001), ["a"])
    }

    func testHardBoundDespiteProgress() {
        var p = PendingPrompts<String>(maxWaitMs: 1000, maxItems: 10, maxParkMs: 3000)
        _ = p.park("a", imageID: "x", nowMs: 0)
        for t in stride(from: 500.0, through: 10_000, by: 500) {
            p.noteProgress(nowMs: t)
            let gone = p.expire(nowMs: t)
            if t <= 3000 { XCTAssertEqual(gone, [], "at \(t)") } else { XCTAssertEqual(gone, ["a"]); return }
        }
        XCTFail("never expired")
    }

    func testProgressBeforeArrivalDoesNotShortenTheWait() {
        var p = PendingPrompts<String>(maxWaitMs: 1000, maxItems: 10)
        p.noteProgress(nowMs: 0)
        _ = p.park("a", imageID: "x", nowMs: 500)
        XCTAssertEqual(p.expire(nowMs: 1400), [])
        XCTAssertEqual(p.nextDeadlineMs(nowMs: 1400) ?? -1, 100, accuracy: 1e-9)
        XCTAssertEqual(p.expire(nowMs: 1501), ["a"])
    }
}
