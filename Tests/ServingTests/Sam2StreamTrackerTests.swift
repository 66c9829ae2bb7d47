import Backends
import Foundation
import Imaging
import Messaging
import SAM2
import Tensor
import XCTest

/// SAM 2 stream tracking through the `StreamTracker` the prompt-decoder drives: the state is
/// the object memory banks as bytes, so a snapshot continues a stream exactly.
final class Sam2StreamTrackerTests: XCTestCase {
    static let backend = Result {
        try ModelRegistry.load(ModelLoadRequest(model: "sam2.1-hiera-t",
                                                checkpoint: Sam2BackendTests.fixtures.appendingPathComponent("sam2_video_tiny").path))
    }
    func frame(_ i: Int) throws -> RGBImage {
        try PNG.decodeRGB(contentsOfFile: Sam2BackendTests.fixtures.appendingPathComponent("video_frame\(i % 4).png").path)
    }
    let box = ObjectPrompt(objectID: 7, box: .init(x0: 12, y0: 10, x1: 30, y1: 28))

    func testASnapshotContinuesTheStreamExactly() throws {
        let b = try Self.backend.get()
        let tracker = try XCTUnwrap(b.streamTracker)
        var states: [[UInt8]] = [], answers: [[MaskResult.Mask]] = []
        var state: [UInt8]? = nil
        for t in 0..<6 {
            let out = try tracker.track(frameIndex: UInt64(t), embedding: try b.embed(frame(t)), state: state,
                                        track: StreamTrack(objects: t == 0 ? [box] : []))
            XCTAssertLessThanOrEqual(out.state.count, tracker.maxStateBytes(objects: 1), "state bound at frame \(t)")
            states.append(out.state); answers.append(out.masks)
            state = out.state
        }
        XCTAssertEqual(answers[0][0].trackStatus, .started)
        XCTAssertEqual(answers[1][0].trackStatus, .tracked)
        XCTAssertEqual(answers[0][0].objectID, 7)
        XCTAssertGreaterThan(answers[1][0].area, 0)
        // Resume from the snapshot after frame 2 (as a failover decoder does): frames 3…5 are identical.
        var resumed: [UInt8]? = states[2]
        for t in 3..<6 {
            let out = try tracker.track(frameIndex: UInt64(t), embedding: try b.embed(frame(t)), state: resumed, track: StreamTrack())
            XCTAssertEqual(out.masks, answers[t], "frame \(t) after resuming")
            XCTAssertEqual(out.state, states[t], "state after frame \(t)")
            resumed = out.state
        }
    }

    func testObjectsAreAddedCorrectedAndRemovedOnAnyFrame() throws {
        let b = try Self.backend.get()
        let tracker = try XCTUnwrap(b.streamTracker)
        var out = try tracker.track(frameIndex: 0, embedding: try b.embed(frame(0)), state: nil, track: StreamTrack(objects: [box]))
        let second = ObjectPrompt(objectID: 9, points: [.init(x: 43, y: 29, label: 1)])
        out = try tracker.track(frameIndex: 1, embedding: try b.embed(frame(1)), state: out.state, track: StreamTrack(objects: [second]))
        XCTAssertEqual(out.masks.map(\.objectID), [7, 9])
        XCTAssertEqual(out.masks.map(\.trackStatus), [.tracked, .started])
        let click = ObjectPrompt(objectID: 7, points: [.init(x: 27, y: 21, label: 1)])
        out = try tracker.track(frameIndex: 2, embedding: try b.embed(frame(2)), state: out.state, track: StreamTrack(objects: [click]))
        XCTAssertEqual(out.masks.map(\.trackStatus), [.corrected, .tracked])
        out = try tracker.track(frameIndex: 3, embedding: try b.embed(frame(3)), state: out.state, track: StreamTrack(removeObjects: [7]))
        XCTAssertEqual(out.masks.map(\.objectID), [9])
        XCTAssertThrowsError(try tracker.track(frameIndex: 4, embedding: try b.embed(frame(0)), state: out.state,
                                               track: StreamTrack(removeObjects: [7]))) { e in
            XCTAssertEqual((e as? ServingError)?.code, .invalidPrompt)
            XCTAssertTrue("\(e)".contains("removes object 7"), "\(e)")
        }
        XCTAssertThrowsError(try tracker.track(frameIndex: 3, embedding: try b.embed(frame(3)), state: out.state, track: StreamTrack())) { e in
            XCTAssertEqual((e as? ServingError)?.code, .frameOutOfOrder)
        }
    }

    /// Mutation fuzzing of the state parser (the snapshot topic is input like any other):
    /// every mutated, truncated or extended state parses or throws — never traps, never
    /// allocates past its bounds.
    func testTheStateParserSurvivesMutations() throws {
        let b = try Self.backend.get()
        let tracker = try XCTUnwrap(b.streamTracker)
        var out = try tracker.track(frameIndex: 0, embedding: try b.embed(frame(0)), state: nil, track: StreamTrack(objects: [box]))
        out = try tracker.track(frameIndex: 1, embedding: try b.embed(frame(1)), state: out.state, track: StreamTrack())
        let good = out.state
        let position = try XCTUnwrap((b as? Sam2Backend)?.video?.memoryPosition)
        XCTAssertEqual(try Sam2StreamState(serialized: good, position: position).serialized(), good, "round trip")
        var rng = SplitMix64(seed: 0x5A2)  // reproducible mutations
        var parsed = 0, refused = 0
        for i in 0..<3000 {
            var m = good
            switch i % 4 {
            case 0: for _ in 0..<(1 + Int.random(in: 0..<4, using: &rng)) { m[Int.random(in: 0..<m.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            case 1: m = Array(m.prefix(Int.random(in: 0..<m.count, using: &rng)))
            case 2: m += (0..<Int.random(in: 1..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            default:
                // A count field blown up: the 4 bytes after the header, or anywhere.
                let at = i % 8 == 3 ? 12 : Int.random(in: 0..<(m.count - 4), using: &rng)
                m.replaceSubrange(at..<(at + 4), with: [0xff, 0xff, 0xff, UInt8.random(in: 0...255, using: &rng)])
            }
            do { _ = try Sam2StreamState(serialized: m, position: position); parsed += 1 } catch { refused += 1 }
        }
        print("[fuzz] SAM 2 stream state: \(parsed) mutated states parsed, \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }

    func testForgedStateAndImageOnlyCheckpointsAreRefused() throws {
        let b = try Self.backend.get()
        let tracker = try XCTUnwrap(b.streamTracker)
        let e0 = try b.embed(frame(0))
        let good = try tracker.track(frameIndex: 0, embedding: e0, state: nil, track: StreamTrack(objects: [box])).state
        var forged = good
        forged.replaceSubrange(12..<16, with: [0xff, 0xff, 0xff, 0x7f])  // object count
        for (label, bytes) in [("truncated", Array(good.prefix(good.count / 2))), ("not a state", [UInt8](repeating: 1, count: 40)),
                               ("object count", forged)] {
            XCTAssertThrowsError(try tracker.track(frameIndex: 1, embedding: e0, state: bytes, track: StreamTrack()), label) { e in
                XCTAssertEqual((e as? ServingError)?.code, .invalidPrompt, label)
                XCTAssertTrue("\(e)".contains("stream state"), "\(label): \(e)")
            }
        }
        XCTAssertThrowsError(try tracker.track(frameIndex: 0, embedding: e0, state: nil, track: StreamTrack())) { e in
            XCTAssertEqual((e as? ServingError)?.code, .streamNotFound)
        }
        // The image-mode directory has no memory modules: tracking says what to bring.
        let image = try Sam2BackendTests.backend.get()
        XCTAssertThrowsError(try image.streamTracker!.track(frameIndex: 0, embedding: try image.embed(frame(0)), state: nil,
                                                            track: StreamTrack(objects: [box]))) { e in
            XCTAssertEqual((e as? ServingError)?.code, .unsupported)
            XCTAssertTrue("\(e)".contains("sam2_video"), "\(e)")
        }
    }
}
