import ArgumentParser
import Foundation
import Logging
import Observability
import ServiceKit
import ServiceLifecycle
import Serving

extension CommonServiceOptions {
    /// `--metrics-port`, else SEGFLOW_METRICS_PORT; nil: no metrics endpoint.
    public func metricsPortSetting() throws -> Int? {
        let port: Int
        if let metricsPort {
            port = metricsPort
        } else {
            guard let text = environment["SEGFLOW_METRICS_PORT"], !text.isEmpty else { return nil }
            guard let number = Int(text) else { throw ValidationError("SEGFLOW_METRICS_PORT must be a port number, got '\(text)'") }
            port = number
        }
        guard (0...65535).contains(port) else {
            throw ValidationError("--metrics-port must be a TCP port, 0…65535 (0 picks a free one), got \(port)")
        }
        return port
    }

    /// Runs one service executable's work: with a metrics port, Prometheus is bootstrapped
    /// and the endpoint is listening before `load` runs (a port in use fails at once, and
    /// /healthz answers while the model loads, /readyz says what is missing); then `load`
    /// builds the service (loading the model), and both run in one ServiceGroup, the
    /// endpoint first so that SIGTERM stops it last, after the service drained.
    public func runService(logger: Logger, load: () throws -> any Service & MonitoredService) async throws {
        var endpoint: MetricsServer?
        let ready = ReadinessState()
        if let port = try metricsPortSetting() {
            let server = try MetricsServer(port: port, registry: PrometheusBootstrap.bootstrap(), logger: logger) { ready.checks() }
            try await server.start()
            endpoint = server
        }
        let service: any Service & MonitoredService
        do { service = try load() } catch {
            await endpoint?.shutdown()
            throw error
        }
        ready.loaded(service)
        try await ServiceRunner.run((endpoint.map { [$0] } ?? []) + [service], logger: logger)
    }
}

/// What /readyz reports for a service process: model loaded, consumer in its group with partitions.
final class ReadinessState: @unchecked Sendable {
    // `lock` guards `service`.
    private let lock = NSLock()
    private var service: (any MonitoredService)?

    func loaded(_ s: any MonitoredService) { lock.withLock { service = s } }

    func checks() -> [ReadinessCheck] {
        guard let service = lock.withLock({ service }) else {
            return [ReadinessCheck("model", ok: false, detail: "loading"),
                    ReadinessCheck("consumer group", ok: false, detail: "not started")]
        }
        let state = service.health.groupState
        let group: ReadinessCheck
        if service.health.groupJoined {
            group = ReadinessCheck("consumer group", ok: true, detail: "\(state?.partitions.count ?? 0) partitions assigned")
        } else if state != nil && !service.health.isRunning {
            group = ReadinessCheck("consumer group", ok: false, detail: "stopped")
        } else if state?.memberID != nil {
            group = ReadinessCheck("consumer group", ok: false, detail: "joined, waiting for a partition assignment")
        } else {
            group = ReadinessCheck("consumer group", ok: false, detail: "not joined yet")
        }
        return [ReadinessCheck("model", ok: true, detail: "loaded"), group]
    }
}
