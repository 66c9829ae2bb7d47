import Foundation

/// Records larger than a stock broker's limit (message.max.bytes 1,000,000) travel as
/// several records of one key, each carrying a slice of the value and three headers
/// (README, "Large records"):
///   `segflow-chunk-id`    an id shared by the slices of one record (UTF-8),
///   `segflow-chunk`       "INDEX/COUNT" (0-based),
///   `segflow-chunk-total` the whole value's byte count.
/// Every slice carries the original record's other headers. Same key → same partition, so
/// a consumer sees a record's slices in order; `RecordAssembler` rebuilds the record.
/// Images use it (a 6000×4000 photo's PNG is ~8.6 MB); embeddings have their own chunking
/// in the message (ImageEmbedding) because decoders validate each chunk's tensor fields.
public enum RecordChunking {
    public static let idHeader = "segflow-chunk-id"
    public static let indexHeader = "segflow-chunk"
    public static let totalHeader = "segflow-chunk-total"
    /// Value bytes per slice: under 1,000,000 with room for key, headers and framing.
    public static let defaultSliceBytes = 900 * 1024
    /// Largest record reassembled (64 MiB) and most slices: bounds what a forged header can make a consumer allocate.
    public static let maxTotalBytes = 64 * 1024 * 1024
    public static var maxSlices: Int { (maxTotalBytes + defaultSliceBytes - 1) / defaultSliceBytes }

    /// `record` itself when it fits, else its slices.
    public static func split(_ record: ProducerRecord, sliceBytes: Int = defaultSliceBytes, id: String = UUID().uuidString) -> [ProducerRecord] {
        precondition(sliceBytes > 0)
        guard record.value.count > sliceBytes else { return [record] }
        let count = (record.value.count + sliceBytes - 1) / sliceBytes
        return (0..<count).map { index in
            var slice = record
            slice.value = Array(record.value[(index * sliceBytes)..<min((index + 1) * sliceBytes, record.value.count)])
            slice.headers = record.headers + [KafkaHeader(name: idHeader, string: id), KafkaHeader(name: indexHeader, string: "\(index)/\(count)"),
                                              KafkaHeader(name: totalHeader, string: "\(record.value.count)")]
            return slice
        }
    }
}

/// Why a slice cannot be used (the assembler drops it; the caller reports it).
public struct ChunkError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Rebuilds sliced records (RecordChunking) as they are consumed, within a memory bound.
public struct RecordAssembler: Sendable {
    public enum Outcome: Sendable {
        /// An unsliced record, or the last slice: the whole record (first slice's coordinates,
        /// the original headers), and the offsets of every slice it was built from.
        case complete(ConsumedMessage, sliceOffsets: [Int64])
        /// More slices to come.
        case incomplete
    }

    struct Pending: Sendable {
        var first: ConsumedMessage
        var slices: [Int: [UInt8]]
        var offsets: [Int64]
        let count: Int
        let total: Int
        var bytes: Int
        let sequence: Int
    }

    public let maxPendingBytes: Int
    private var pending: [String: Pending] = [:]
    private var sequence = 0
    public private(set) var pendingBytes = 0
    private var dropped: [(ConsumedMessage, [Int64])] = []

    public init(maxPendingBytes: Int = 2 * RecordChunking.maxTotalBytes) {
        self.maxPendingBytes = maxPendingBytes
    }

    /// Offsets still held by incomplete records of `partition` (commit below the lowest).
    public func heldOffsets(partition: Int32) -> [Int64] {
        pending.values.filter { $0.first.partition == partition }.flatMap(\.offsets)
    }

    /// Incomplete records evicted to stay in bounds since the last call (first slice, its offsets).
    public mutating func takeDropped() -> [(ConsumedMessage, [Int64])] {
        defer { dropped = [] }
        return dropped
    }

    public mutating func add(_ message: ConsumedMessage) throws(ChunkError) -> Outcome {
        guard let id = message.headers.string(named: RecordChunking.idHeader) else { return .complete(message, sliceOffsets: [message.offset]) }
        let parts = (message.headers.string(named: RecordChunking.indexHeader) ?? "").split(separator: "/")
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, count <= RecordChunking.maxSlices, index >= 0, index < count,
              let total = message.headers.string(named: RecordChunking.totalHeader).flatMap({ Int($0) }), total >= 0, total <= RecordChunking.maxTotalBytes
        else {
            throw ChunkError(description: "slice headers \(RecordChunking.indexHeader)=\(message.headers.string(named: RecordChunking.indexHeader) ?? "missing") \(RecordChunking.totalHeader)=\(message.headers.string(named: RecordChunking.totalHeader) ?? "missing") are invalid (at most \(RecordChunking.maxSlices) slices, \(RecordChunking.maxTotalBytes) bytes)")
        }
        let key = "\(message.partition)/\(id)"
        var entry: Pending
        if let existing = pending[key] {
            guard existing.count == count, existing.total == total else {
                throw ChunkError(description: "slice \(index)/\(count) of record \(id) disagrees with earlier slices (\(existing.count) slices, \(existing.total) bytes)")
            }
            entry = existing
        } else {
            sequence += 1
            entry = Pending(first: message, slices: [:], offsets: [], count: count, total: total, bytes: 0, sequence: sequence)
        }
        if entry.slices[index] == nil {
            guard entry.bytes + message.value.count <= total else {
                throw ChunkError(description: "slices of record \(id) exceed its declared \(total) bytes")
            }
            entry.slices[index] = message.value
            entry.bytes += message.value.count
            pendingBytes += message.value.count
        }
        entry.offsets.append(message.offset)
        if index == 0 { entry.first = message }
        pending[key] = entry
        while pendingBytes > maxPendingBytes, let victim = pending.filter({ $0.key != key }).min(by: { $0.value.sequence < $1.value.sequence })?.key {
            let v = pending.removeValue(forKey: victim)!
            pendingBytes -= v.bytes
            dropped.append((v.first, v.offsets))
        }
        guard entry.slices.count == count else { return .incomplete }
        pending[key] = nil
        pendingBytes -= entry.bytes
        var value = [UInt8]()
        value.reserveCapacity(total)
        for i in 0..<count { value += entry.slices[i]! }
        guard value.count == total else {
            throw ChunkError(description: "record \(id): \(count) slices hold \(value.count) bytes, \(RecordChunking.totalHeader) says \(total)")
        }
        var whole = entry.first
        whole.value = value
        whole.headers = whole.headers.filter { ![RecordChunking.idHeader, RecordChunking.indexHeader, RecordChunking.totalHeader].contains($0.name) }
        return .complete(whole, sliceOffsets: entry.offsets)
    }
}
