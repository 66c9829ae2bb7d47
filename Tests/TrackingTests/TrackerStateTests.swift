import Imaging
import SAM
import Tensor
import Tracking
import XCTest

/// State format and input checks on a synthetic stream (no weights needed): a random
/// embedding and a stand-in decoder that answers every box prompt with the box filled.
final class TrackerStateTests: XCTestCase {
    static let (width, height) = (120, 90)

    static func embedding(seed: UInt64) -> ImageEmbedding {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(shape: [1, 16, 16, 16]) { _ in rng.nextFloat() - 0.5 }
        return ImageEmbedding(model: .liteMedSAM, embedding: t, originalSize: (height, width), inputSize: (192, 256))
    }

    /// Each prompt's box (or a 10-px square at its first point) filled, +1 inside, −1 outside.
    static func boxDecoder(_ prompts: [SamPrompt]) -> [SamPrediction] {
        prompts.map { p in
            let m = p.multimask ? 3 : 1
            let b = p.box ?? (p.points[0].x - 5, p.points[0].y - 5, p.points[0].x + 5, p.points[0].y + 5)
            var logits = [Float](repeating: -1, count: m * width * height)
            for k in 0..<m { for y in 0..<height { for x in 0..<width where Float(x) >= b.0 && Float(x) <= b.2 && Float(y) >= b.1 && Float(y) <= b.3 {
                logits[(k * height + y) * width + x] = 1
            } } }
            return SamPrediction(lowResLogits: Tensor(zeros: [m, 64, 64]), iouPredictions: Array(repeating: 0.9, count: m),
                                 logits: Tensor(shape: [m, height, width], data: logits))
        }
    }

    static let box = TrackerPrompt(box: .init(x0: 30, y0: 20, x1: 69, y1: 59))

    /// A stream with two objects after `frames` frames (the same embedding every frame).
    func stream(frames: Int, seed: UInt64 = 1) throws -> StreamState {
        var state = StreamState()
        let tracker = ObjectTracker()
        let emb = Self.embedding(seed: seed)
        for i in 0..<frames {
            let add: [UInt32: TrackerPrompt] = i == 0 ? [7: Self.box, 9: TrackerPrompt(box: .init(x0: 5, y0: 5, x1: 24, y1: 30))] : [:]
            _ = try tracker.step(state: &state, frameIndex: UInt64(i), embedding: emb, add: add, predict: Self.boxDecoder)
        }
        return state
    }

    func testRoundTripAndByteCount() throws {
        let state = try stream(frames: 5)
        XCTAssertEqual(state.objectIDs, [7, 9])
        let bytes = state.serialized()
        XCTAssertEqual(bytes.count, state.byteCount)
        let back = try StreamState(serialized: bytes)
        XCTAssertEqual(back, state)
        XCTAssertEqual(back.serialized(), bytes)
        XCTAssertEqual(back.lastFrameIndex, 4)
        XCTAssertEqual(try StreamState(serialized: StreamState().serialized()), StreamState())
    }

    /// Memory per stream is bounded: after the history fills, more frames do not grow the state.
    func testStateSizeDoesNotGrowWithFrames() throws {
        let config = TrackerConfig()
        let a = try stream(frames: config.motionHistory + config.shapeMemory + 2), b = try stream(frames: 40)
        XCTAssertEqual(a.byteCount, b.byteCount)
        XCTAssertEqual(b.objects.map(\.history.count), [config.motionHistory, config.motionHistory])
        XCTAssertEqual(b.objects.map(\.shapes.count), [config.shapeMemory, config.shapeMemory])
        print("[state] bytes per stream with 2 objects (16 channels): \(b.byteCount)")
    }

    func testBadBytesThrowNamedErrors() throws {
        let bytes = try stream(frames: 3).serialized()
        XCTAssertThrowsError(try StreamState(serialized: [])) { XCTAssertEqual($0 as? TrackerStateError, .truncated(field: "magic", offset: 0)) }
        var magic = bytes; magic[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try StreamState(serialized: magic)) { XCTAssertEqual($0 as? TrackerStateError, .badMagic) }
        var version = bytes; version[4] = 9
        XCTAssertThrowsError(try StreamState(serialized: version)) { XCTAssertEqual($0 as? TrackerStateError, .unsupportedVersion(9)) }
        XCTAssertThrowsError(try StreamState(serialized: bytes + [0])) { XCTAssertEqual($0 as? TrackerStateError, .trailingBytes(1)) }
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try StreamState(serialized: Array(bytes[..<n])), "prefix of \(n) bytes") { XCTAssert($0 is TrackerStateError) }
        }
    }

    /// Mutated snapshots never trap: they are rejected with a TrackerStateError, or they read
    /// as a state that writes back the same bytes and can be stepped.
    func testMutatedBytesNeverTrap() throws {
        let bytes = try stream(frames: 3).serialized()
        var rng = SplitMix64(seed: 42)
        var accepted = 0
        for trial in 0..<600 {
            var b = bytes
            for _ in 0..<(1 + trial % 3) { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do {
                var s = try StreamState(serialized: b)
                XCTAssertEqual(s.serialized(), b)
                accepted += 1
                // Stepping a strange but well-formed state either works or throws a named error.
                do {
                    _ = try ObjectTracker().step(state: &s, frameIndex: (s.lastFrameIndex ?? 0) &+ 1, embedding: Self.embedding(seed: 1),
                                                 predict: Self.boxDecoder)
                } catch is TrackerError {}
            } catch is TrackerStateError {}
        }
        print("[state] mutated snapshots read back: \(accepted) of 600")
    }

    func testBadInputIsNamed() throws {
        var state = try stream(frames: 2)
        let before = state
        let t = ObjectTracker(), emb = Self.embedding(seed: 1)
        func expect(_ e: TrackerError, frame: UInt64 = 2, embedding: ImageEmbedding? = nil, add: [UInt32: TrackerPrompt] = [:],
                    correct: [UInt32: TrackerPrompt] = [:], line: UInt = #line) {
            XCTAssertThrowsError(try t.step(state: &state, frameIndex: frame, embedding: embedding ?? emb, add: add, correct: correct,
                                            predict: Self.boxDecoder), line: line) { XCTAssertEqual($0 as? TrackerError, e, "\($0)", line: line) }
            XCTAssertEqual(state, before, "a rejected frame changes nothing", line: line)
        }
        expect(.unknownObject(3), correct: [3: Self.box])
        expect(.objectExists(7), add: [7: Self.box])
        expect(.emptyBox(objectID: 8, x0: 10, y0: 10, x1: 10, y1: 20), add: [8: TrackerPrompt(box: .init(x0: 10, y0: 10, x1: 10, y1: 20))])
        expect(.emptyPrompt(objectID: 8), add: [8: TrackerPrompt()])
        expect(.promptOutsideFrame(objectID: 7, what: "box.x1", value: 500, limit: 120), correct: [7: TrackerPrompt(box: .init(x0: 1, y0: 1, x1: 500, y1: 20))])
        expect(.promptOutsideFrame(objectID: 8, what: "point[0].x", value: .nan, limit: 120),
               add: [8: TrackerPrompt(points: [.init(x: .nan, y: 3, label: 1)])])
        expect(.invalidLabel(objectID: 8, label: 2), add: [8: TrackerPrompt(points: [.init(x: 3, y: 3, label: 2)])])
        expect(.frameOutOfOrder(last: 1, got: 1), frame: 1)
        let other = ImageEmbedding(model: .liteMedSAM, embedding: emb.embedding, originalSize: (100, 120), inputSize: (213, 256))
        expect(.frameSizeChanged(expected: (120, 90), actual: (120, 100)), embedding: other)
        var few = TrackerConfig(); few.maxObjects = 2
        XCTAssertThrowsError(try ObjectTracker(config: few).step(state: &state, frameIndex: 2, embedding: emb, add: [1: Self.box],
                                                                 predict: Self.boxDecoder)) {
            XCTAssertEqual($0 as? TrackerError, .tooManyObjects(limit: 2))
        }
    }

    /// A correction for a known object on a later frame re-anchors it (and only it).
    func testCorrectionMovesTheObject() throws {
        var state = try stream(frames: 3)
        let moved = TrackerPrompt(box: .init(x0: 70, y0: 40, x1: 109, y1: 79))
        let r = try ObjectTracker().step(state: &state, frameIndex: 3, embedding: Self.embedding(seed: 1), correct: [7: moved],
                                         predict: Self.boxDecoder)
        XCTAssertEqual(r.map(\.status), [.corrected, .tracked])
        XCTAssertEqual(r[0].mask.boundingBox, BoundingBox(x: 70, y: 40, width: 40, height: 40))
        XCTAssertEqual(state.object(7)?.history.map(\.box), [TrackBox(x0: 70, y0: 40, x1: 110, y1: 80)])
    }
}
