import SAM
import Backends
import Serving
import Tensor
import XCTest

final class EmbeddingCacheTests: XCTestCase {
    func emb(_ floats: Int) -> ImageEmbedding {
        ImageEmbedding(model: .liteMedSAM, embedding: Tensor(zeros: [1, floats, 1, 1]), originalSize: (1, 1), inputSize: (1, 1))
    }

    func testEvictsLeastRecentlyUsedWithinByteBudget() {
        var c = EmbeddingCache(capacityBytes: 3 * 400)
        c.insert(emb(100), imageID: "a"); c.insert(emb(100), imageID: "b"); c.insert(emb(100), imageID: "c")
        XCTAssertEqual(c.usedBytes, 1200)
        XCTAssertNotNil(c.get("a"))                  // a is now most recent
        c.insert(emb(100), imageID: "d")             // evicts b
        XCTAssertFalse(c.contains("b"))
        XCTAssertTrue(c.contains("a") && c.contains("c") && c.contains("d"))
        XCTAssertEqual(c.evictions, 1)
        c.insert(emb(250), imageID: "e")             // 1000 bytes: evicts c, a, d
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c.usedBytes, 1000)
    }

    func testReplacingKeepsAccountingExact() {
        var c = EmbeddingCache(capacityBytes: 10_000)
        c.insert(emb(100), imageID: "a"); c.insert(emb(50), imageID: "a")
        XCTAssertEqual(c.usedBytes, 200)
        c.remove("a")
        XCTAssertEqual(c.usedBytes, 0)
    }

    func testOversizeEntryIsKeptAlone() {
        var c = EmbeddingCache(capacityBytes: 100)
        c.insert(emb(10), imageID: "small")
        c.insert(emb(1000), imageID: "big")
        XCTAssertEqual(c.count, 1)
        XCTAssertTrue(c.contains("big"))
    }
}

final class PendingPromptsTests: XCTestCase {
    func testReleaseExpireAndCap() {
        var p = PendingPrompts<String>(maxWaitMs: 100, maxItems: 3)
        XCTAssertEqual(p.park("p1", imageID: "a", nowMs: 0), [])
        XCTAssertEqual(p.park("p2", imageID: "b", nowMs: 10), [])
        XCTAssertEqual(p.park("p3", imageID: "a", nowMs: 20), [])
        XCTAssertEqual(p.park("p4", imageID: "c", nowMs: 30), ["p1"])  // cap pushes out the oldest
        XCTAssertEqual(p.release(imageID: "a"), ["p3"])
        XCTAssertEqual(p.nextDeadlineMs(nowMs: 50), 60)
        XCTAssertEqual(p.expire(nowMs: 115), ["p2"])
        XCTAssertEqual(p.expire(nowMs: 131), ["p4"])
        XCTAssertTrue(p.isEmpty)
    }
}

final class OffsetTrackerTests: XCTestCase {
    func testNeverCommitsPastAnUnansweredRecord() {
        var t = OffsetTracker()
        for o in Int64(5)...8 { t.begin(o) }
        XCTAssertEqual(t.finish(6), 5)   // 5 still in flight: resume there, never past it
        XCTAssertNil(t.finish(8))        // position stays at 5
        XCTAssertEqual(t.finish(5), 7)   // 7 still in flight
        XCTAssertEqual(t.finish(7), 9)
        XCTAssertEqual(t.pendingCount, 0)
        t.begin(9)
        XCTAssertEqual(t.finish(9), 10)
    }
}

final class PendingPromptsRevocationTests: XCTestCase {
    func testRemoveAllDropsOnlyMatchingItems() {
        var p = PendingPrompts<Int>(maxWaitMs: 1000, maxItems: 10)
        for i in 0..<6 { _ = p.park(i, imageID: "img-\(i % 2)", nowMs: 0) }
        XCTAssertEqual(p.removeAll { $0 % 2 == 1 }, [1, 3, 5])
        XCTAssertEqual(p.count, 3)
        XCTAssertEqual(p.release(imageID: "img-0"), [0, 2, 4])
    }
}
