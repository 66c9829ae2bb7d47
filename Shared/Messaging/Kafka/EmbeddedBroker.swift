import CRdKafka
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
///   low timeout", like group.initial.rebalance.delay.ms);
/// - a changed group's JoinGroup waits session.timeout.ms − 1 s (`memberProperties`).
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

    /// Sets the mock's group.initial.rebalance.delay.ms (how long a new group's first
    /// JoinGroup waits for more members). librdkafka 2.6.0 added
    /// `rd_kafka_mock_group_initial_rebalance_delay_ms`; 2.0.2 (Debian 12) hard-codes 3000 ms
    /// (rdkafka_mock_cgrp.c, rd_kafka_mock_cgrp_rebalance: "First join, low timeout"). The
    /// function is looked up at run time, so one binary uses it where the library has it.
    /// Returns false (nothing changed) when the loaded library lacks it.
    @discardableResult
    public func setGroupInitialRebalanceDelay(_ delay: Duration) -> Bool {
        typealias SetDelay = @convention(c) (OpaquePointer?, Int32) -> Void
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rd_kafka_mock_group_initial_rebalance_delay_ms") else { return false }
        let set = unsafeBitCast(symbol, to: SetDelay.self)
        let ms = Int32(clamping: milliseconds(delay))
        return (try? withCluster("rebalance delay") { set($0, ms) }) != nil
    }

    /// Whether the loaded librdkafka lets `setGroupInitialRebalanceDelay` work (≥ 2.6.0).
    public static var canSetGroupInitialRebalanceDelay: Bool {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rd_kafka_mock_group_initial_rebalance_delay_ms") != nil
    }

    /// Client settings pointing at this cluster.
    public func clientConfig(clientID: String = "segflow") -> KafkaClientConfig {
        KafkaClientConfig(bootstrapServers: bootstrapServers, clientID: clientID)
    }

    /// Group-member timing for the services `segflow up` and the integration tests run
    /// on this cluster (passed as `--property`; in-process consumers keep their own).
    ///
    /// The mock answers a changed group's JoinGroup only when its rebalance timer fires,
    /// `session.timeout.ms` − 1 s after the change (rdkafka_mock_cgrp.c,
    /// rd_kafka_mock_cgrp_rebalance), whether or not every member has rejoined; a real
    /// broker answers as soon as they have. With the services' 6 s (the lowest a stock
    /// broker accepts) every join or leave stalled the group's partitions 5 s here;
    /// 3 s makes it 2 s — and evicts a killed member after 3 s instead of 6 s. Safe on
    /// loopback: heartbeats come from librdkafka's own thread every 0.5 s, whatever the
    /// models are doing, and the mock enforces no `group.min.session.timeout.ms`.
    public static let memberSessionTimeoutMs = 3_000
    public static let memberHeartbeatIntervalMs = 500
    public static var memberProperties: [String: String] {
        ["session.timeout.ms": String(memberSessionTimeoutMs), "heartbeat.interval.ms": String(memberHeartbeatIntervalMs)]
    }
    /// `memberProperties` as service arguments (`--property key=value`), for the services
    /// `segflow up` and the integration tests start against this cluster.
    public static var memberArguments: [String] {
        memberProperties.sorted { $0.key < $1.key }.flatMap { ["--property", "\($0.key)=\($0.value)"] }
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

    // MARK: Faults (rehearsals and the fault-matrix tests; ref: rdkafka_mock.h)

    /// A Kafka protocol request type whose answers `injectErrors` can fail
    /// (Kafka's ApiKey numbers, KIP-482 table; ref: rdkafka_protocol.h).
    public enum Request: Int16, Sendable, CaseIterable {
        case produce = 0, fetch = 1, listOffsets = 2, metadata = 3, offsetCommit = 8, offsetFetch = 9,
             findCoordinator = 10, joinGroup = 11, heartbeat = 12, leaveGroup = 13, syncGroup = 14
    }

    private func withCluster<T>(_ what: String, _ body: (OpaquePointer) -> T) throws -> T {
        try state.withLock { state in
            guard let cluster = state.cluster else { throw KafkaError(code: .shutDown, message: "\(what): embedded broker is stopped") }
            return body(cluster)
        }
    }

    private func check(_ err: rd_kafka_resp_err_t, _ what: String) throws {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, what) }
    }

    private func checkBroker(_ id: Int32) throws {
        guard (1...Int32(brokerCount)).contains(id) else {
            throw KafkaError(code: .invalidArgument, message: "broker \(id) does not exist (ids 1…\(brokerCount))")
        }
    }

    /// Takes broker `id` down: its connections close and it refuses new ones until `setUp`.
    public func setDown(broker id: Int32) throws {
        try checkBroker(id)
        try check(try withCluster("broker \(id) down") { rd_kafka_mock_broker_set_down($0, id) }, "broker \(id) down")
    }

    public func setUp(broker id: Int32) throws {
        try checkBroker(id)
        try check(try withCluster("broker \(id) up") { rd_kafka_mock_broker_set_up($0, id) }, "broker \(id) up")
    }

    /// Adds `rtt` to every answer broker `id` sends (0 removes it).
    public func setRoundTrip(broker id: Int32, _ rtt: Duration) throws {
        try checkBroker(id)
        let ms = Int32(clamping: milliseconds(rtt))
        try check(try withCluster("broker \(id) rtt") { rd_kafka_mock_broker_set_rtt($0, id, ms) }, "broker \(id) rtt \(ms) ms")
    }

    /// Moves the leadership of `topic` [`partition`] to broker `id`.
    public func setLeader(topic: String, partition: Int32, broker id: Int32) throws {
        try checkBroker(id)
        try check(try withCluster("leader") { rd_kafka_mock_partition_set_leader($0, topic, partition, id) },
                  "leader of \(topic) [\(partition)] → broker \(id)")
    }

    /// The next `count` requests of type `request` (to any broker) fail with `error`,
    /// e.g. `.notLeaderForPartition` or `.requestTimedOut`.
    public func injectErrors(_ request: Request, _ error: KafkaError.Code, count: Int) throws {
        guard count > 0 else { return }
        let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error.rawValue), count: count)
        try withCluster("inject errors") { cluster in
            errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, request.rawValue, count, $0.baseAddress) }
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
