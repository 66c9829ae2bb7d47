import Backends
import Foundation
import Logging
import Messaging
import Pipeline

/// The in-context examples an image-encoder can use: every PromptPair on the compacted
/// prompt-pairs topic, read from the beginning by a consumer of this process's own (so
/// every encoder sees every pair, whichever partition it landed on), kept as the encoded
/// bytes (decoded per request) under a byte budget, least recently used dropped first.
/// A request naming an id not seen yet waits for it, bounded, then gets PROMPT_NOT_FOUND.
public actor PromptPairStore {
    public struct Options: Sendable {
        public var capacityBytes = 256 * 1024 * 1024
        /// How long a request waits for a prompt id it names to arrive.
        public var maxWaitMs: Double = 10_000
        public init() {}
    }

    let options: Options
    var pairs: [String: (pair: PromptPair, tick: UInt64)] = [:]
    var usedBytes = 0
    var tick: UInt64 = 0
    var waiters: [UUID: (ids: Set<String>, continuation: CheckedContinuation<Void, Never>, timer: Task<Void, Never>)] = [:]

    public init(options: Options = Options()) { self.options = options }

    public var count: Int { pairs.count }

    /// Registers (or replaces) a pair; wakes requests waiting for it.
    public func insert(_ pair: PromptPair) {
        remove(pair.promptID)
        tick += 1
        pairs[pair.promptID] = (pair, tick)
        usedBytes += pair.image.count + pair.mask.count
        while usedBytes > options.capacityBytes, pairs.count > 1,
              let victim = pairs.filter({ $0.key != pair.promptID }).min(by: { $0.value.tick < $1.value.tick })?.key {
            remove(victim)
        }
        for (key, w) in waiters where w.ids.allSatisfy({ pairs[$0] != nil }) {
            waiters[key] = nil
            w.timer.cancel()
            w.continuation.resume()
        }
    }

    func remove(_ id: String) {
        if let old = pairs.removeValue(forKey: id) { usedBytes -= old.pair.image.count + old.pair.mask.count }
    }

    /// The pairs for `ids`, in order, waiting up to `maxWaitMs` for missing ones.
    public func pairs(_ ids: [String]) async throws(ServingError) -> [PromptPair] {
        if ids.contains(where: { pairs[$0] == nil }) {
            let key = UUID()
            let wait = options.maxWaitMs
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // The timer is cancelled when the pairs arrive first, so no sleeper outlives its wait.
                let timer = Task { [weak self] in
                    guard (try? await Task.sleep(for: .milliseconds(Int(wait)))) != nil else { return }
                    await self?.timeout(key)
                }
                waiters[key] = (Set(ids), c, timer)
            }
        }
        let missing = ids.filter { pairs[$0] == nil }
        guard missing.isEmpty else {
            throw ServingError(.promptNotFound, "prompt pair(s) \(missing.joined(separator: ", ")) not registered within \(Int(options.maxWaitMs)) ms; send them to the prompt-pairs topic first")
        }
        return ids.map { id in
            tick += 1
            pairs[id]!.tick = tick
            return pairs[id]!.pair
        }
    }

    func timeout(_ key: UUID) {
        waiters.removeValue(forKey: key)?.continuation.resume()
    }

    /// Reads the prompt-pairs topic until cancelled (a consumer group of its own, from the
    /// earliest offset, never committing). Bad records are logged and skipped: nobody can
    /// be answered for them, and the requests naming them get PROMPT_NOT_FOUND.
    public func follow(client: KafkaClientConfig, topic: String, logger: Logger) async throws {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "segflow-prompt-pairs-\(UUID().uuidString)",
                                                           autoOffsetReset: .earliest, fetchWaitMaxMs: 1), topics: [topic])
        do {
            try await withTaskCancellationHandler {
                for try await record in consumer.messages {
                    do { insert(try PromptPair(bytes: record.value)) } catch {
                        logger.warning("skipping an unreadable prompt pair: \(error)",
                                       metadata: [LogKey.topic: "\(record.topic)", LogKey.offset: "\(record.offset)"])
                    }
                }
            } onCancel: {
                Task { await consumer.shutdown() }
            }
        } catch is CancellationError {}
        await consumer.close(logger: logger)
    }
}
