import CRdKafka

/// One assigned partition as this consumer sees it: its position (the next offset the
/// application will get) and the partition's end (high watermark), and the difference.
public struct PartitionLag: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// Offset of the last message handed to the application + 1; nil before the first one.
    public var position: Int64?
    /// The partition's end as of the last fetch response; nil before the first fetch.
    public var highWatermark: Int64?

    public init(topic: String, partition: Int32, position: Int64?, highWatermark: Int64?) {
        self.topic = topic; self.partition = partition; self.position = position; self.highWatermark = highWatermark
    }

    /// Records on the partition this consumer has not read yet; nil while either end is unknown.
    public var lag: Int64? {
        guard let position, let highWatermark else { return nil }
        return max(0, highWatermark - position)
    }
}

/// What a group member knows about its membership, from librdkafka's local state only.
public struct ConsumerGroupState: Sendable, Hashable {
    /// The member id the coordinator gave this consumer; nil before the first JoinGroup answer.
    public var memberID: String?
    /// The assigned partitions with their lag (empty before the first rebalance).
    public var partitions: [PartitionLag]

    public init(memberID: String?, partitions: [PartitionLag]) {
        self.memberID = memberID; self.partitions = partitions
    }

    /// Joined with work to do: the group's assignor gave this member partitions.
    public var hasAssignment: Bool { !partitions.isEmpty }
}

extension Consumer {
    /// Member id, assignment, positions and high watermarks. Every call here reads the
    /// client's cached state (rd_kafka_position, rd_kafka_get_watermark_offsets — the high
    /// watermark is refreshed by each fetch response), so nothing waits on a broker: the
    /// call costs one turn of the poll thread (at most its 100 ms poll, cut short by a yield).
    public func groupState() async throws -> ConsumerGroupState {
        try await core.perform("group state") { rk in
            var memberID: String?
            if let raw = rd_kafka_memberid(rk) {
                let id = String(cString: raw)
                rd_kafka_mem_free(rk, raw)
                memberID = id.isEmpty ? nil : id
            }
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let err = rd_kafka_assignment(rk, &list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "assignment") }
            guard let list else { return ConsumerGroupState(memberID: memberID, partitions: []) }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            // ref: rdkafka.h, rd_kafka_position(): fills each element's offset (or error).
            let posErr = rd_kafka_position(rk, list)
            if posErr != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(posErr, "position") }
            var partitions: [PartitionLag] = []
            for index in 0..<Int(list.pointee.cnt) {
                let entry = list.pointee.elems[index]
                let topic = String(cString: entry.topic)
                var low: Int64 = -1, high: Int64 = -1
                let wmErr = rd_kafka_get_watermark_offsets(rk, entry.topic, entry.partition, &low, &high)
                let position = entry.err == RD_KAFKA_RESP_ERR_NO_ERROR && entry.offset >= 0 ? entry.offset : nil
                let end = wmErr == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
                partitions.append(PartitionLag(topic: topic, partition: entry.partition, position: position, highWatermark: end))
            }
            return ConsumerGroupState(memberID: memberID, partitions: partitions)
        }
    }
}

extension Consumer {
    /// Asks the partition's leader for its low and high watermarks (bounded by `timeoutMs`).
    public func queryWatermarks(_ partition: TopicPartition, timeoutMs: Int32 = 5000) async throws -> (low: Int64, high: Int64) {
        try await core.perform("watermarks of \(partition.topic) [\(partition.partition)]") { rk in
            var low: Int64 = 0, high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &low, &high, timeoutMs)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "watermarks of \(partition.topic) [\(partition.partition)]") }
            return (low, high)
        }
    }
}
