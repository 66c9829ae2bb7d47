import Foundation

/// A child of `segflow up` ends with its parent: `up` sets `SEGFLOW_PARENT_PID` in each
/// child's environment, and the child, seeing itself re-parented (the parent died, even by
/// kill -9), sends itself SIGTERM — the usual graceful, bounded shutdown. Linux's
/// PR_SET_PDEATHSIG would need a fork hook Foundation's Process does not offer.
public enum ParentWatch {
    public static let environmentKey = "SEGFLOW_PARENT_PID"
    static let pollInterval: TimeInterval = 0.5

    /// Starts the watch when the environment names a parent (idempotent).
    public static func startIfRequested(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let value = environment[environmentKey], let parent = pid_t(value), parent > 1 else { return }
        started.withLock { already in
            guard !already else { return }
            already = true
            let thread = Thread {
                while getppid() == parent { Thread.sleep(forTimeInterval: pollInterval) }
                FileHandle.standardError.write("parent process \(parent) is gone; shutting down\n".data(using: .utf8)!)
                kill(getpid(), SIGTERM)
            }
            thread.name = "segflow.parent-watch"
            thread.start()
        }
    }

    private static let started = LockedFlag()
}

/// A Bool behind a lock (this module's only shared mutable state).
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func withLock(_ body: (inout Bool) -> Void) {
        lock.lock(); defer { lock.unlock() }
        body(&value)
    }
}
