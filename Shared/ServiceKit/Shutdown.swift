import Dispatch
import Foundation

/// Runs `body` until it finishes or SIGTERM/SIGINT arrives; a signal cancels the body's
/// task, which services treat as "drain: stop fetching, finish in-flight work, commit,
/// flush, exit". A second signal exits at once.
public enum Shutdown {
    public static func runUntilSignalled(_ body: @escaping @Sendable () async throws -> Void) async throws {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let task = Task { try await body() }
        let count = SignalCounter()
        let sources = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if count.increment() > 1 { exit(130) }
                FileHandle.standardError.write("shutting down (signal \(sig)); send again to exit immediately\n".data(using: .utf8)!)
                task.cancel()
            }
            s.resume()
            return s
        }
        defer { sources.forEach { $0.cancel() } }
        try await task.value
    }
}

final class SignalCounter: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
