import CRdKafka

/// The key → partition rule of Segflow's wire contract (README, "Partitioning"): a keyed
/// record goes to `(murmur2(key) & 0x7fffffff) % partition_count`, Kafka's Java client
/// default and librdkafka's `murmur2_random`. Embeddings and prompts are keyed by image
/// id; both halves of the join meet only if every producer follows this rule, so the
/// prompt-decoder re-routes a prompt that arrives elsewhere (a client on librdkafka's
/// default CRC32 `consistent_random`, e.g. kcat or confluent-kafka unconfigured).
public enum KafkaPartitioner {
    /// The partition librdkafka's murmur2 partitioner picks for `key` (the library's own
    /// function, so this cannot drift from what the producers do).
    /// ref: rdkafka.h, rd_kafka_msg_partitioner_murmur2_random
    public static func murmur2Partition(key: [UInt8], partitions: Int) -> Int32 {
        precondition(partitions > 0, "a topic has at least one partition")
        // A non-nil pointer even for an empty key: librdkafka treats a NULL key as "no key"
        // (random partition), but an empty key is a key.
        return (key.isEmpty ? [0] : key).withUnsafeBytes { raw in
            rd_kafka_msg_partitioner_murmur2_random(nil, raw.baseAddress, key.count, Int32(partitions), nil, nil)
        }
    }

    /// librdkafka's default (`consistent_random`: CRC32 of a non-empty key; an empty key
    /// gets a random partition, so nil here): what an unconfigured librdkafka client (kcat,
    /// confluent-kafka) does. For tests and diagnostics of misrouted records.
    /// ref: rdkafka.h, rd_kafka_msg_partitioner_consistent
    public static func crc32Partition(key: [UInt8], partitions: Int) -> Int32? {
        precondition(partitions > 0, "a topic has at least one partition")
        guard !key.isEmpty else { return nil }
        return key.withUnsafeBytes { raw in
            rd_kafka_msg_partitioner_consistent(nil, raw.baseAddress, raw.count, Int32(partitions), nil, nil)
        }
    }
}
