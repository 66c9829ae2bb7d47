import Foundation
import Messaging
import Serving
import XCTest

/// A record that crashed the service twice is refused on its third delivery.
final class PoisonGuardTests: XCTestCase {
    func record(_ offset: Int64) -> ConsumedMessage {
        ConsumedMessage(topic: "segflow.images", partition: 3, offset: offset, key: nil, value: [], headers: [], timestampMs: nil)
    }

    func testThirdDeliveryOfARecordThatCrashedTwiceIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("poison-\(UUID().uuidString)").path
        // A process dying with record 7 in hand = a guard released without end().
        do { let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "enc")); XCTAssertTrue(g.begin(record(7))) }
        do {
            let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "enc"))
            XCTAssertEqual(g.suspect?.crashes, 1)
            XCTAssertTrue(g.begin(record(7)), "one crash: retried")
        }
        let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "enc"))
        XCTAssertEqual(g.suspect?.crashes, 2)
        XCTAssertTrue(g.begin(record(6)), "other records are handled")
        g.end(record(6))
        XCTAssertFalse(g.begin(record(7)), "two crashes: dead-lettered")
        XCTAssertTrue(g.begin(record(8)))
        g.end(record(8))
    }

    /// A decoder answers parked prompts while the embedding they waited for is in hand:
    /// a crash then is the prompt's (the latest record in hand), not the embedding's.
    func testACrashIsBlamedOnTheLatestRecordInHand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("poison-\(UUID().uuidString)").path
        let embedding = record(10)
        let prompt = ConsumedMessage(topic: "segflow.prompts", partition: 1, offset: 4, key: nil, value: [], headers: [], timestampMs: nil)
        for _ in 1...2 {
            let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
            XCTAssertTrue(g.begin(embedding))
            XCTAssertTrue(g.begin(prompt))
            // dies answering the prompt
        }
        let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
        XCTAssertEqual(g.suspect?.topic, "segflow.prompts")
        XCTAssertEqual(g.suspect?.crashes, 2)
        XCTAssertTrue(g.begin(embedding), "the embedding is not blamed")
        XCTAssertFalse(g.begin(prompt), "the prompt crashed the decoder twice: dead-lettered")
        g.end(embedding)
        // A prompt answered cleanly while the embedding is in hand hands the blame back.
        let other = ConsumedMessage(topic: "segflow.prompts", partition: 1, offset: 5, key: nil, value: [], headers: [], timestampMs: nil)
        XCTAssertTrue(g.begin(embedding)); XCTAssertTrue(g.begin(other)); g.end(other)
        XCTAssertEqual(try String(contentsOfFile: g.statePathForTests, encoding: .utf8), "segflow.images\t3\t10\t0\n")
        g.end(embedding)
        XCTAssertEqual(try String(contentsOfFile: g.statePathForTests, encoding: .utf8), "", "nothing in hand")
    }

    func testHandledRecordsLeaveNothingAndLiveProcessesGetTheirOwnSlots() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("poison-\(UUID().uuidString)").path
        do { let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec")); XCTAssertTrue(g.begin(record(1))); g.end(record(1)) }
        let a = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
        XCTAssertNil(a.suspect, "a clean exit leaves no suspect")
        // A second live process (slot 0 locked) takes slot 1 and inherits nothing.
        XCTAssertTrue(a.begin(record(2)))
        let b = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
        XCTAssertNil(b.suspect)
        XCTAssertNotEqual(a.statePathForTests, b.statePathForTests)
    }
}
