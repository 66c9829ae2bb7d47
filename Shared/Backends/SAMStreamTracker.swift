import Foundation
import Imaging
import Messaging
import SAM
import Tracking

extension SAMBackend {
    public var streamTracker: (any StreamTracker)? { SAMStreamTracker(backend: self) }
}

/// SAM-family stream tracking: the Tracking library's ObjectTracker (motion line,
/// appearance search in the frame's embedding, shape-consistency judge), all objects of a
/// frame decoded in one batch. The state is `Tracking.StreamState`'s versioned bytes.
struct SAMStreamTracker: StreamTracker {
    let backend: SAMBackend
    static let tracker = ObjectTracker()

    /// Measured: 33 bytes + ~13.6 KiB per object for a 256-channel embedding; 32 KiB per
    /// object leaves room for the history and templates at their configured caps.
    func maxStateBytes(objects: Int) -> Int { 64 + objects * 32 * 1024 }

    func track(frameIndex: UInt64, embedding: any BackendEmbedding, state bytes: [UInt8]?, track: StreamTrack) throws(ServingError) -> TrackedFrame {
        try backend.checkOwnership(embedding, imageID: "frame \(frameIndex)")
        guard let emb = embedding as? SAM.ImageEmbedding else { throw ServingError(.internal, "not a SAM embedding") }
        if bytes == nil && track.objects.isEmpty {
            throw ServingError(.streamNotFound, "frame \(frameIndex) has no state and names no objects: start a stream with at least one object prompt")
        }
        var state: StreamState
        do { state = try bytes.map { try StreamState(serialized: $0) } ?? StreamState() } catch {
            throw ServingError(.invalidPrompt, "stream state (\(bytes?.count ?? 0) bytes) is unreadable: \(error)")
        }
        for id in track.removeObjects where !state.removeObject(id) {
            throw ServingError(.invalidPrompt, "frame \(frameIndex) removes object \(id), which the stream does not track (tracked: \(state.objectIDs))")
        }
        var add: [UInt32: TrackerPrompt] = [:], correct: [UInt32: TrackerPrompt] = [:]
        for o in track.objects {
            let p = TrackerPrompt(points: o.points.map { SamPrompt.Point(x: $0.x, y: $0.y, label: Int($0.label)) },
                                  box: o.box.map { .init(x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1) })
            if state.object(o.objectID) != nil { correct[o.objectID] = p } else { add[o.objectID] = p }
        }
        guard state.objects.count + add.count <= StreamTrack.maxObjects else {
            throw ServingError(.invalidPrompt, "the stream would track \(state.objects.count + add.count) objects; at most \(StreamTrack.maxObjects)")
        }
        let results: [FrameObjectResult]
        do {
            results = try Self.tracker.step(state: &state, frameIndex: frameIndex, embedding: emb, add: add, correct: correct) { prompts in
                try backend.sam.predict(emb, prompts)
            }
        } catch let e as TrackerError {
            switch e {
            case .frameOutOfOrder: throw ServingError(.frameOutOfOrder, e.description)
            case .embeddingShape, .frameSizeChanged, .stateLayout: throw ServingError(.shapeMismatch, e.description)
            default: throw ServingError(.invalidPrompt, e.description)
            }
        } catch let e as SamError {
            throw ServingError(e.isShapeProblem ? .shapeMismatch : .invalidPrompt, e.description)
        } catch {
            throw ServingError(.internal, "\(error)")
        }
        var masks: [MaskResult.Mask] = []
        do {
            for r in results {
                var wire = try WireMask.encode(r.mask, format: track.outputFormat, predictedIoU: r.score, stabilityScore: 0)
                wire.objectID = r.objectID
                wire.trackStatus = switch r.status {
                case .started: .started
                case .tracked: .tracked
                case .corrected: .corrected
                case .reacquired: .reacquired
                case .lost: .lost
                }
                masks.append(wire)
            }
        } catch { throw ServingError(.internal, "\(error)") }
        return TrackedFrame(masks: masks, state: state.serialized())
    }
}
