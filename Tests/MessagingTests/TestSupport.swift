import Foundation
import Messaging
import XCTest

/// Deterministic PRNG (SplitMix64) so failures reproduce from the seed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

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
