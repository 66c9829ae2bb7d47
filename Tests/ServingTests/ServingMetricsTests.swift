import Backends
import Metrics
import MetricsTestKit
import SAM
import Serving
import Tensor
import XCTest

/// The services' instrumentation records through the swift-metrics API into whatever
/// factory it is given (here swift-metrics' TestMetrics; Prometheus in the executables).
final class ServingMetricsTests: XCTestCase {
    func emb(_ floats: Int) -> SAM.ImageEmbedding {
        SAM.ImageEmbedding(model: .liteMedSAM, embedding: Tensor(zeros: [1, floats, 1, 1]), originalSize: (1, 1), inputSize: (1, 1))
    }

    func testEmbeddingCacheReportsEvictionsBytesAndEntries() throws {
        let test = TestMetrics()
        let metrics = ServingMetrics(service: "prompt-decoder", factory: test)
        let labels = [("service", "prompt-decoder"), ("cache", "embeddings")]
        var cache = EmbeddingCache(capacityBytes: 2 * 400, metrics: metrics.cache("embeddings"))
        cache.insert(emb(100), imageID: "a")
        cache.insert(emb(100), imageID: "b")
        XCTAssertEqual(try test.expectGauge(MetricName.cacheBytes, labels).lastValue, 800)
        XCTAssertEqual(try test.expectGauge(MetricName.cacheEntries, labels).lastValue, 2)
        cache.insert(emb(100), imageID: "c")   // evicts a
        XCTAssertEqual(try test.expectCounter(MetricName.cacheEvictions, labels).totalValue, 1)
        XCTAssertEqual(try test.expectGauge(MetricName.cacheBytes, labels).lastValue, 800)
        cache.remove("b")
        XCTAssertEqual(try test.expectGauge(MetricName.cacheBytes, labels).lastValue, 400)
        XCTAssertEqual(try test.expectGauge(MetricName.cacheEntries, labels).lastValue, 1)
        metrics.cache("embeddings").lookup(hit: true)
        metrics.cache("embeddings").lookup(hit: false)
        metrics.cache("embeddings").lookup(hit: false)
        XCTAssertEqual(try test.expectCounter(MetricName.cacheHits, labels).totalValue, 1)
        XCTAssertEqual(try test.expectCounter(MetricName.cacheMisses, labels).totalValue, 2)
    }

    func testPendingPromptsGaugeFollowsTheCount() throws {
        let test = TestMetrics()
        let gauge = Gauge(label: MetricName.parkedPrompts, dimensions: [("service", "prompt-decoder")], factory: test)
        var pending = PendingPrompts<String>(maxWaitMs: 100, maxItems: 2, parkedGauge: gauge)
        let recorded = try test.expectGauge(gauge)
        _ = pending.park("p1", imageID: "a", nowMs: 0)
        XCTAssertEqual(recorded.lastValue, 1)
        _ = pending.park("p2", imageID: "b", nowMs: 0)
        _ = pending.park("p3", imageID: "b", nowMs: 50)   // cap 2: p1 pushed out
        XCTAssertEqual(recorded.lastValue, 2)
        _ = pending.release(imageID: "b")
        XCTAssertEqual(recorded.lastValue, 0)
        _ = pending.park("p4", imageID: "c", nowMs: 0)
        _ = pending.expire(nowMs: 200)
        XCTAssertEqual(recorded.lastValue, 0)
        XCTAssertEqual(recorded.values, [1, 2, 2, 0, 1, 0], "one value per park, release and expiry; never above the cap")
    }

    func testErrorsAreCountedByCodeAndStagesInSeconds() throws {
        let test = TestMetrics()
        let metrics = ServingMetrics(service: "image-encoder", factory: test)
        metrics.error(.invalidImage)
        metrics.error(.invalidImage)
        metrics.error(.embeddingNotFound)
        XCTAssertEqual(try test.expectCounter(MetricName.errors, [("service", "image-encoder"), ("code", "INVALID_IMAGE")]).totalValue, 2)
        XCTAssertEqual(try test.expectCounter(MetricName.errors, [("service", "image-encoder"), ("code", "EMBEDDING_NOT_FOUND")]).totalValue, 1)
        metrics.record(.encode, ms: 412.5)
        metrics.record(.publish, ms: -1)   // a clock step never records a negative duration
        XCTAssertEqual(try test.expectTimer(MetricName.stageDuration, [("service", "image-encoder"), ("stage", "encode")]).values, [412_500_000])
        XCTAssertEqual(try test.expectTimer(MetricName.stageDuration, [("service", "image-encoder"), ("stage", "publish")]).values, [0])
        metrics.requestReceived()
        XCTAssertEqual(try test.expectCounter(MetricName.requests, [("service", "image-encoder")]).totalValue, 1)
    }

    func testRestoredEmbeddingsAreThoseProducedBeforeTheStart() throws {
        let test = TestMetrics()
        let metrics = ServingMetrics(service: "prompt-decoder", factory: test)
        metrics.embeddingCached(producedAtMs: 900, startedAtMs: 1000)    // replayed from the topic
        metrics.embeddingCached(producedAtMs: 1500, startedAtMs: 1000)   // encoded while running
        metrics.embeddingCached(producedAtMs: nil, startedAtMs: 1000)    // no timestamp: not claimed as restored
        let labels = [("service", "prompt-decoder")]
        XCTAssertEqual(try test.expectCounter(MetricName.embeddingsCached, labels).totalValue, 3)
        XCTAssertEqual(try test.expectCounter(MetricName.embeddingsRestored, labels).totalValue, 1)
    }
}
