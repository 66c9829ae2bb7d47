import Backends

/// Byte-bounded LRU of image embeddings, keyed by image id. A decoder keeps one for the
/// partitions it owns so that every prompt after the first reuses the encoder's work.
public struct EmbeddingCache: Sendable {
    public let capacityBytes: Int
    public private(set) var usedBytes = 0
    private var entries: [String: (embedding: any BackendEmbedding, bytes: Int, tick: UInt64)] = [:]
    private var tick: UInt64 = 0
    public private(set) var evictions = 0
    /// Evictions and size (`segflow_cache_*`); hits and misses are counted where prompts look.
    public let metrics: CacheMetrics?

    public init(capacityBytes: Int, metrics: CacheMetrics? = nil) {
        precondition(capacityBytes > 0, "cache capacity must be positive")
        self.capacityBytes = capacityBytes
        self.metrics = metrics
    }

    public var count: Int { entries.count }

    /// Inserts (or replaces) and evicts least-recently-used entries beyond the budget. An
    /// embedding larger than the whole budget is still kept alone: dropping it would turn
    /// every prompt for it into a miss.
    public mutating func insert(_ e: any BackendEmbedding, imageID: String) {
        remove(imageID)
        tick += 1
        let bytes = e.bytes
        entries[imageID] = (e, bytes, tick)
        usedBytes += bytes
        while usedBytes > capacityBytes, entries.count > 1,
              let victim = entries.filter({ $0.key != imageID }).min(by: { $0.value.tick < $1.value.tick })?.key {
            remove(victim)
            evictions += 1
            metrics?.evicted()
        }
        metrics?.size(bytes: usedBytes, entries: entries.count)
    }

    /// The embedding for `imageID`, marking it most recently used.
    public mutating func get(_ imageID: String) -> (any BackendEmbedding)? {
        guard var entry = entries[imageID] else { return nil }
        tick += 1
        entry.tick = tick
        entries[imageID] = entry
        return entry.embedding
    }

    public func contains(_ imageID: String) -> Bool { entries[imageID] != nil }

    public mutating func remove(_ imageID: String) {
        if let old = entries.removeValue(forKey: imageID) { usedBytes -= old.bytes }
        metrics?.size(bytes: usedBytes, entries: entries.count)
    }
}
