import Metrics

/// Prompts that arrived before their image's embedding, waiting a bounded time.
///
/// Embeddings and prompts travel on different topics, so a prompt can overtake its
/// embedding. It is parked here until the embedding arrives or `maxWait` passes (then it
/// is answered with EMBEDDING_NOT_FOUND), and the number parked is capped so a flood of
/// prompts for images that never come cannot exhaust memory (the oldest is expired first).
public struct PendingPrompts<Item: Sendable>: Sendable {
    public let maxWaitMs: Double
    public let maxItems: Int
    private var items: [(imageID: String, item: Item, arrivedMs: Double)] = []
    /// Follows `count` after each park, release and expiry (`segflow_parked_prompts`).
    let parkedGauge: Gauge?

    public init(maxWaitMs: Double, maxItems: Int, parkedGauge: Gauge? = nil) {
        self.maxWaitMs = maxWaitMs
        self.maxItems = maxItems
        self.parkedGauge = parkedGauge
    }

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }

    /// Parks `item`; returns the items pushed out by the size cap (to be answered with an error).
    public mutating func park(_ item: Item, imageID: String, nowMs: Double) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        items.append((imageID, item, nowMs))
        var overflow: [Item] = []
        while items.count > maxItems { overflow.append(items.removeFirst().item) }
        return overflow
    }

    /// Removes and returns the items waiting for `imageID`, oldest first.
    public mutating func release(imageID: String) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        let ready = items.filter { $0.imageID == imageID }.map(\.item)
        items.removeAll { $0.imageID == imageID }
        return ready
    }

    /// Removes and returns the items `matching` says to drop (e.g. those of revoked partitions).
    public mutating func removeAll(where matching: (Item) -> Bool) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        let gone = items.filter { matching($0.item) }.map(\.item)
        items.removeAll { matching($0.item) }
        return gone
    }

    /// Removes and returns the items that have waited longer than `maxWaitMs`.
    public mutating func expire(nowMs: Double) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        let expired = items.filter { nowMs - $0.arrivedMs > maxWaitMs }.map(\.item)
        items.removeAll { nowMs - $0.arrivedMs > maxWaitMs }
        return expired
    }

    /// Time until the oldest item expires (for sleeping), nil when empty.
    public func nextDeadlineMs(nowMs: Double) -> Double? {
        items.map { $0.arrivedMs + maxWaitMs - nowMs }.min()
    }
}
