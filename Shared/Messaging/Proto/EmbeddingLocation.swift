import CProtobufC
import CSegflowProto

/// image-encoder → `segflow.embedding-index` (compacted, key = image id): where an
/// image's embedding chunks are on `segflow.embeddings`.
public struct EmbeddingLocation: Sendable, Hashable {
    public var imageID: String
    public var requestID: String
    public var model: String
    public var partition: Int32
    public var firstOffset: Int64
    public var lastOffset: Int64
    public var chunkCount: UInt32
    public var producedAtMs: Int64

    public init(imageID: String, requestID: String, model: String, partition: Int32, firstOffset: Int64, lastOffset: Int64,
                chunkCount: UInt32, producedAtMs: Int64) {
        self.imageID = imageID; self.requestID = requestID; self.model = model; self.partition = partition
        self.firstOffset = firstOffset; self.lastOffset = lastOffset; self.chunkCount = chunkCount; self.producedAtMs = producedAtMs
    }

    /// Most records between a location's first and last chunk a reader will scan.
    public static let maxSpan: Int64 = 4096

    /// Where the chunks just produced are, from their delivery reports (partition,
    /// offset), or nil when the reports cannot say: none, chunks on different
    /// partitions, a report without an offset (librdkafka's implicit acknowledgement,
    /// see `Producer.send`), or a span a reader would refuse. Indexing nothing is safe
    /// (the embedding is published; only an on-demand fetch of it later is lost);
    /// indexing a wrong place is not — readers reject it (offset −1001 seen in the
    /// fault matrix before this check).
    public init?(imageID: String, requestID: String, model: String, reportedPartitions: [Int32], offsets: [Int64], producedAtMs: Int64) {
        guard let partition = reportedPartitions.first, reportedPartitions.count == offsets.count,
              reportedPartitions.allSatisfy({ $0 == partition }), partition >= 0,
              let first = offsets.min(), let last = offsets.max(), first >= 0,
              last - first <= Self.maxSpan, Int64(offsets.count) <= last - first + 1 else { return nil }
        self.init(imageID: imageID, requestID: requestID, model: model, partition: partition, firstOffset: first, lastOffset: last,
                  chunkCount: UInt32(offsets.count), producedAtMs: producedAtMs)
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__embedding_location__init)
        m.pointee.image_id = arena.string(imageID)
        m.pointee.request_id = arena.string(requestID)
        m.pointee.model = arena.string(model)
        m.pointee.partition = partition
        m.pointee.first_offset = firstOffset
        m.pointee.last_offset = lastOffset
        m.pointee.chunk_count = chunkCount
        m.pointee.produced_at_ms = producedAtMs
        return packMessage(m, size: segflow__v1__embedding_location__get_packed_size, pack: segflow__v1__embedding_location__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "EmbeddingLocation")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__embedding_location__unpack,
                                 free: segflow__v1__embedding_location__free_unpacked) { m in
            guard m.partition >= 0, m.first_offset >= 0, m.last_offset >= m.first_offset,
                  m.last_offset - m.first_offset <= EmbeddingLocation.maxSpan, m.chunk_count >= 1,
                  Int64(m.chunk_count) <= m.last_offset - m.first_offset + 1 else {
                throw reader.invalid("partition/offsets/chunk_count", "\(m.partition) \(m.first_offset)...\(m.last_offset) ×\(m.chunk_count)",
                                     "a partition ≥ 0, first ≤ last offset at most \(EmbeddingLocation.maxSpan) apart, 1 ≤ chunks ≤ span",
                                     code: .invalidProtobuf)
            }
            return EmbeddingLocation(imageID: try reader.requiredString(m.image_id, "image_id"),
                                     requestID: try reader.requiredString(m.request_id, "request_id"),
                                     model: try reader.requiredString(m.model, "model"), partition: m.partition,
                                     firstOffset: m.first_offset, lastOffset: m.last_offset, chunkCount: m.chunk_count,
                                     producedAtMs: m.produced_at_ms)
        }
    }
}
