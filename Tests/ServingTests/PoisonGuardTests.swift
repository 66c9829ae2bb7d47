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
        g.end()
        XCTAssertFalse(g.begin(record(7)), "two crashes: dead-lettered")
        XCTAssertTrue(g.begin(record(8)))
        g.end()
    }

    func testHandledRecordsLeaveNothingAndLiveProcessesGetTheirOwnSlots() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("poison-\(UUID().uuidString)").path
        do { let g = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec")); XCTAssertTrue(g.begin(record(1))); g.end() }
        let a = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
        XCTAssertNil(a.suspect, "a clean exit leaves no suspect")
        // A second live process (slot 0 locked) takes slot 1 and inherits nothing.
        XCTAssertTrue(a.begin(record(2)))
        let b = try XCTUnwrap(PoisonGuard(directory: dir, service: "dec"))
        XCTAssertNil(b.suspect)
        XCTAssertNotEqual(a.statePathForTests, b.statePathForTests)
    }
}
