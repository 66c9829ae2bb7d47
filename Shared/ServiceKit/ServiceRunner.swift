import Logging
import ServiceLifecycle

/// Runs a process's services the swift-service-lifecycle way: one `ServiceGroup`, SIGTERM
/// and SIGINT start a graceful shutdown, services stop in reverse start order, each
/// draining (stop consuming, finish in-flight work, commit, flush, close). A shutdown
/// that outlasts `gracefulShutdownBound` is escalated to cancellation, and one that
/// still has not ended `cancellationBound` later ends the group with an error — at-least-
/// once delivery keeps abandoning uncommitted work safe.
public enum ServiceRunner {
    public static let defaultGracefulShutdownBound: Duration = .seconds(30)
    public static let defaultCancellationBound: Duration = .seconds(10)

    public static func run(_ services: [any Service], logger: Logger,
                           gracefulShutdownBound: Duration = defaultGracefulShutdownBound,
                           cancellationBound: Duration = defaultCancellationBound) async throws {
        var config = ServiceGroupConfiguration(services: services.map { .init(service: $0) },
                                               gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = gracefulShutdownBound
        config.maximumCancellationDuration = cancellationBound
        try await ServiceGroup(configuration: config).run()
    }
}

/// A service made of a closure (e.g. `segflow up`'s child supervision); it should return
/// when the graceful shutdown begins (`gracefulShutdown()` / `cancelWhenGracefulShutdown`).
public struct ClosureService: Service {
    let body: @Sendable () async throws -> Void
    public init(run body: @escaping @Sendable () async throws -> Void) { self.body = body }
    public func run() async throws { try await body() }
}
