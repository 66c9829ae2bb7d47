import CProtobufC
import CSegflowProto

/// prompt-decoder → `segflow.stream-state` (compacted, key = stream id): what a decoder
/// needs to continue a tracked stream after its last answered frame. A tombstone (null
/// value) marks a stream that ended or expired.
public struct StreamSnapshot: Sendable, Hashable {
    public var streamID: String
    public var lastFrameIndex: UInt64
    public var model: String
    /// The backend's tracker state (versioned and validated by the backend).
    public var trackerState: [UInt8]
    public var updatedAtMs: Int64
    public var lastRequestID: String
    /// The encoded `MaskResult` answering `lastFrameIndex` (empty in snapshots written
    /// before this field existed). The snapshot is durable before that answer is sent, so
    /// a failover decoder can re-send an answer its predecessor died before sending.
    public var lastResult: [UInt8]

    public init(streamID: String, lastFrameIndex: UInt64, model: String, trackerState: [UInt8], updatedAtMs: Int64, lastRequestID: String,
                lastResult: [UInt8] = []) {
        self.streamID = streamID; self.lastFrameIndex = lastFrameIndex; self.model = model
        self.trackerState = trackerState; self.updatedAtMs = updatedAtMs; self.lastRequestID = lastRequestID
        self.lastResult = lastResult
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__stream_snapshot__init)
        m.pointee.stream_id = arena.string(streamID)
        m.pointee.last_frame_index = lastFrameIndex
        m.pointee.model = arena.string(model)
        m.pointee.tracker_state = arena.bytes(trackerState)
        m.pointee.updated_at_ms = updatedAtMs
        m.pointee.last_request_id = arena.string(lastRequestID)
        m.pointee.last_result = arena.bytes(lastResult)
        return packMessage(m, size: segflow__v1__stream_snapshot__get_packed_size, pack: segflow__v1__stream_snapshot__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "StreamSnapshot")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__stream_snapshot__unpack,
                                 free: segflow__v1__stream_snapshot__free_unpacked) { m in
            StreamSnapshot(streamID: try reader.requiredString(m.stream_id, "stream_id"), lastFrameIndex: m.last_frame_index,
                           model: try reader.requiredString(m.model, "model"), trackerState: reader.bytes(m.tracker_state),
                           updatedAtMs: m.updated_at_ms, lastRequestID: try reader.string(m.last_request_id, "last_request_id"),
                           lastResult: reader.bytes(m.last_result))
        }
    }
}
