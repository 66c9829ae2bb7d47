import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Metrics
import Observability
import Prometheus
import ServiceLifecycle
import XCTest

/// GET http://127.0.0.1:port/path with a 5 s bound: status and body.
func httpGet(port: Int, _ path: String) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
    request.timeoutInterval = 5
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? -1, String(decoding: data, as: UTF8.self))
}

/// Readiness that a test flips.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set(_ v: Bool) { lock.withLock { value = v } }
    var isSet: Bool { lock.withLock { value } }
}

final class MetricsServerTests: XCTestCase {
    var logger: Logger { var l = Logger(label: "observability-test"); l.logLevel = .warning; return l }

    func testMetricsHealthAndReadinessEndpoints() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusBootstrap.factory(registry: registry)
        let ready = Flag()
        let server = try MetricsServer(port: 0, registry: registry, logger: logger) {
            [ReadinessCheck("model", ok: true, detail: "loaded"), ReadinessCheck("consumer group", ok: ready.isSet, detail: "test")]
        }
        let port = try await server.start()
        XCTAssertGreaterThan(port, 0, "port 0 picks a free port and reports it")
        let counter = Counter(label: "segflow_test_requests_total", dimensions: [("service", "test")], factory: factory)
        counter.increment(by: 3)
        CoreMetrics.Timer(label: "segflow_test_stage_seconds", dimensions: [("stage", "decode")], factory: factory)
            .recordMilliseconds(200)

        let metrics = try await httpGet(port: port, "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains(#"segflow_test_requests_total{service="test"} 3"#), metrics.body)
        // Timers are histograms in seconds with Segflow's buckets: 0.2 s is under 0.25, over 0.1.
        XCTAssertTrue(metrics.body.contains(#"segflow_test_stage_seconds_bucket{stage="decode",le="0.25"} 1"#), metrics.body)
        XCTAssertTrue(metrics.body.contains(#"segflow_test_stage_seconds_bucket{stage="decode",le="0.1"} 0"#), metrics.body)
        counter.increment()
        let again = try await httpGet(port: port, "/metrics")
        XCTAssertTrue(again.body.contains(#"segflow_test_requests_total{service="test"} 4"#), "each scrape is current: \(again.body)")

        let health = try await httpGet(port: port, "/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.body, "ok\n")

        let notReady = try await httpGet(port: port, "/readyz")
        XCTAssertEqual(notReady.status, 503)
        XCTAssertTrue(notReady.body.hasPrefix("not ready\n"), notReady.body)
        XCTAssertTrue(notReady.body.contains("not ok consumer group: test"), notReady.body)
        XCTAssertTrue(notReady.body.contains("ok model: loaded"), notReady.body)
        ready.set(true)
        let isReady = try await httpGet(port: port, "/readyz")
        XCTAssertEqual(isReady.status, 200)
        XCTAssertTrue(isReady.body.hasPrefix("ready\n"), isReady.body)

        let missing = try await httpGet(port: port, "/nope")
        XCTAssertEqual(missing.status, 404)
        XCTAssertTrue(missing.body.contains("/metrics"), missing.body)
        await server.shutdown()
    }

    func testAPortInUseIsRefusedWithItsNumber() async throws {
        let registry = PrometheusCollectorRegistry()
        let first = try MetricsServer(port: 0, registry: registry, logger: logger) { [] }
        let port = try await first.start()
        let second = try MetricsServer(port: port, registry: registry, logger: logger) { [] }
        do {
            try await second.start()
            XCTFail("a second server on port \(port) must not start")
        } catch let error as MetricsServerError {
            guard case let .cannotListen(p, reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, port)
            XCTAssertTrue(reason.lowercased().contains("in use"), reason)
            XCTAssertTrue(error.description.contains("--metrics-port \(port)"), error.description)
        }
        // The first server is unaffected.
        let health = try await httpGet(port: port, "/healthz")
        XCTAssertEqual(health.status, 200)
        await first.shutdown()
    }

    func testAnOutOfRangePortIsRefused() {
        XCTAssertThrowsError(try MetricsServer(port: 70000, registry: PrometheusCollectorRegistry(), logger: logger) { [] }) { error in
            XCTAssertTrue("\(error)".contains("--metrics-port 70000"), "\(error)")
        }
    }

    /// In a ServiceGroup, a graceful shutdown stops the server within its bound.
    func testGracefulShutdownStopsTheServer() async throws {
        let server = try MetricsServer(port: 0, registry: PrometheusCollectorRegistry(), logger: logger) { [] }
        let port = try await server.start()
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        let running = Task { try await group.run() }
        let up = try await httpGet(port: port, "/healthz")
        XCTAssertEqual(up.status, 200)
        let t0 = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        XCTAssertLessThan(ContinuousClock.now - t0, MetricsServer.stopBound + .seconds(1))
        let listening = await server.listeningPort
        XCTAssertNil(listening)
        do {
            _ = try await httpGet(port: port, "/healthz")
            XCTFail("nothing listens on \(port) after the shutdown")
        } catch {}
    }
}
