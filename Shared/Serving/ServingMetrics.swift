import Foundation
import Messaging
import Metrics

/// What the services record, through the swift-metrics API only: the process decides
/// where it goes (the service executables bootstrap Prometheus when `--metrics-port` is
/// given; without a bootstrap every handle is swift-metrics' no-op). The README's
/// Operations table lists each name, its labels and its meaning.
public enum MetricName {
    /// Requests taken from the service's input topic (image requests, prompts, text prompts). {service}
    public static let requests = "segflow_requests_total"
    /// Error results and dead letters, by stable error code. {service, code}
    public static let errors = "segflow_errors_total"
    /// Time per stage of a request. {service, stage}
    public static let stageDuration = "segflow_stage_duration_seconds"
    /// Cache look-ups that found / did not find their entry. {service, cache}
    public static let cacheHits = "segflow_cache_hits_total"
    public static let cacheMisses = "segflow_cache_misses_total"
    /// Entries pushed out by the cache's budget. {service, cache}
    public static let cacheEvictions = "segflow_cache_evictions_total"
    /// Bytes and entries held by the cache. {service, cache}
    public static let cacheBytes = "segflow_cache_bytes"
    public static let cacheEntries = "segflow_cache_entries"
    /// Prompts waiting for their image's embedding. {service}
    public static let parkedPrompts = "segflow_parked_prompts"
    /// Records on an assigned partition not yet read by this member. {service, topic, partition}
    public static let consumerLag = "segflow_consumer_lag"
    /// Partitions the group's assignor gave this member. {service}
    public static let assignedPartitions = "segflow_assigned_partitions"
    /// Embeddings put into the decoder's cache from the embeddings topic. {service}
    public static let embeddingsCached = "segflow_embeddings_cached_total"
    /// Of those, embeddings produced before this decoder started: replayed on join or
    /// restart instead of re-encoded. {service}
    public static let embeddingsRestored = "segflow_embeddings_restored_total"
}

/// The stages `segflow_stage_duration_seconds` is labelled with.
public enum ServingStage: String, Sendable, CaseIterable {
    /// Image bytes (PNG, JPEG, WebP or raw) to RGB pixels.
    case decodeImage = "decode_image"
    /// The backend's image-encoder half (the ViT), including its wire record.
    case encode
    /// A whole in-context answer (examples, query, model).
    case inContext = "in_context"
    /// Text prompt to text embedding (a phrase-cache hit costs nothing here).
    case encodeText = "encode_text"
    /// Time a prompt waited for its embedding (0 when the embedding was cached).
    case wait
    /// The backend's prompt-decoder half.
    case decode
    /// Producing the answer (embedding, mask result, forwarded prompt) until the broker acknowledged it.
    case publish
    /// From taking the request to the answer (or error result) delivered.
    case total
}

/// One service's metric handles, labelled `service`.
public struct ServingMetrics: Sendable {
    public let service: String
    public let factory: any MetricsFactory
    let requests: Counter
    let assigned: Gauge
    let parked: Gauge
    let embeddingsCached: Counter
    let embeddingsRestored: Counter

    public init(service: String, factory: any MetricsFactory = MetricsSystem.factory) {
        self.service = service
        self.factory = factory
        let labels = [("service", service)]
        requests = Counter(label: MetricName.requests, dimensions: labels, factory: factory)
        assigned = Gauge(label: MetricName.assignedPartitions, dimensions: labels, factory: factory)
        parked = Gauge(label: MetricName.parkedPrompts, dimensions: labels, factory: factory)
        embeddingsCached = Counter(label: MetricName.embeddingsCached, dimensions: labels, factory: factory)
        embeddingsRestored = Counter(label: MetricName.embeddingsRestored, dimensions: labels, factory: factory)
    }

    public func requestReceived() { requests.increment() }

    /// Counts one error result or dead letter under its stable code (e.g. EMBEDDING_NOT_FOUND).
    public func error(_ code: ErrorCode) {
        Counter(label: MetricName.errors, dimensions: [("service", service), ("code", "\(code)")], factory: factory).increment()
    }

    /// Records `ms` milliseconds (a `Timing.nowMs()` difference) for `stage`.
    public func record(_ stage: ServingStage, ms: Double) {
        CoreMetrics.Timer(label: MetricName.stageDuration, dimensions: [("service", service), ("stage", stage.rawValue)], factory: factory)
            .recordNanoseconds(Int64(max(0, ms) * 1e6))
    }

    /// An embedding entered the cache; `producedAtMs` (the record's timestamp) before
    /// `startedAtMs` means it was replayed from the topic, not freshly encoded.
    public func embeddingCached(producedAtMs: Int64?, startedAtMs: Int64) {
        embeddingsCached.increment()
        if let producedAtMs, producedAtMs < startedAtMs { embeddingsRestored.increment() }
    }

    public func cache(_ name: String) -> CacheMetrics { CacheMetrics(service: service, cache: name, factory: factory) }

    /// The gauge of one assigned partition's lag.
    func lagGauge(_ tp: TopicPartition) -> Gauge {
        Gauge(label: MetricName.consumerLag, dimensions: [("service", service), ("topic", tp.topic), ("partition", "\(tp.partition)")],
              factory: factory)
    }
}

/// A cache's hits, misses, evictions and size, labelled `service` and `cache`.
public struct CacheMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let evictions: Counter
    let bytes: Gauge
    let entries: Gauge

    public init(service: String, cache: String, factory: any MetricsFactory = MetricsSystem.factory) {
        let labels = [("service", service), ("cache", cache)]
        hits = Counter(label: MetricName.cacheHits, dimensions: labels, factory: factory)
        misses = Counter(label: MetricName.cacheMisses, dimensions: labels, factory: factory)
        evictions = Counter(label: MetricName.cacheEvictions, dimensions: labels, factory: factory)
        bytes = Gauge(label: MetricName.cacheBytes, dimensions: labels, factory: factory)
        entries = Gauge(label: MetricName.cacheEntries, dimensions: labels, factory: factory)
    }

    public func lookup(hit: Bool) { (hit ? hits : misses).increment() }
    public func evicted() { evictions.increment() }
    public func size(bytes: Int, entries: Int) {
        self.bytes.record(bytes)
        self.entries.record(entries)
    }
}

/// What `/readyz` asks a running service: has its consumer joined the group and been
/// given partitions? Written by the service's consumer monitor, read by any thread.
public final class ServiceHealth: @unchecked Sendable {
    // `lock` guards every stored var.
    private let lock = NSLock()
    private var state: ConsumerGroupState?
    private var running = false

    public init() {}

    /// True while the service runs and its consumer holds an assignment.
    public var groupJoined: Bool { lock.withLock { running && state?.hasAssignment == true } }

    /// False before the consumer's first state and after the service loop ended.
    public var isRunning: Bool { lock.withLock { running } }

    /// The last group state seen (member id, partitions, lag), nil before the first.
    public var groupState: ConsumerGroupState? { lock.withLock { state } }

    func update(_ new: ConsumerGroupState) { lock.withLock { state = new; running = true } }
    func stopped() { lock.withLock { running = false } }
}

/// A service `/readyz` can ask about.
public protocol MonitoredService: Sendable {
    var health: ServiceHealth { get }
}

/// Polls the consumer's group state (local librdkafka state only, see
/// `Consumer.groupState`) once per `interval` for `/readyz`, the assigned-partitions
/// gauge and one lag gauge per assigned partition (removed when the partition is revoked).
enum ConsumerMonitor {
    static let interval: Duration = .seconds(1)

    static func run(consumer: Consumer, metrics: ServingMetrics, health: ServiceHealth) async {
        var gauges: [TopicPartition: Gauge] = [:]
        while !Task.isCancelled {
            if let state = try? await consumer.groupState() {
                metrics.assigned.record(state.partitions.count)
                var current = Set<TopicPartition>()
                for p in state.partitions {
                    let tp = TopicPartition(topic: p.topic, partition: p.partition)
                    current.insert(tp)
                    guard let lag = p.lag else { continue }
                    if gauges[tp] == nil { gauges[tp] = metrics.lagGauge(tp) }
                    gauges[tp]?.record(lag)
                }
                for (tp, gauge) in gauges where !current.contains(tp) {
                    gauge.destroy()
                    gauges[tp] = nil
                }
                health.update(state)   // after the gauges: a ready service's gauges are current
            }
            try? await Task.sleep(for: interval)
        }
        for gauge in gauges.values { gauge.destroy() }
        metrics.assigned.record(0)
        health.stopped()
    }
}
