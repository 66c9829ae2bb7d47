import Metrics
import Prometheus

/// The process side of metrics: swift-metrics' global factory becomes a Prometheus
/// registry, which `MetricsServer` exposes. Libraries only see the swift-metrics API.
public enum PrometheusBootstrap {
    /// Histogram buckets for every swift-metrics Timer (`*_seconds`): 1 ms (a cached
    /// decode's publish) to 60 s (a SAM ViT-H encode on a small machine).
    public static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]

    /// A factory recording into `registry` with Segflow's buckets.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = durationBuckets
        return factory
    }

    /// Bootstraps `MetricsSystem` once per process (swift-metrics allows one bootstrap)
    /// and returns the registry to expose.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(factory(registry: registry))
        return registry
    }
}
