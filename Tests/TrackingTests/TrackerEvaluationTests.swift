import Foundation
import Imaging
import SAM
import Tracking
import XCTest

final class TrackerEvaluationTests: XCTestCase {
    func testPrintTable() throws {
        for s in [Evaluation.chelseaPan, Evaluation.coffeeZoom, Evaluation.astronautMix, Evaluation.coffeeExit] {
            let t0 = Date()
            _ = try Harness.shared.embedded(s)
            let t1 = Date()
            let old = try Runs.baseline(s)
            let t2 = Date()
            let new = try Runs.tracker(s)
            let t3 = Date()
            print(Runs.table(s, "old", old)); print(Runs.table(s, "new", new)); print(Runs.diagnostics(s, new))
            print(String(format: "[eval] %@ embed %.2fs old %.2fs new %.2fs", s.name, t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2)))
        }
    }
}
