import Foundation
import Messaging
import Tensor
import XCTest

/// Deterministic PRNG (Tensor's SplitMix64) so failures reproduce from the seed.
typealias SeededRandom = SplitMix64

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let after: Duration
    var description: String { "timed out after \(after): \(what)" }
}

/// Runs `body`, failing with `TimedOut` instead of hanging the suite.
func withTimeout<T: Sendable>(_ timeout: Duration, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimedOut(what: what, after: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Reads exactly `count` messages.
func take(_ count: Int, from consumer: Consumer, timeout: Duration = .seconds(30)) async throws -> [ConsumedMessage] {
    try await withTimeout(timeout, "reading \(count) messages from \(consumer.topics)") {
        var received: [ConsumedMessage] = []
        for try await message in consumer.messages {
            received.append(message)
            if received.count == count { break }
        }
        return received
    }
}

/// One mock cluster for the whole suite: starting one is cheap, but reusing it keeps
/// the tests close to how services share a cluster. Tests use unique topic and group
/// names, so they do not interfere.
enum SharedBroker {
    static let broker: EmbeddedBroker = {
        do { return try EmbeddedBroker(brokers: 3) } catch { fatalError("cannot start the embedded broker: \(error)") }
    }()

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }
}
