/// # How 4 MiB embeddings travel through Kafka: chunking
///
/// A SAM ViT embedding is 256×64×64 floats: 4 MiB as f32, 2 MiB as f16. A stock broker
/// accepts records up to `message.max.bytes` ≈ 1 MiB, and librdkafka's producer also
/// defaults `message.max.bytes` to 1,000,000. Raising the limits instead would need
/// agreement from every layer: the topic's `max.message.bytes`, the producer's
/// `message.max.bytes`, consumers' `fetch.max.bytes`/`max.partition.fetch.bytes`,
/// the brokers' `replica.fetch.max.bytes`, and any proxy or managed service with a hard
/// cap (e.g. 1 MiB on Azure Event Hubs). Segflow must run on clusters it does not
/// administer, and a mistake there surfaces only at run time as MSG_SIZE_TOO_LARGE.
///
/// So the encoder splits each embedding into chunks of at most `defaultMaxChunkBytes`
/// (512 KiB, half the stock limit, leaving room for metadata, headers and record-batch
/// overhead), each a full `ImageEmbedding` with `chunk_index`/`chunk_count`/`total_bytes`.
/// All chunks share the key (image id), hence the partition, so they arrive in order on
/// one consumer. The consumer's `EmbeddingAssembler` joins them by (image_id, request_id)
/// with a byte bound, so a producer that dies mid-embedding cannot exhaust memory.
///
/// Also tested against the mock broker (which enforces no size limit at all, so a
/// raised-limits design could not even be tested there honestly). Chunking does not
/// change the mock's retention: it keeps ~5 MiB per partition, i.e. about one f32 SAM
/// embedding (two f16), so in embedded mode a decoder can rebuild only the newest
/// embeddings of each partition from the topic; use f16 and more partitions there.
extension ImageEmbedding {
    /// 512 KiB of tensor bytes per chunk.
    public static let defaultMaxChunkBytes = 512 * 1024

    /// Splits a complete embedding into chunks of at most `maxChunkBytes` data bytes.
    /// Metadata is repeated in every chunk so each one validates on its own.
    public func chunked(maxChunkBytes: Int = ImageEmbedding.defaultMaxChunkBytes) -> [ImageEmbedding] {
        precondition(maxChunkBytes > 0, "maxChunkBytes must be positive, got \(maxChunkBytes)")
        precondition(isComplete, "chunked() needs a complete embedding, got chunk \(chunkIndex) of \(chunkCount)")
        let count = max(1, (data.count + maxChunkBytes - 1) / maxChunkBytes)
        return (0..<count).map { index in
            var chunk = self
            let start = index * maxChunkBytes
            chunk.data = Array(data[start..<min(start + maxChunkBytes, data.count)])
            chunk.chunkIndex = UInt32(index)
            chunk.chunkCount = UInt32(count)
            chunk.totalBytes = UInt64(data.count)
            return chunk
        }
    }
}

/// Reassembles chunked embeddings, bounded in memory.
///
/// Chunks may arrive interleaved with other embeddings and duplicated (at-least-once
/// redelivery, or an encoder that restarted and re-sent everything); a duplicate index is
/// ignored. Every chunk must agree with the first one seen on all metadata. When adding a
/// chunk would exceed `maxPendingBytes` or `maxPendingEmbeddings`, the oldest incomplete
/// embeddings are dropped (reported by `takeEvicted()`); a later prompt for them gets
/// EMBEDDING_NOT_FOUND, which is the right outcome for a producer that never finished.
///
/// Offsets: never commit past the first chunk of an incomplete embedding, or a restart
/// would resume mid-embedding and never complete it. `commitFloor(partition:)` gives the
/// lowest offset still needed.
public struct EmbeddingAssembler: Sendable {
    public struct Key: Hashable, Sendable {
        public var imageID: String
        public var requestID: String
    }

    public enum Outcome: Sendable, Equatable {
        /// The last missing chunk arrived; the embedding is whole and validated.
        case complete(ImageEmbedding)
        case incomplete(received: Int, of: Int)
        case duplicate
    }

    private struct Pending: Sendable {
        var first: ImageEmbedding  // metadata reference (its data is in `chunks`)
        var chunks: [Int: [UInt8]]
        var bytes: Int
        var partition: Int32
        var firstOffset: Int64
        var sequence: Int
    }

    public let maxPendingBytes: Int
    public let maxPendingEmbeddings: Int
    private var pending: [Key: Pending] = [:]
    private var evicted: [Key] = []
    private var sequence = 0
    public private(set) var pendingBytes = 0

    /// Defaults hold 16 SAM f32 embeddings in flight (64 MiB).
    public init(maxPendingBytes: Int = 64 * 1024 * 1024, maxPendingEmbeddings: Int = 16) {
        self.maxPendingBytes = maxPendingBytes
        self.maxPendingEmbeddings = max(1, maxPendingEmbeddings)
    }

    public var pendingCount: Int { pending.count }

    /// Adds one decoded chunk (from `ImageEmbedding(bytes:)`, so it is self-consistent).
    /// `partition`/`offset` locate the record for `commitFloor`.
    public mutating func add(_ chunk: ImageEmbedding, partition: Int32 = 0, offset: Int64 = -1) throws -> Outcome {
        if chunk.isComplete { return .complete(chunk) }
        let key = Key(imageID: chunk.imageID, requestID: chunk.requestID)
        let index = Int(chunk.chunkIndex)
        if var entry = pending[key] {
            try Self.checkConsistent(chunk, with: entry.first)
            if entry.chunks[index] != nil { return .duplicate }
            try makeRoom(for: chunk.data.count, keeping: key)
            entry.chunks[index] = chunk.data
            entry.bytes += chunk.data.count
            if offset >= 0 && (entry.firstOffset < 0 || offset < entry.firstOffset) { entry.firstOffset = offset }
            pendingBytes += chunk.data.count
            if entry.chunks.count == Int(chunk.chunkCount) {
                pending[key] = nil
                pendingBytes -= entry.bytes
                return .complete(try Self.assemble(entry))
            }
            let received = entry.chunks.count
            pending[key] = entry
            return .incomplete(received: received, of: Int(chunk.chunkCount))
        }
        if chunk.totalBytes > UInt64(maxPendingBytes) {
            throw MessagingError.inconsistentChunk(imageID: key.imageID, requestID: key.requestID,
                                                   reason: "embedding of \(chunk.totalBytes) bytes exceeds the assembler bound of \(maxPendingBytes) bytes")
        }
        try makeRoom(for: chunk.data.count, keeping: nil)
        while pending.count >= maxPendingEmbeddings { evictOldest() }
        sequence += 1
        var first = chunk
        first.data = []
        pending[key] = Pending(first: first, chunks: [index: chunk.data], bytes: chunk.data.count,
                               partition: partition, firstOffset: offset, sequence: sequence)
        pendingBytes += chunk.data.count
        return .incomplete(received: 1, of: Int(chunk.chunkCount))
    }

    /// Keys of incomplete embeddings dropped to stay within bounds since the last call.
    public mutating func takeEvicted() -> [Key] {
        defer { evicted = [] }
        return evicted
    }

    /// The lowest offset in `partition` that an incomplete embedding still needs, or nil.
    /// Commit min(this, processed offset + 1).
    public func commitFloor(partition: Int32) -> Int64? {
        pending.values.filter { $0.partition == partition && $0.firstOffset >= 0 }.map(\.firstOffset).min()
    }

    private mutating func makeRoom(for byteCount: Int, keeping key: Key?) throws {
        while pendingBytes + byteCount > maxPendingBytes {
            guard let victim = pending.filter({ $0.key != key }).min(by: { $0.value.sequence < $1.value.sequence })?.key else {
                throw MessagingError.inconsistentChunk(imageID: key?.imageID ?? "", requestID: key?.requestID ?? "",
                                                       reason: "chunk of \(byteCount) bytes does not fit the assembler bound of \(maxPendingBytes) bytes")
            }
            drop(victim)
        }
    }

    private mutating func evictOldest() {
        if let victim = pending.min(by: { $0.value.sequence < $1.value.sequence })?.key { drop(victim) }
    }

    private mutating func drop(_ key: Key) {
        if let entry = pending.removeValue(forKey: key) {
            pendingBytes -= entry.bytes
            evicted.append(key)
        }
    }

    private static func checkConsistent(_ chunk: ImageEmbedding, with first: ImageEmbedding) throws {
        func fail(_ field: String, _ got: Any, _ expected: Any) -> MessagingError {
            .inconsistentChunk(imageID: chunk.imageID, requestID: chunk.requestID,
                               reason: "chunk \(chunk.chunkIndex) has \(field) \(got), earlier chunks had \(expected)")
        }
        if chunk.chunkCount != first.chunkCount { throw fail("chunk_count", chunk.chunkCount, first.chunkCount) }
        if chunk.totalBytes != first.totalBytes { throw fail("total_bytes", chunk.totalBytes, first.totalBytes) }
        if chunk.shape != first.shape { throw fail("shape", chunk.shape, first.shape) }
        if chunk.dtype != first.dtype { throw fail("dtype", chunk.dtype, first.dtype) }
        if chunk.model != first.model { throw fail("model", chunk.model, first.model) }
        if chunk.inputHeight != first.inputHeight || chunk.inputWidth != first.inputWidth
            || chunk.originalHeight != first.originalHeight || chunk.originalWidth != first.originalWidth {
            throw fail("image sizes", [chunk.originalHeight, chunk.originalWidth, chunk.inputHeight, chunk.inputWidth],
                       [first.originalHeight, first.originalWidth, first.inputHeight, first.inputWidth])
        }
    }

    private static func assemble(_ entry: Pending) throws -> ImageEmbedding {
        var whole = entry.first
        var data = [UInt8]()
        data.reserveCapacity(Int(whole.totalBytes))
        for index in 0..<Int(whole.chunkCount) { data.append(contentsOf: entry.chunks[index]!) }
        if UInt64(data.count) != whole.totalBytes {
            throw MessagingError.inconsistentChunk(imageID: whole.imageID, requestID: whole.requestID,
                                                   reason: "\(whole.chunkCount) chunks hold \(data.count) bytes, total_bytes says \(whole.totalBytes)")
        }
        whole.data = data
        whole.chunkIndex = 0
        whole.chunkCount = 1
        return whole
    }
}
