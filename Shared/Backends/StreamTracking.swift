import Foundation
import Imaging
import Messaging

/// One tracked frame's answer: a mask per object (object id and status set) and the
/// stream's state after the frame.
public struct TrackedFrame: Sendable {
    public var masks: [MaskResult.Mask]
    public var state: [UInt8]
    public init(masks: [MaskResult.Mask], state: [UInt8]) { self.masks = masks; self.state = state }
}

/// A model that follows objects through a stream of frames (README, Streams). The state
/// is the model's own versioned bytes: the prompt-decoder keeps it per stream, snapshots
/// it to the stream-state topic after every frame and hands it back for the next frame,
/// so any decoder can continue a stream from a snapshot. Deterministic: the same state,
/// embedding and prompts give the same masks and state, which is what makes a failover
/// continue exactly like an uninterrupted run.
public protocol StreamTracker: Sendable {
    /// The most bytes `state` can take for `objects` objects (memory per stream is bounded
    /// by this, whatever the stream's length).
    func maxStateBytes(objects: Int) -> Int
    /// Frame `frameIndex` of a stream. `state` nil = the stream starts here
    /// (`track.objects` must then name at least one object). Unknown object ids in
    /// `removeObjects`, prompts outside the frame or bad state bytes are errors naming them.
    func track(frameIndex: UInt64, embedding: any BackendEmbedding, state: [UInt8]?, track: StreamTrack) throws(ServingError) -> TrackedFrame
}

/// A tracked stream run in this process, through the same `StreamTracker` the
/// prompt-decoder drives (so in-process and Kafka answers are the same masks).
public struct InProcessStream: Sendable {
    public let backend: any SegmentationBackend
    public private(set) var state: [UInt8]?
    public private(set) var lastFrameIndex: UInt64?

    public init(backend: any SegmentationBackend) throws(ServingError) {
        guard backend.streamTracker != nil else { throw ServingError(.unsupported, "model '\(backend.modelName)' does not track streams") }
        self.backend = backend
    }

    /// Encodes and tracks the next frame (indices must increase).
    public mutating func frame(_ image: RGBImage, index: UInt64, objects: [ObjectPrompt] = [], removeObjects: [UInt32] = [],
                               outputFormat: OutputFormat = .rle) throws -> [MaskResult.Mask] {
        if let last = lastFrameIndex, index <= last {
            throw ServingError(.frameOutOfOrder, "frame \(index) after frame \(last); frame indices must increase")
        }
        let embedding = try backend.embed(image)
        let out = try backend.streamTracker!.track(frameIndex: index, embedding: embedding, state: state,
                                                   track: StreamTrack(objects: objects, removeObjects: removeObjects, outputFormat: outputFormat))
        state = out.state
        lastFrameIndex = index
        return out.masks
    }
}
