/// At-least-once commit bookkeeping for one partition: an offset may be committed only
/// when every earlier record has been answered. Prompts can finish out of order (one
/// parked waiting for its embedding while later ones are decoded), so the commit
/// position is the lowest offset still in flight, or one past the highest finished.
public struct OffsetTracker: Sendable {
    private var inFlight = Set<Int64>()
    private var highestFinished: Int64 = -1
    public private(set) var committed: Int64 = -1

    public init() {}

    public mutating func begin(_ offset: Int64) { inFlight.insert(offset) }

    /// Marks `offset` answered; returns the new position to commit if it advanced.
    public mutating func finish(_ offset: Int64) -> Int64? {
        inFlight.remove(offset)
        highestFinished = max(highestFinished, offset)
        let position = inFlight.min() ?? (highestFinished + 1)
        guard position > committed else { return nil }
        committed = position
        return position
    }

    public var pendingCount: Int { inFlight.count }
}
