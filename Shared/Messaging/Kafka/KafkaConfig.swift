import Foundation

/// Settings shared by every client. Renders to librdkafka properties.
///
/// Typed fields cover what Segflow tunes; `properties` passes anything else straight to
/// librdkafka (names as in CONFIGURATION.md, e.g. "security.protocol") and wins over the
/// typed fields when both set the same name.
/// ref: https://github.com/confluentinc/librdkafka/blob/v2.0.2/CONFIGURATION.md
public struct KafkaClientConfig: Sendable, Hashable {
    /// "host:port" entries (bootstrap.servers).
    public var bootstrapServers: [String]
    public var clientID: String
    /// Raw librdkafka properties, applied last.
    public var properties: [String: String]

    public init(bootstrapServers: [String], clientID: String = "segflow", properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    /// Convenience for a comma-separated list such as EmbeddedBroker.bootstrapServers.
    public init(bootstrapServers: String, clientID: String = "segflow", properties: [String: String] = [:]) {
        self.init(bootstrapServers: bootstrapServers.split(separator: ",").map(String.init),
                  clientID: clientID, properties: properties)
    }

    func render() -> [String: String] {
        // Segflow's records are latency-bound requests and replies, not bulk streams:
        // send small frames at once instead of letting Nagle's algorithm hold them.
        var p = ["bootstrap.servers": bootstrapServers.joined(separator: ","), "client.id": clientID,
                 "socket.nagle.disable": "true"]
        // SEGFLOW_KAFKA_DEBUG=cgrp,topic,…: librdkafka's `debug` contexts, printed with
        // SEGFLOW_TRACE=1 (KafkaLog) — for finding where a run waits.
        if let debug = ProcessInfo.processInfo.environment[Self.debugVariable], !debug.isEmpty { p["debug"] = debug }
        return p
    }

    public static let debugVariable = "SEGFLOW_KAFKA_DEBUG"

    /// Consumer-group properties producers and admin clients ignore (ref: CONFIGURATION.md,
    /// the "C" rows).
    static let consumerOnly: Set<String> = [
        "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
        "partition.assignment.strategy", "group.protocol.type", "coordinator.query.interval.ms",
        "enable.auto.commit", "auto.commit.interval.ms", "enable.auto.offset.store", "auto.offset.reset",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.min.bytes",
        "fetch.max.bytes", "max.partition.fetch.bytes", "fetch.error.backoff.ms", "enable.partition.eof",
        "check.crcs", "isolation.level", "allow.auto.create.topics",
    ]

    /// `properties` without the consumer-only ones: a service's `--property` list serves
    /// its consumers and producers alike, and the group settings in it would only make
    /// librdkafka warn in a producer or admin client (CONFWARN).
    var nonConsumerProperties: [String: String] { properties.filter { !Self.consumerOnly.contains($0.key) } }
}

public struct ProducerConfig: Sendable, Hashable {
    public var client: KafkaClientConfig
    /// Idempotence gives per-partition ordering and no duplicates from internal retries
    /// (it implies acks=all and bounded in-flight requests).
    /// ref: CONFIGURATION.md, enable.idempotence
    public var enableIdempotence: Bool
    /// Batching delay; small because requests are latency sensitive.
    public var lingerMs: Int
    /// How long librdkafka keeps retrying one message before failing its delivery.
    public var messageTimeoutMs: Int
    /// Client-side cap on one record (message.max.bytes); nil keeps librdkafka's default
    /// (1,000,000), which matches a stock broker. Embeddings are chunked to fit under it.
    public var messageMaxBytes: Int?
    /// e.g. "lz4", "zstd"; nil = none.
    public var compression: String?
    /// How keys map to partitions. murmur2_random is the Java client's default: every
    /// producer of a co-partitioned topic must hash keys the same way, whatever its
    /// language, and librdkafka's own default (consistent_random, CRC32) would disagree
    /// with a Java producer. ref: CONFIGURATION.md, partitioner
    public var partitioner: String
    /// Raw librdkafka properties, applied last.
    public var properties: [String: String]

    public init(client: KafkaClientConfig, enableIdempotence: Bool = true, lingerMs: Int = 5,
                messageTimeoutMs: Int = 30_000, messageMaxBytes: Int? = nil, compression: String? = nil,
                partitioner: String = "murmur2_random", properties: [String: String] = [:]) {
        self.client = client
        self.enableIdempotence = enableIdempotence
        self.lingerMs = lingerMs
        self.messageTimeoutMs = messageTimeoutMs
        self.messageMaxBytes = messageMaxBytes
        self.compression = compression
        self.partitioner = partitioner
        self.properties = properties
    }

    /// Every librdkafka property this configuration sets.
    public func librdkafkaProperties() -> [String: String] {
        var p = client.render()
        p["enable.idempotence"] = enableIdempotence ? "true" : "false"
        p["linger.ms"] = String(lingerMs)
        p["message.timeout.ms"] = String(messageTimeoutMs)
        if let messageMaxBytes { p["message.max.bytes"] = String(messageMaxBytes) }
        if let compression { p["compression.codec"] = compression }
        p["partitioner"] = partitioner
        p.merge(client.nonConsumerProperties) { $1 }
        p.merge(properties) { $1 }
        return p
    }
}

public struct ConsumerConfig: Sendable, Hashable {
    public enum OffsetReset: String, Sendable, Hashable {
        case earliest, latest
    }

    public var client: KafkaClientConfig
    public var groupID: String
    /// Where a group without a committed offset starts. Earliest, so nothing produced
    /// before the first decoder joined is skipped.
    public var autoOffsetReset: OffsetReset
    /// How long the group waits for a silent member (killed, partitioned) before it moves
    /// its partitions. 6 s is the lowest a stock broker accepts
    /// (`group.min.session.timeout.ms`); librdkafka's default is 45 s. The embedded (mock)
    /// broker also holds a changed group's JoinGroup for this − 1 s.
    public var sessionTimeoutMs: Int
    /// How often the member heartbeats to the coordinator. A group change reaches the
    /// other members with their next heartbeat (REBALANCE_IN_PROGRESS), so this bounds how
    /// long a graceful leave or a join waits before the rebalance starts; 1 s (librdkafka's
    /// default is 3 s) costs one small request per second per member. Keep it at most a
    /// third of `sessionTimeoutMs`.
    public var heartbeatIntervalMs: Int
    /// Longest time between two `next()` calls before the member is evicted; must
    /// exceed the slowest processing of one message (a ViT-H encode on CPU).
    public var maxPollIntervalMs: Int
    public var fetchMaxBytes: Int?
    public var maxPartitionFetchBytes: Int?
    /// Messages fetched ahead of the application. librdkafka already prefetches per
    /// partition, so this only needs to hide one hand-off — unless `oldestFirst` needs a
    /// choice of partitions. A revocation drops the revoked partitions' buffered records
    /// for consumers with a replay window (they install the rebalance callback); others
    /// still hand them over, so keep it small there.
    public var prefetchCount: Int
    /// With `prefetchCount` > 1: hand records over oldest first across partitions (the
    /// partition whose next record has the earliest timestamp goes first; each partition
    /// stays in offset order), instead of in fetch order. A fetch delivers partition by
    /// partition, so a member that gains or resumes several partitions with a backlog
    /// (after a rebalance) would otherwise answer one partition's whole backlog before
    /// the next's first record (measured: prompts answered 10 s later than the same
    /// prompts with no group change, all on the last partition of the fetch).
    public var oldestFirst: Bool
    /// Bytes of record values buffered ahead of the application, at most (one record
    /// always fits). nil: no byte bound (`prefetchCount` only).
    public var prefetchBytes: Int?
    /// Longest time a fetch waits at the broker for data (librdkafka default 500 ms).
    /// librdkafka's mock cluster (the embedded broker) does not answer a waiting fetch
    /// when data arrives, so every hop would cost up to the full wait (measured: 500 ms
    /// per 4 MiB embedding hop, ~1 s per prompt round trip). 10 ms keeps hops fast there;
    /// against real brokers (which answer as soon as data exists) it only raises idle
    /// fetch traffic — override with `fetch.wait.max.ms` in `properties` on big clusters.
    public var fetchWaitMaxMs: Int
    /// nil: offsets move only through `Consumer.commit` (synchronous). A value: the
    /// application marks processed records with `Consumer.store` (never blocks) and
    /// librdkafka commits what was stored every this many ms, on revocation and on close
    /// — the services' mode: a synchronous commit blocks the poll thread for seconds
    /// while a rebalance is pending, which is exactly when the member must poll to rejoin.
    public var storedOffsetCommitIntervalMs: Int?
    /// Raw librdkafka properties, applied last (except enable.auto.commit and
    /// enable.auto.offset.store, which Consumer sets itself: only offsets the application
    /// stored or committed after processing are ever committed — the at-least-once rule).
    public var properties: [String: String]

    public init(client: KafkaClientConfig, groupID: String, autoOffsetReset: OffsetReset = .earliest,
                sessionTimeoutMs: Int = 6_000, heartbeatIntervalMs: Int = 1000, maxPollIntervalMs: Int = 300_000,
                fetchMaxBytes: Int? = nil, maxPartitionFetchBytes: Int? = nil, prefetchCount: Int = 2,
                fetchWaitMaxMs: Int = 10, storedOffsetCommitIntervalMs: Int? = nil, oldestFirst: Bool = false,
                prefetchBytes: Int? = nil, properties: [String: String] = [:]) {
        self.oldestFirst = oldestFirst
        self.prefetchBytes = prefetchBytes
        self.fetchWaitMaxMs = fetchWaitMaxMs
        self.storedOffsetCommitIntervalMs = storedOffsetCommitIntervalMs
        self.client = client
        self.groupID = groupID
        self.autoOffsetReset = autoOffsetReset
        self.sessionTimeoutMs = sessionTimeoutMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.maxPollIntervalMs = maxPollIntervalMs
        self.fetchMaxBytes = fetchMaxBytes
        self.maxPartitionFetchBytes = maxPartitionFetchBytes
        self.prefetchCount = prefetchCount
        self.properties = properties
    }

    public func librdkafkaProperties() -> [String: String] {
        var p = client.render()
        p["group.id"] = groupID
        p["auto.offset.reset"] = autoOffsetReset.rawValue
        p["session.timeout.ms"] = String(sessionTimeoutMs)
        p["heartbeat.interval.ms"] = String(min(heartbeatIntervalMs, max(1, sessionTimeoutMs / 3)))
        p["max.poll.interval.ms"] = String(maxPollIntervalMs)
        if let fetchMaxBytes { p["fetch.max.bytes"] = String(fetchMaxBytes) }
        if let maxPartitionFetchBytes { p["max.partition.fetch.bytes"] = String(maxPartitionFetchBytes) }
        p["enable.partition.eof"] = "false"
        p["fetch.wait.max.ms"] = String(fetchWaitMaxMs)
        p.merge(client.properties) { $1 }
        p.merge(properties) { $1 }
        // ref: CONFIGURATION.md — with both false, offsets move only via rd_kafka_commit().
        if let interval = storedOffsetCommitIntervalMs {
            p["enable.auto.commit"] = "true"
            p["auto.commit.interval.ms"] = String(max(1, interval))
        } else {
            p["enable.auto.commit"] = "false"
        }
        p["enable.auto.offset.store"] = "false"
        return p
    }
}

/// A topic to create: partition count, replication and per-topic configuration such as
/// "retention.ms" or "max.message.bytes".
public struct TopicSpec: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int
    public var config: [String: String]

    public init(name: String, partitions: Int, replicationFactor: Int = 1, config: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.config = config
    }
}

/// Segflow's topic names (README, Services and the wire).
public enum SegflowTopics {
    public static let defaultPrefix = "segflow"
    public static let images = ServingTopics().images
    public static let embeddings = ServingTopics().embeddings
    public static let prompts = ServingTopics().prompts
    public static let text = ServingTopics().text
    public static let masks = ServingTopics().masks
    public static let deadLetter = ServingTopics().deadLetter
    public static let streamState = ServingTopics().streamState
    public static let embeddingIndex = ServingTopics().embeddingIndex

    /// All topics with one partition count. embeddings and prompts MUST share it: both
    /// are keyed by image id, so equal counts put both halves of the join on the same
    /// partition number, which the range assignor gives to the same decoder.
    public static func specs(partitions: Int, replicationFactor: Int = 1) -> [TopicSpec] {
        ServingTopics().specs(partitions: partitions, replicationFactor: replicationFactor)
    }
}

/// The topic names of one deployment: every topic is `PREFIX.<role>` (`--topic-prefix`).
/// The one place topic names are made.
public struct ServingTopics: Sendable, Hashable {
    public var images: String
    public var embeddings: String
    public var prompts: String
    public var text: String
    public var masks: String
    public var deadLetter: String
    /// In-context examples, keyed by prompt id; compacted (the latest registration of an id wins).
    public var promptPairs: String
    /// Tracked streams' state, keyed by stream id; compacted (README, Streams).
    public var streamState: String
    /// Where each image's embedding records are, keyed by image id; compacted.
    public var embeddingIndex: String

    public init(prefix: String = SegflowTopics.defaultPrefix) {
        images = "\(prefix).images"; embeddings = "\(prefix).embeddings"; prompts = "\(prefix).prompts"
        text = "\(prefix).text"; masks = "\(prefix).masks"; deadLetter = "\(prefix).dead-letter"
        promptPairs = "\(prefix).prompt-pairs"; streamState = "\(prefix).stream-state"
        embeddingIndex = "\(prefix).embedding-index"
    }

    public var all: [String] { [images, embeddings, prompts, text, masks, deadLetter, promptPairs, streamState, embeddingIndex] }
    /// Topics holding the latest value per key (a deleted key is a tombstone).
    public var compacted: Set<String> { [promptPairs, streamState, embeddingIndex] }

    public func specs(partitions: Int, replicationFactor: Int = 1) -> [TopicSpec] {
        all.map {
            TopicSpec(name: $0, partitions: partitions, replicationFactor: replicationFactor,
                      config: compacted.contains($0) ? ["cleanup.policy": "compact"] : [:])
        }
    }
}
