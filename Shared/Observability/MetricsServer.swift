import FlyingFox
import FlyingSocks
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// One condition `/readyz` reports: its name, whether it holds, and a detail for people.
public struct ReadinessCheck: Sendable, Equatable {
    public var name: String
    public var ok: Bool
    public var detail: String
    public init(_ name: String, ok: Bool, detail: String = "") { self.name = name; self.ok = ok; self.detail = detail }
}

public enum MetricsServerError: Error, CustomStringConvertible, Equatable {
    /// The port could not be bound (in use, privileged, …): names the port and the reason.
    case cannotListen(port: Int, reason: String)
    /// The listening socket did not come up within the bound.
    case notListening(port: Int, after: Duration)

    public var description: String {
        switch self {
        case let .cannotListen(port, reason): return "--metrics-port \(port): cannot listen on 0.0.0.0:\(port): \(reason)"
        case let .notListening(port, after): return "--metrics-port \(port): the HTTP server was not listening after \(after)"
        }
    }
}

/// The process's operations endpoint over HTTP/1.1 on `0.0.0.0:port`:
/// - `GET /metrics`: the Prometheus text exposition of `registry`;
/// - `GET /healthz`: 200 while the process is up (the liveness probe);
/// - `GET /readyz`: 200 when every readiness check holds, else 503; the body lists each check.
///
/// A swift-service-lifecycle `Service`: `start()` binds before the rest of the process
/// starts (so a port in use fails first, and the probes answer while a model loads);
/// `run()` serves until the group's graceful shutdown or cancellation, then stops within
/// `stopBound`. Put it first in the group: it then stops last, after the consumers drained.
public final class MetricsServer: Service, @unchecked Sendable {
    public static let startBound: Duration = .seconds(5)
    /// Open connections (a scrape in flight, an idle keep-alive) get this long to finish.
    public static let stopBound: Duration = .milliseconds(500)

    public let requestedPort: Int
    let registry: PrometheusCollectorRegistry
    let readiness: @Sendable () async -> [ReadinessCheck]
    let logger: Logger
    let server: HTTPServer
    // `lock` guards `serving`, `failure` and `stopping`.
    private let lock = NSLock()
    private var serving: Task<Void, Error>?
    private var failure: Error?
    private var stopping = false

    /// `port` 0 picks a free port (`start()` returns it).
    public init(port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
                readiness: @escaping @Sendable () async -> [ReadinessCheck]) throws {
        guard (0...65535).contains(port) else {
            throw MetricsServerError.cannotListen(port: port, reason: "not a TCP port (0…65535; 0 picks a free one)")
        }
        requestedPort = port
        self.registry = registry
        self.readiness = readiness
        self.logger = logger
        server = HTTPServer(address: sockaddr_in.inet(port: UInt16(port)), timeout: 15,
                            logger: FlyingFoxLogger(logger: logger), handler: nil)
    }

    /// Binds and begins serving; returns the port it listens on. Idempotent.
    @discardableResult
    public func start() async throws -> Int {
        if let port = await listeningPort { return port }
        await installRoutes()
        let task = Task { [server] in
            do { try await server.run() } catch {
                self.lock.withLock { self.failure = error }
                throw error
            }
        }
        lock.withLock { serving = task }
        let deadline = ContinuousClock.now + Self.startBound
        while ContinuousClock.now < deadline {
            if let port = await listeningPort {
                logger.info("metrics endpoint listening", metadata: ["metrics.port": "\(port)",
                                                                     "metrics.paths": "/metrics /healthz /readyz"])
                return port
            }
            if let error = lock.withLock({ failure }) {
                throw MetricsServerError.cannotListen(port: requestedPort, reason: Self.reason(error))
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        await server.stop(timeout: 0)
        throw MetricsServerError.notListening(port: requestedPort, after: Self.startBound)
    }

    /// The bound port, nil before `start()` or after the stop.
    public var listeningPort: Int? {
        get async {
            guard case let .ip4(_, port)? = await server.listeningAddress else { return nil }
            return Int(port)
        }
    }

    public func run() async throws {
        try await start()
        guard let task = lock.withLock({ serving }) else { return }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                do { try await task.value } catch {
                    // Closing the socket on shutdown ends the server's task with an error.
                    if lock.withLock({ stopping }) { return }
                    throw error
                }
            } onCancel: { self.stop() }
        } onGracefulShutdown: { self.stop() }
    }

    /// Closes the listening socket and lets open connections finish for at most `stopBound`.
    public func shutdown() async {
        lock.withLock { stopping = true }
        let bound = Self.stopBound.components
        await server.stop(timeout: Double(bound.seconds) + Double(bound.attoseconds) / 1e18)
    }

    func stop() { Task { await shutdown() } }

    private func installRoutes() async {
        let registry = registry, readiness = readiness
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: Data(registry.emitToBuffer()))
        }
        await server.appendRoute("GET /healthz") { _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: Data("ok\n".utf8))
        }
        await server.appendRoute("GET /readyz") { _ in
            let checks = await readiness()
            let ready = checks.allSatisfy(\.ok)
            let lines = checks.map { "\($0.ok ? "ok" : "not ok") \($0.name)\($0.detail.isEmpty ? "" : ": \($0.detail)")" }
            return HTTPResponse(statusCode: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: Data(((ready ? ["ready"] : ["not ready"]) + lines).joined(separator: "\n").utf8 + [0x0a]))
        }
        await server.appendRoute("*") { request in
            HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                         body: Data("no such endpoint: \(request.method.rawValue) \(request.path) (try /metrics, /healthz, /readyz)\n".utf8))
        }
    }

    static func reason(_ error: Error) -> String {
        if case let SocketError.failed(type, errno, message) = error { return "\(message) (\(type), errno \(errno))" }
        return "\(error)"
    }
}

/// FlyingFox's log lines through swift-log. Its info lines are per connection and per
/// request, and its errors are a client's business (a peer that hung up, a malformed
/// request, a keep-alive connection closed by our shutdown): all at debug level.
struct FlyingFoxLogger: FlyingSocks.Logging {
    let logger: Logger
    func logDebug(_ debug: @autoclosure () -> String) { logger.trace("\(debug())") }
    func logInfo(_ info: @autoclosure () -> String) { logger.debug("\(info())") }
    func logWarning(_ warning: @autoclosure () -> String) { logger.warning("\(warning())") }
    func logError(_ error: @autoclosure () -> String) { logger.debug("\(error())") }
    // A failed bind is reported as critical by FlyingFox and thrown to us as well; the
    // process reports it once, with the port.
    func logCritical(_ critical: @autoclosure () -> String) { logger.debug("\(critical())") }
}
