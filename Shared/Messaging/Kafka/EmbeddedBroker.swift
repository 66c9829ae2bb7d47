import CRdKafka
import Foundation

/// An in-process Kafka cluster: librdkafka's mock cluster, which serves the real Kafka
/// protocol on loopback TCP, so clients use exactly the code path they use against a
/// real cluster.
///
/// Limits of the mock (librdkafka 2.0.2; ref: rdkafka_mock.h, src/rdkafka_mock*.c):
/// - random loopback ports (`bootstrapServers` tells which), in-memory only;
/// - each partition keeps about 5 MiB / 100,000 messages; older message sets are dropped
///   (rdkafka_mock.c: `mpart->max_size = 1024 * 1024 * 5`), not configurable via API;
/// - no CreateTopics API: create topics with `createTopics` here (per-topic config such
///   as max.message.bytes is ignored — the mock enforces no record size limit either);
/// - a new consumer group's first join waits 3 s (rdkafka_mock_cgrp.c, "First join,
///   low timeout", like group.initial.rebalance.delay.ms).
public final class EmbeddedBroker: TopicProvisioner {
    /// "127.0.0.1:port,…" for bootstrap.servers.
    public let bootstrapServers: String
    public let brokerCount: Int
    private let state: Locked<(handle: RDKafkaHandle?, cluster: OpaquePointer?)>

    /// Starts `brokers` mock brokers (ids 1…brokers).
    public init(brokers: Int = 1) throws {
        precondition(brokers >= 1, "EmbeddedBroker needs at least one broker")
        // The mock cluster lives inside an rd_kafka_t used only for its bookkeeping
        // (ref: rdkafka_mock.h, rd_kafka_mock_cluster_new). Its own logs are muted
        // below warnings: client disconnects at shutdown are normal here.
        let handle = try RDKafkaHandle(type: RD_KAFKA_PRODUCER, properties: ["log_level": "3"])
        guard let cluster = rd_kafka_mock_cluster_new(handle.pointer, Int32(brokers)) else {
            throw KafkaError(code: .invalidArgument, message: "rd_kafka_mock_cluster_new(\(brokers) brokers) failed")
        }
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        brokerCount = brokers
        state = Locked((handle: handle, cluster: cluster))
    }

    deinit {
        stop()
    }

    /// Client settings pointing at this cluster.
    public func clientConfig(clientID: String = "segflow") -> KafkaClientConfig {
        KafkaClientConfig(bootstrapServers: bootstrapServers, clientID: clientID)
    }

    /// Creates topics through the mock's own API (replication is capped at the broker
    /// count; `config` is ignored by the mock). Existing topics are accepted.
    public func createTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(10)) async throws {
        try state.withLock { state in
            guard let cluster = state.cluster else {
                throw KafkaError(code: .shutDown, message: "embedded broker is stopped")
            }
            for spec in specs {
                let err = rd_kafka_mock_topic_create(cluster, spec.name, Int32(spec.partitions),
                                                     Int32(min(spec.replicationFactor, brokerCount)))
                if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                    throw KafkaError(err, "mock topic \(spec.name) with \(spec.partitions) partitions")
                }
            }
        }
    }

    /// Stops the brokers (clients see disconnects). Idempotent.
    public func stop() {
        let (handle, cluster) = state.withLock { state -> (RDKafkaHandle?, OpaquePointer?) in
            defer { state = (nil, nil) }
            return (state.handle, state.cluster)
        }
        if let cluster { rd_kafka_mock_cluster_destroy(cluster) }
        withExtendedLifetime(handle) {}  // the cluster must go before its rd_kafka_t
    }

    public var isRunning: Bool { state.withLock { $0.cluster != nil } }
}
