import Foundation
import Imaging
import SAM
import Tracking
import XCTest

/// The tracker on real photographs with synthetic camera motion (Sequences.swift), with
/// LiteMedSAM's real weights, against ground truth made independently on the full
/// photographs (Tests/Reference/make_tracking_fixtures.py). Every run prints its
/// per-object, per-frame IoU table ("[eval] …" lines; the README quotes them).
final class TrackerEvaluationTests: XCTestCase {
    /// Every frame of every object must overlap its ground truth by at least this. 0.5 is
    /// the usual "same object" cut (COCO's loosest). It is not higher because the ground
    /// truth is LiteMedSAM on the full photograph, whose 256-px encoder sees the object at
    /// another resolution than in the crop: the ground truth's own tight box decoded on the
    /// crops scores 0.5–0.98 against it (Python prototype, same frames). Measured for the new
    /// tracker: per-sequence minima 0.57 (chelsea-pan) / 0.61 (coffee-zoom) / 0.72
    /// (astronaut-mix) (README table); the old VideoTracker falls below 0.2 by frame 3 on at
    /// least one object of every sequence.
    static let minPerFrameIoU: Float = 0.5
    /// Each object's mean IoU over the sequence must be at least this (new tracker: 0.71–0.97
    /// per object; old: 0.12–0.71).
    static let minMeanIoU: Float = 0.6

    static let motionSequences = [Evaluation.chelseaPan, Evaluation.coffeeZoom, Evaluation.astronautMix]

    /// Frames and objects that miss the bar (empty when the tracker holds).
    func violations(_ s: Evaluation.Sequence, _ r: RunResult) -> [String] {
        var out: [String] = []
        for (k, ious) in r.iou.enumerated() {
            for (f, v) in ious.enumerated() where v < Self.minPerFrameIoU {
                out.append("\(s.name) \(s.objects[k]) frame \(f): IoU \(String(format: "%.2f", v)) < \(Self.minPerFrameIoU)")
            }
            let mean = ious.reduce(0, +) / Float(ious.count)
            if mean < Self.minMeanIoU { out.append("\(s.name) \(s.objects[k]): mean IoU \(String(format: "%.2f", mean)) < \(Self.minMeanIoU)") }
        }
        return out
    }

    func testTrackerHoldsObjectsThroughPansAndZooms() throws {
        for s in Self.motionSequences {
            let r = try Runs.tracker(s)
            print(Runs.table(s, "new", r))
            let bad = violations(s, r)
            XCTAssert(bad.isEmpty, "the tracker drifted:\n" + bad.joined(separator: "\n"))
            for (k, st) in r.status.enumerated() {
                XCTAssertEqual(st.first, .started); XCTAssert(!st.dropFirst().contains(.lost), "\(s.name) \(s.objects[k]) lost: \(st)")
            }
        }
    }

    /// The same bar on the old tracker (previous logits as mask input + previous mask's box),
    /// so the test above is one that can fail: the old tracker misses it on every sequence.
    func testOldVideoTrackerFailsTheSameBar() throws {
        for s in Self.motionSequences {
            let r = try Runs.baseline(s)
            print(Runs.table(s, "old", r))
            XCTAssertFalse(violations(s, r).isEmpty, "\(s.name): the old VideoTracker was expected to drift")
        }
    }

    /// Three objects of one stream: one predict call per frame carrying every object's prompts.
    func testObjectsOfAStreamAreDecodedTogether() throws {
        var calls: [Int] = []
        let s = Evaluation.chelseaPan
        let r = try Runs.tracker(s, predictCalls: { calls.append($0) })
        XCTAssertEqual(calls.count, s.windows.count, "one predict call per frame")
        XCTAssertEqual(calls.first, 3, "frame 0: one prompt per new object")
        XCTAssert(calls.dropFirst().allSatisfy { $0 == 6 }, "later frames: a single- and a multimask prompt per object, together: \(calls)")
        XCTAssertEqual(r.results.map { $0.map(\.objectID) }, Array(repeating: [1, 2, 3], count: s.windows.count))
    }

    /// Object 2 is started on the wrong thing (the cup's box instead of the spoon's); a box
    /// on frame 3 corrects it, and from then on it follows the spoon.
    func testCorrectionReanchorsThatObject() throws {
        let s = Evaluation.coffeeZoom
        let (frames, _) = try Harness.shared.embedded(s)
        func prompt(_ m: BinaryMask) -> TrackerPrompt {
            let b = Evaluation.tightBox(m); return TrackerPrompt(box: .init(x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1))
        }
        let k = 3
        let r = try Runs.tracker(s, start: [1: prompt(frames[0].truth[0]), 2: prompt(frames[0].truth[0])],
                                 corrections: [k: [2: prompt(frames[k].truth[1])]])
        print(Runs.table(s, "corrected", r))
        XCTAssert(r.iou[1][..<k].allSatisfy { $0 < 0.3 }, "before the correction object 2 is on the cup, not the spoon")
        XCTAssertEqual(r.status[1][k], .corrected)
        XCTAssertEqual(r.status[0][k], .tracked, "a correction touches only its object")
        for f in k..<frames.count {
            XCTAssertGreaterThanOrEqual(r.iou[1][f], Self.minPerFrameIoU, "frame \(f): object 2 follows the spoon after the correction")
            XCTAssertGreaterThanOrEqual(r.iou[0][f], Self.minPerFrameIoU, "frame \(f): object 1 still follows the cup")
        }
    }

    /// The rule (README): an object whose predicted box leaves the view, or whose best match
    /// is weak, is lost with an empty mask; a lost object is searched for over the whole frame
    /// and re-acquired on the first frame where at least 70% of the matched box is in view and
    /// the match and mask are strong — else it stays lost. Whatever is not lost is good.
    func testObjectLeavingTheViewIsLostThenReacquired() throws {
        let s = Evaluation.coffeeExit
        let (frames, _) = try Harness.shared.embedded(s)
        let r = try Runs.tracker(s)
        print(Runs.table(s, "new", r))
        for (f, frame) in frames.enumerated() {
            let res = r.results[f][0]
            if frame.truth[0].area == 0 {
                XCTAssertEqual(res.status, .lost, "frame \(f): the spoon is out of view")
            }
            if res.status == .lost {
                XCTAssertEqual(res.mask.area, 0, "frame \(f): a lost object has no mask")
            } else {
                XCTAssertGreaterThanOrEqual(r.iou[0][f], Self.minPerFrameIoU, "frame \(f): a mask given is a good one (\(res.status))")
            }
        }
        // Frame 6: the spoon is back across its full width (window x 160); it must be found there.
        XCTAssertEqual(r.status[0][6], .reacquired)
        XCTAssertEqual(r.status[0][7], .tracked)
    }

    /// A decoder that takes the stream over restores the snapshot and continues exactly as an
    /// uninterrupted run (same masks, statuses and final state bytes) — across lost and
    /// re-acquired frames.
    func testRestoredStateContinuesLikeAnUninterruptedRun() throws {
        let s = Evaluation.coffeeExit
        let whole = try Runs.tracker(s)
        let first = try Runs.tracker(s, frameRange: 0..<3)
        let restored = try StreamState(serialized: first.stateBytes)
        XCTAssertEqual(restored.serialized(), first.stateBytes)
        let rest = try Runs.tracker(s, frameRange: 3..<s.windows.count, state: restored)
        XCTAssertEqual(Array(whole.results[3...]), rest.results)
        XCTAssertEqual(whole.stateBytes, rest.stateBytes)
    }

    func testSameInputsGiveTheSameResultsAndBytes() throws {
        let s = Evaluation.astronautMix
        let a = try Runs.tracker(s), b = try Runs.tracker(s)
        XCTAssertEqual(a.results, b.results)
        XCTAssertEqual(a.stateBytes, b.stateBytes)
    }
}
