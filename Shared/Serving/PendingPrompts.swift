import Metrics

/// Prompts that arrived before their image's embedding, waiting a bounded time.
///
/// Embeddings and prompts travel on different topics, so a prompt can overtake its
/// embedding. It is parked here until the embedding arrives or its wait runs out (then it
/// is answered with EMBEDDING_NOT_FOUND), and the number parked is capped so a flood of
/// prompts for images that never come cannot exhaust memory (the oldest is expired first).
///
/// The wait follows the encoders' progress, not only the clock: while embeddings keep
/// arriving (`noteProgress`; a burst of images is being worked through), a prompt waits on,
/// and it expires `maxWaitMs` after the later of its arrival and the last progress — but
/// never later than `maxParkMs` after its arrival. So a prompt for an image queued behind
/// a burst is answered, and one for an image that never comes still fails in bounded time.
/// Once an encoder has started on the image itself (`noteEncoding`: its progress notice),
/// the image's prompts wait up to `maxParkMs` — the embedding is being computed.
public struct PendingPrompts<Item: Sendable>: Sendable {
    public let maxWaitMs: Double
    /// The hard bound on a prompt's wait, however long the encoders keep progressing.
    public let maxParkMs: Double
    public let maxItems: Int
    private var lastProgressMs = -Double.infinity
    /// Images an encoder has started on (progress notices), with when.
    private var encoding: [String: Double] = [:]
    private var items: [(imageID: String, item: Item, arrivedMs: Double)] = []
    /// Follows `count` after each park, release and expiry (`segflow_parked_prompts`).
    let parkedGauge: Gauge?

    public init(maxWaitMs: Double, maxItems: Int, maxParkMs: Double? = nil, parkedGauge: Gauge? = nil) {
        self.maxWaitMs = maxWaitMs
        self.maxParkMs = max(maxWaitMs, maxParkMs ?? 10 * maxWaitMs)
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

    /// Whether any item waits for `imageID`.
    public func isWaiting(imageID: String) -> Bool { items.contains { $0.imageID == imageID } }

    /// Removes and returns the items waiting for `imageID`, oldest first.
    public mutating func release(imageID: String) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        encoding[imageID] = nil
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

    /// An embedding (or a chunk of one) arrived: the encoders are making progress.
    public mutating func noteProgress(nowMs: Double) { lastProgressMs = max(lastProgressMs, nowMs) }

    /// An encoder started on `imageID` (also progress).
    public mutating func noteEncoding(imageID: String, nowMs: Double) {
        noteProgress(nowMs: nowMs)
        encoding[imageID] = nowMs
    }

    /// When an item for `imageID` that arrived at `arrivedMs` expires.
    func deadline(imageID: String, arrivedMs: Double) -> Double {
        if encoding[imageID] != nil { return arrivedMs + maxParkMs }
        return min(max(arrivedMs, lastProgressMs) + maxWaitMs, arrivedMs + maxParkMs)
    }

    /// Removes and returns the items whose wait has run out.
    public mutating func expire(nowMs: Double) -> [Item] {
        defer { parkedGauge?.record(items.count) }
        let park = maxParkMs
        encoding = encoding.filter { nowMs - $0.value <= park }   // notices of images that never completed
        let this = self
        let due: (String, Double) -> Bool = { image, arrived in nowMs > this.deadline(imageID: image, arrivedMs: arrived) }
        let expired = items.filter { due($0.imageID, $0.arrivedMs) }.map(\.item)
        items.removeAll { due($0.imageID, $0.arrivedMs) }
        return expired
    }

    /// Time until the oldest item expires (for sleeping), nil when empty.
    public func nextDeadlineMs(nowMs: Double) -> Double? {
        items.map { deadline(imageID: $0.imageID, arrivedMs: $0.arrivedMs) - nowMs }.min()
    }
}
