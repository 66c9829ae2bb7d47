import CRdKafka
import Foundation

/// A record as consumed: where it came from, key, value and headers.
public struct ConsumedMessage: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Producer or broker timestamp, Unix epoch milliseconds, when the record has one.
    public var timestampMs: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader], timestampMs: Int64?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }

    /// The key as UTF-8 (image ids and stream ids are strings).
    public var keyString: String? { key.flatMap { String(validating: $0, as: UTF8.self) } }
}

public struct TopicPartition: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
}

/// The consumer's state and its poll thread.
///
/// One dedicated thread makes every blocking librdkafka consumer call
/// (rd_kafka_consumer_poll, synchronous commits, close), so none of them ever blocks a
/// cooperative-pool thread, and calls that librdkafka wants serialised (close vs poll)
/// are serialised by construction. Tasks talk to the thread through `jobs` and take
/// messages from a small bounded buffer; a full buffer stops fetching, which is the
/// backpressure (librdkafka's own prefetch queue is bounded by queued.max.messages.kbytes).
///
/// `@unchecked Sendable`: every mutable stored property is read and written only with
/// `condition` locked; `handle` is thread-safe; `consumerQueue` is yielded from other
/// threads (rd_kafka_queue_yield) and destroyed by the poll thread, both with `condition`
/// locked, so no yield reaches a destroyed queue.
final class ConsumerCore: @unchecked Sendable {
    struct Job {
        let run: (OpaquePointer) -> Void
        let fail: (KafkaError) -> Void
    }

    let handle: RDKafkaHandle
    private let consumerQueue: OpaquePointer
    private let capacity: Int
    /// ConsumerConfig.prefetchBytes (nil: none) and .oldestFirst.
    private let capacityBytes: Int?
    private let oldestFirst: Bool
    /// Value bytes in `buffer` (under `condition`).
    private var bufferedBytes = 0
    private let onError: (@Sendable (KafkaError) -> Void)?
    private let condition = NSCondition()
    private var buffer: [ConsumedMessage] = []
    private var waiter: CheckedContinuation<ConsumedMessage?, Error>?
    private var jobs: [Job] = []
    private var stopRequested = false
    private var finished = false
    /// Set (under `condition`) when the poll thread destroyed `consumerQueue`.
    private var queueDestroyed = false
    private var terminalError: KafkaError?
    private var exitWaiters: [@Sendable () -> Void] = []
    /// Uptime (ns) of the last record handed over or buffered (under `condition`).
    private var lastDeliveryNanos = DispatchTime.now().uptimeNanoseconds
    /// What librdkafka's callbacks point at (the rebalance handler, through the conf
    /// opaque). Owned here, not by `Consumer`: the poll thread keeps the core alive until
    /// rd_kafka_consumer_close has returned — and forever when a close is abandoned — so
    /// a Consumer dropped without `shutdown()` cannot free what a late revoke callback
    /// dereferences (CI crashed in RebalanceHandler.revoked after a test dropped its
    /// consumers unshut).
    private let callbackState: AnyObject?

    init(handle: RDKafkaHandle, capacity: Int, capacityBytes: Int? = nil, oldestFirst: Bool = false,
         callbackState: AnyObject? = nil, onError: (@Sendable (KafkaError) -> Void)?) throws {
        self.handle = handle
        self.callbackState = callbackState
        self.capacity = max(1, capacity)
        self.capacityBytes = capacityBytes
        self.oldestFirst = oldestFirst
        self.onError = onError
        guard let queue = rd_kafka_queue_get_consumer(handle.pointer) else {
            throw KafkaError(code: .invalidArgument, message: "no consumer queue (is group.id set?)")
        }
        consumerQueue = queue
        // Before the poll thread starts: revocations drop what is buffered for the revoked partitions.
        (callbackState as? RebalanceHandler)?.buffer = self
        let thread = Thread { [self] in self.pollLoop() }
        thread.name = "segflow.consumer.poll"
        thread.start()
    }

    // MARK: Task side

    func next() async throws -> ConsumedMessage? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ConsumedMessage?, Error>) in
                condition.lock()
                if !buffer.isEmpty {
                    let message = takeLocked()
                    condition.signal()  // room for the poll thread
                    condition.unlock()
                    continuation.resume(returning: message)
                } else if finished {
                    let error = terminalError
                    terminalError = nil  // thrown once, then the sequence just ends
                    condition.unlock()
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
                } else if Task.isCancelled {
                    condition.unlock()
                    continuation.resume(throwing: CancellationError())
                } else if waiter != nil {
                    condition.unlock()
                    continuation.resume(throwing: KafkaError(code: .invalidArgument,
                                                             message: "Consumer.messages iterated from two tasks at once"))
                } else {
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            condition.lock()
            let pending = waiter
            waiter = nil
            condition.unlock()
            pending?.resume(throwing: CancellationError())
        }
    }

    /// Runs `body` on the poll thread (between two polls) and returns its result.
    func perform<T: Sendable>(_ what: String, _ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let job = Job(run: { rk in continuation.resume(with: Result { try body(rk) }) },
                          fail: { continuation.resume(throwing: $0) })
            condition.lock()
            if finished || stopRequested {
                condition.unlock()
                job.fail(KafkaError(code: .shutDown, message: "\(what): consumer is shut down"))
                return
            }
            jobs.append(job)
            condition.signal()
            // ref: rdkafka.h, rd_kafka_queue_yield(): makes a blocked poll return now.
            // Under the lock: the poll thread destroys the queue under it too, so a yield
            // can never reach a destroyed queue (that race crashed decoders on SIGTERM).
            yieldLocked()
            condition.unlock()
        }
    }

    func reportAbandoned(_ error: KafkaError) { onError?(error) }

    /// Removes and returns the next record to hand over. Call with `condition` locked and
    /// `buffer` non-empty. In fetch order, or with `oldestFirst` the first buffered record
    /// of the partition whose first buffered record is the oldest (records without a
    /// timestamp count as newest; ties go to the earlier fetched) — so each partition
    /// stays in offset order.
    private func takeLocked() -> ConsumedMessage {
        var index = 0
        if oldestFirst && buffer.count > 1 {
            var seen = Set<TopicPartition>()
            var best = Int64.max
            for (i, m) in buffer.enumerated() where seen.insert(TopicPartition(topic: m.topic, partition: m.partition)).inserted {
                let t = m.timestampMs ?? Int64.max
                if t < best { best = t; index = i }
            }
        }
        let message = buffer.remove(at: index)
        bufferedBytes -= message.value.count
        return message
    }

    /// Drops buffered records of `partitions` (a revocation: their new owner gets them
    /// redelivered, uncommitted) and returns the first dropped offset of each — where this
    /// member's position really is, should a partition come back. Poll thread (revoke callback).
    func dropBuffered(_ partitions: Set<TopicPartition>) -> [TopicPartition: Int64] {
        condition.lock()
        defer { condition.unlock() }
        var first: [TopicPartition: Int64] = [:]
        buffer.removeAll { m in
            let tp = TopicPartition(topic: m.topic, partition: m.partition)
            guard partitions.contains(tp) else { return false }
            first[tp] = min(first[tp] ?? m.offset, m.offset)
            bufferedBytes -= m.value.count
            return true
        }
        return first
    }

    /// Room for one more record (under `condition`): below `capacity` records and, with a
    /// byte bound, below it in bytes.
    private var hasRoomLocked: Bool {
        buffer.count < capacity && (capacityBytes.map { bufferedBytes < $0 } ?? true)
    }

    /// True when the application has taken every record (nothing buffered, its loop is
    /// waiting for the next one) and none arrived for `quietNanos`: caught up.
    func isCaughtUp(quietNanos: UInt64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if finished { return true }
        return buffer.isEmpty && waiter != nil && DispatchTime.now().uptimeNanoseconds - lastDeliveryNanos >= quietNanos
    }

    func requestStop() {
        condition.lock()
        stopRequested = true
        condition.signal()
        yieldLocked()
        condition.unlock()
    }

    /// Wakes a blocked rd_kafka_consumer_poll. Call with `condition` locked.
    private func yieldLocked() {
        if !queueDestroyed { rd_kafka_queue_yield(consumerQueue) }
    }

    /// Waits until the poll thread has closed the consumer, at most `timeout`. Returns
    /// false when the bound passed first (the close goes on on its own thread; nothing
    /// waits for it any more).
    func waitUntilFinished(timeout: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let once = Locked(Optional(continuation))
            let resume: @Sendable (Bool) -> Void = { value in
                once.withLock { c -> CheckedContinuation<Bool, Never>? in defer { c = nil }; return c }?.resume(returning: value)
            }
            condition.lock()
            if finished {
                condition.unlock()
                resume(true)
                return
            }
            exitWaiters.append { resume(true) }
            condition.unlock()
            let (seconds, attoseconds) = timeout.components
            DispatchQueue.global().asyncAfter(deadline: .now() + Double(seconds) + Double(attoseconds) * 1e-18) { resume(false) }
        }
    }

    // MARK: Poll thread

    private func pollLoop() {
        let rk = handle.pointer
        var tracedAssignment = !StartupTrace.enabled, tracedMessage = !StartupTrace.enabled
        let traceName = StartupTrace.enabled ? String(cString: rd_kafka_name(rk)) : ""
        while true {
            condition.lock()
            while jobs.isEmpty && !stopRequested && !hasRoomLocked {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1))
            }
            let pending = jobs
            jobs = []
            let stop = stopRequested
            condition.unlock()

            for job in pending { job.run(rk) }
            if stop { break }

            condition.lock()
            let hasRoom = hasRoomLocked
            condition.unlock()
            if !hasRoom { continue }

            if !tracedAssignment { tracedAssignment = Self.traceAssignment(rk, name: traceName) }
            guard let raw = rd_kafka_consumer_poll(rk, 100) else { continue }
            let outcome = Self.convert(raw)
            rd_kafka_message_destroy(raw)
            switch outcome {
            case .message(let message):
                if !tracedMessage {
                    tracedMessage = true
                    StartupTrace.mark("consumer \(traceName): first record \(message.topic) [\(message.partition)] @ \(message.offset)")
                }
                deliver(message)
            case .error(let error):
                if let fatal = handle.fatalError() {
                    condition.lock()
                    terminalError = fatal
                    condition.unlock()
                    break
                }
                onError?(error)
            case .ignored:
                break
            }
            if handle.fatalError() != nil { break }
        }
        shutDownOnPollThread(rk)
    }

    /// SEGFLOW_TRACE: marks the first non-empty assignment; true once seen.
    private static func traceAssignment(_ rk: OpaquePointer, name: String) -> Bool {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return false }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard list.pointee.cnt > 0 else { return false }
        StartupTrace.mark("consumer \(name): assigned \(list.pointee.cnt) partition(s)")
        return true
    }

    private func deliver(_ message: ConsumedMessage) {
        condition.lock()
        lastDeliveryNanos = DispatchTime.now().uptimeNanoseconds
        if let waiter {
            self.waiter = nil
            condition.unlock()
            waiter.resume(returning: message)
        } else {
            buffer.append(message)
            bufferedBytes += message.value.count
            condition.unlock()
        }
    }

    /// Stop fetching, run the commits already asked for, leave the group, end the sequence.
    private func shutDownOnPollThread(_ rk: OpaquePointer) {
        condition.lock()
        let pending = jobs
        jobs = []
        stopRequested = true  // refuse new jobs from now on
        condition.unlock()
        for job in pending { job.run(rk) }

        // ref: rdkafka.h, rd_kafka_consumer_close(): leaves the group and revokes the
        // assignment; it commits only offsets the application stored (auto-commit mode). Messages still
        // in our buffer are dropped uncommitted and will be redelivered (at-least-once).
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { onError?(KafkaError(err, "consumer close")) }
        handle.consumerClosed = true
        condition.lock()
        queueDestroyed = true
        rd_kafka_queue_destroy(consumerQueue)
        finished = true
        buffer.removeAll()
        bufferedBytes = 0
        let waiter = self.waiter
        self.waiter = nil
        let error = terminalError
        if waiter != nil { terminalError = nil }
        let exits = exitWaiters
        exitWaiters = []
        let late = jobs
        jobs = []
        condition.unlock()

        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
        for job in late { job.fail(KafkaError(code: .shutDown, message: "consumer shut down before the request ran")) }
        for exit in exits { exit() }
    }

    private enum PollOutcome {
        case message(ConsumedMessage)
        case error(KafkaError)
        case ignored
    }

    /// Copies a polled message into Swift values. Takes the pointer, not a copy of the
    /// struct: rd_kafka_message_headers/_timestamp find librdkafka's private message
    /// around the public struct (rd_kafka_message2msg), so a copy would be read as garbage.
    private static func convert(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) -> PollOutcome {
        let m = pointer.pointee
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return .ignored }
            // Consumer errors arrive as messages; most are informational and librdkafka
            // retries on its own. ref: rdkafka.h, rd_kafka_consumer_poll()
            let detail = m.payload.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
            var error = KafkaError(m.err, "consumer \(topic.isEmpty ? "" : "\(topic) [\(m.partition)] ")\(detail)")
            error.isRetriable = true
            return .error(error)
        }
        let value: [UInt8] = m.payload.map {
            Array(UnsafeRawBufferPointer(start: $0, count: m.len))
        } ?? []
        let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(pointer, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            while true {
                var name: UnsafePointer<CChar>?
                var valuePointer: UnsafeRawPointer?
                var size = 0
                guard rd_kafka_header_get_all(hdrs, index, &name, &valuePointer, &size) == RD_KAFKA_RESP_ERR_NO_ERROR,
                      let name else { break }
                let headerValue = valuePointer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(name: String(cString: name), value: headerValue))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        return .message(ConsumedMessage(topic: topic, partition: m.partition, offset: m.offset, key: key, value: value,
                                        headers: headers,
                                        timestampMs: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp))
    }
}

/// Messages of a `Consumer`, in partition order, ending after `shutdown()`.
/// Iterate from one task at a time.
public struct ConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = ConsumedMessage
    let core: ConsumerCore

    public struct AsyncIterator: AsyncIteratorProtocol {
        let core: ConsumerCore
        public mutating func next() async throws -> ConsumedMessage? {
            try await core.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(core: core) }
}

/// A consumer-group member with manual, per-message offset commits.
///
/// Auto-commit is off: the application commits a message after it produced that
/// message's result (or error result), so a crash in between redelivers the message
/// rather than losing it (at-least-once). Commit messages of one partition in order:
/// committing offset n marks everything before n as done.
public final class Consumer: Sendable {
    let core: ConsumerCore  // internal: Consumer+Lag.swift reads the group state through it
    /// The rebalance callback's state (its opaque pointer); the core keeps it alive.
    private let rebalance: RebalanceHandler
    public let topics: [String]
    public let groupID: String

    /// Joins `config.groupID` and subscribes to `topics`. Partitions are assigned by the
    /// group's assignor after the join (the mock broker's first join takes ~3 s).
    /// - Parameter onError: non-fatal client errors (broker down, unknown topic…);
    ///   librdkafka retries these itself. Fatal errors end `messages` by throwing.
    ///   - replay: topics whose partitions, when assigned, start at most `records` before
    ///     the end (the high watermark) instead of at the committed offset — a cache that
    ///     rebuilds itself from a topic reads only what it can hold (ReplayWindow).
    public init(config: ConsumerConfig, topics: [String], replay: [ReplayWindow] = [],
                onError: (@Sendable (KafkaError) -> Void)? = nil) throws {
        precondition(!topics.isEmpty, "Consumer needs at least one topic")
        self.topics = topics
        self.groupID = config.groupID
        let rebalance = RebalanceHandler(windows: replay)
        self.rebalance = rebalance
        let handle = try RDKafkaHandle(type: RD_KAFKA_CONSUMER, properties: config.librdkafkaProperties()) { conf in
            guard !replay.isEmpty else { return }
            // ref: rdkafka.h, rd_kafka_conf_set_rebalance_cb(): the callback must assign
            // (or unassign) itself; with the eager (range) protocol that is rd_kafka_assign.
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        }
        // Route all events to the consumer queue so rd_kafka_consumer_poll serves them.
        // ref: rdkafka.h, rd_kafka_poll_set_consumer()
        let redirect = rd_kafka_poll_set_consumer(handle.pointer)
        if redirect != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(redirect, "rd_kafka_poll_set_consumer") }
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle.pointer, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "subscribe to \(topics)") }
        StartupTrace.mark("consumer \(String(cString: rd_kafka_name(handle.pointer))): subscribed group \(config.groupID) to \(topics.joined(separator: ","))")
        core = try ConsumerCore(handle: handle, capacity: config.prefetchCount, capacityBytes: config.prefetchBytes,
                                oldestFirst: config.oldestFirst, callbackState: rebalance, onError: onError)
    }

    /// A reader outside any consumer group: every partition of `topic` from its end as of
    /// now. The high watermarks are queried first and assigned as exact offsets, so every
    /// record produced after this returns is read — no group join (the mock broker's first
    /// join takes 3 s) and no race with "latest", which librdkafka resolves only after the
    /// assignment. Nothing is ever committed. For request/reply clients (SegflowClient).
    public init(config: ConsumerConfig, readingFromEndOf topic: String, partitions: Int,
                onError: (@Sendable (KafkaError) -> Void)? = nil) async throws {
        precondition(partitions > 0, "readingFromEndOf needs at least one partition")
        self.topics = [topic]
        self.groupID = config.groupID
        rebalance = RebalanceHandler(windows: [])
        var properties = config.librdkafkaProperties()
        properties["enable.auto.commit"] = "false"
        let handle = try RDKafkaHandle(type: RD_KAFKA_CONSUMER, properties: properties)
        let redirect = rd_kafka_poll_set_consumer(handle.pointer)
        if redirect != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(redirect, "rd_kafka_poll_set_consumer") }
        core = try ConsumerCore(handle: handle, capacity: config.prefetchCount, onError: onError)
        let timeoutMs = RebalanceHandler.watermarkTimeoutMs
        do {
            try await core.perform("assign \(topic) from its end") { rk in
                let list = rd_kafka_topic_partition_list_new(Int32(partitions))
                defer { rd_kafka_topic_partition_list_destroy(list) }
                for p in 0..<Int32(partitions) {
                    var low: Int64 = 0, high: Int64 = 0
                    let err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, timeoutMs)
                    if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "end offset of \(topic) [\(p)]") }
                    rd_kafka_topic_partition_list_add(list, topic, p)?.pointee.offset = high
                }
                let err = rd_kafka_assign(rk, list)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "assign \(topic)") }
            }
        } catch {
            await shutdown()
            throw error
        }
        StartupTrace.mark("consumer \(String(cString: rd_kafka_name(handle.pointer))): assigned \(topic) (\(partitions) partitions) from its end")
    }

    deinit {
        core.requestStop()
    }

    public var messages: ConsumerMessages { ConsumerMessages(core: core) }

    /// A reader outside any consumer group of exact positions (`start`: partition → first
    /// offset to read). Nothing is committed. For reading records the caller located
    /// itself (the prompt-decoder fetching an embedding by its indexed offsets).
    public init(config: ConsumerConfig, reading start: [TopicPartition: Int64],
                onError: (@Sendable (KafkaError) -> Void)? = nil) throws {
        precondition(!start.isEmpty, "a positioned reader needs at least one partition")
        self.topics = Array(Set(start.keys.map(\.topic))).sorted()
        self.groupID = config.groupID
        rebalance = RebalanceHandler(windows: [])
        var properties = config.librdkafkaProperties()
        properties["enable.auto.commit"] = "false"
        let handle = try RDKafkaHandle(type: RD_KAFKA_CONSUMER, properties: properties)
        let redirect = rd_kafka_poll_set_consumer(handle.pointer)
        if redirect != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(redirect, "rd_kafka_poll_set_consumer") }
        let list = rd_kafka_topic_partition_list_new(Int32(start.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (tp, offset) in start { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)?.pointee.offset = offset }
        let err = rd_kafka_assign(handle.pointer, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "assign \(start)") }
        core = try ConsumerCore(handle: handle, capacity: config.prefetchCount, onError: onError)
    }

    /// Commits `message.offset + 1` for its partition (Kafka's committed offset is the
    /// next one to read), synchronously with the group coordinator.
    public func commit(_ message: ConsumedMessage) async throws {
        try await commit(TopicPartition(topic: message.topic, partition: message.partition), nextOffset: message.offset + 1)
    }

    /// Commits `nextOffset` as the position to resume `partition` from.
    public func commit(_ partition: TopicPartition, nextOffset: Int64) async throws {
        try await core.perform("commit \(partition.topic) [\(partition.partition)] @ \(nextOffset)") { rk in
            let list = rd_kafka_topic_partition_list_new(1)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let entry = rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)
            entry?.pointee.offset = nextOffset
            // async=0: wait for the coordinator's answer on a private queue, so it works
            // while nobody polls the consumer queue. ref: rdkafka_offset.c, rd_kafka_commit()
            let err = rd_kafka_commit(rk, list, 0)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(err, "commit \(partition.topic) [\(partition.partition)] offset \(nextOffset)")
            }
            if let partErr = list?.pointee.elems?.pointee.err, partErr != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(partErr, "commit \(partition.topic) [\(partition.partition)] offset \(nextOffset)")
            }
        }
    }

    /// Marks `nextOffset` as the position to resume `partition` from; librdkafka commits
    /// it in the background (ConsumerConfig.storedOffsetCommitIntervalMs), on revocation
    /// and on close. Never blocks. A partition no longer assigned refuses the store (its
    /// new owner redelivers the record: at-least-once).
    public func store(_ partition: TopicPartition, nextOffset: Int64) throws {
        let list = rd_kafka_topic_partition_list_new(1)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let entry = rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)
        entry?.pointee.offset = nextOffset
        // ref: rdkafka.h, rd_kafka_offsets_store(): thread-safe; with
        // enable.auto.offset.store=false the stored offset is what auto-commit sends.
        let err = rd_kafka_offsets_store(core.handle.pointer, list)
        if let partErr = list?.pointee.elems?.pointee.err, partErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(partErr, "store \(partition.topic) [\(partition.partition)] offset \(nextOffset)")
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, "store \(partition.topic) [\(partition.partition)] offset \(nextOffset)")
        }
    }

    public func store(_ message: ConsumedMessage) throws {
        try store(TopicPartition(topic: message.topic, partition: message.partition), nextOffset: message.offset + 1)
    }

    /// The group's committed offset for a partition (the next offset to read), nil if none.
    public func committedOffset(_ partition: TopicPartition, timeout: Duration = .seconds(10)) async throws -> Int64? {
        let timeoutMs = Int32(clamping: milliseconds(timeout))
        return try await core.perform("committed offset of \(partition.topic) [\(partition.partition)]") { rk in
            let list = rd_kafka_topic_partition_list_new(1)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)
            let err = rd_kafka_committed(rk, list, timeoutMs)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "committed offsets") }
            guard let entry = list?.pointee.elems?.pointee else { return nil }
            if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(entry.err, "committed offset of \(partition.topic)") }
            return entry.offset >= 0 ? entry.offset : nil
        }
    }

    /// Partitions currently assigned to this member (empty before the first rebalance).
    public func assignment() async throws -> [TopicPartition] {
        try await core.perform("assignment") { rk in
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            let err = rd_kafka_assignment(rk, &list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "assignment") }
            guard let list else { return [] }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            return (0..<Int(list.pointee.cnt)).map { index in
                let entry = list.pointee.elems[index]
                return TopicPartition(topic: String(cString: entry.topic), partition: entry.partition)
            }
        }
    }

    /// How long `shutdown()` waits for librdkafka's close (leave group, revoke) before it
    /// abandons it. A close needs the group coordinator; with the broker unreachable or
    /// stalled librdkafka can wait on it far longer (seen: minutes in
    /// rd_kafka_consumer_close → cnd_wait). Abandoning is safe: offsets are committed only
    /// after processing, so anything not committed is redelivered (at-least-once), and the
    /// group evicts the member after session.timeout.ms.
    public static let defaultCloseBound: Duration = .seconds(10)

    /// How a graceful drain ended (`drainThenShutdown`).
    public enum DrainOutcome: Sendable, Equatable {
        /// Every fetched record was handled and none arrived for the quiet period.
        case caughtUp(seconds: Double)
        /// The budget ran out with records still arriving or being handled.
        case budgetSpent(seconds: Double)
    }

    /// A graceful leave: keeps fetching and handing records over — so what this member
    /// already fetched (librdkafka's prefetch, typically a whole burst) is answered here
    /// rather than redelivered to a new owner after a rebalance — until the application
    /// has caught up (nothing buffered, its loop waiting, no record for `quiet`) or
    /// `budget` is spent; then `shutdown()` (commit, leave the group, close).
    /// A group change costs answers the rebalance's duration, so handing over an idle
    /// member's partitions delays nothing, and handing over a busy one's delays only
    /// what arrived during the drain.
    @discardableResult
    public func drainThenShutdown(budget: Duration = Consumer.defaultDrainBudget, quiet: Duration = .milliseconds(300),
                                  bound: Duration = Consumer.defaultCloseBound) async -> (DrainOutcome, closed: Bool) {
        let start = ContinuousClock.now
        let quietNanos = UInt64(quiet.components.seconds) * 1_000_000_000 + UInt64(quiet.components.attoseconds / 1_000_000_000)
        var outcome: DrainOutcome
        while true {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            if core.isCaughtUp(quietNanos: quietNanos) { outcome = .caughtUp(seconds: seconds); break }
            if elapsed >= budget { outcome = .budgetSpent(seconds: seconds); break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return (outcome, await shutdown(bound: bound))
    }

    /// Longest graceful drain before leaving the group: well inside the services' 30 s
    /// shutdown escalation (and Kubernetes' default 30 s grace period).
    public static let defaultDrainBudget: Duration = .seconds(10)

    /// Graceful shutdown: stop fetching, finish commits already requested, leave the
    /// group (so partitions move to other members without waiting for the session
    /// timeout), then end `messages`. Idempotent; returns when the client is closed or
    /// `bound` has passed (then it reports the abandoned close through `onError` and
    /// returns false; the close carries on on the consumer's own thread).
    @discardableResult
    public func shutdown(bound: Duration = Consumer.defaultCloseBound) async -> Bool {
        core.requestStop()
        let closed = await core.waitUntilFinished(timeout: bound)
        if !closed {
            core.reportAbandoned(KafkaError(code: .timedOut, message: "consumer close (group \(groupID), topics \(topics.joined(separator: ","))) did not finish within \(bound); abandoned it — uncommitted records will be redelivered"))
        }
        return closed
    }
}

/// A topic a consumer replays only the tail of: on assignment each partition starts at
/// `max(low watermark, min(committed, high watermark − records))` — the tail, or earlier
/// when the group's committed offset is older (work the previous owner never finished,
/// e.g. a tracked stream's frames, is never skipped). The prompt-decoder uses it for the
/// embeddings topic, sized from its cache (`--cache-mb`): a restart or a new assignment
/// costs what the cache can hold, however long the topic's retention.
public struct ReplayWindow: Sendable, Hashable {
    public var topic: String
    public var records: Int64
    public init(topic: String, records: Int64) {
        self.topic = topic
        self.records = max(0, records)
    }
}

/// Where an assigned partition starts, as decided on assignment.
public struct AssignedStart: Sendable, Hashable {
    public var partition: TopicPartition
    /// First offset read; nil = the group's committed offset (or auto.offset.reset).
    public var offset: Int64?
    public var lowWatermark: Int64
    public var highWatermark: Int64
    /// The group's committed offset when the partition was assigned (nil: none).
    public var committed: Int64? = nil
    /// This member held the partition until the rebalance and resumes where it was
    /// (RebalanceHandler.heldAtRevoke) rather than replaying the window.
    public var resumed = false
}

/// State for the C rebalance callback (runs on the consumer's poll thread, inside
/// rd_kafka_consumer_poll, or inside close, also on that thread). `@unchecked Sendable`:
/// `windows` is immutable, `starts` and `revokedPartitions` are behind locks, and
/// `heldAtRevoke` is only touched by the callbacks, on the poll thread.
final class RebalanceHandler: @unchecked Sendable {
    let windows: [String: Int64]
    let starts = Locked<[AssignedStart]>([])
    /// How long one watermark query may take before the partition falls back to its committed offset.
    static let watermarkTimeoutMs: Int32 = 5000

    init(windows: [ReplayWindow]) {
        self.windows = Dictionary(windows.map { ($0.topic, $0.records) }, uniquingKeysWith: { a, _ in a })
    }

    let revokedPartitions = Locked<[TopicPartition]>([])
    /// The consumer's buffer (set before its poll thread starts; weak: the core owns us).
    weak var buffer: ConsumerCore?
    /// Windowed partitions taken away by the last revocation, with this member's position
    /// in each (the offset after the last record handed to the application). The eager
    /// protocol revokes every partition on every group change; one that comes straight
    /// back resumes there instead of replaying its whole window again — the application
    /// still holds what it read (measured: a survivor of a graceful leave re-read its own
    /// partitions' windows for ~20 s before it answered the moved prompts).
    private var heldAtRevoke: [TopicPartition: Int64] = [:]  // poll thread only

    func revoked(_ rk: OpaquePointer, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let partitions = (0..<Int(list.pointee.cnt)).map { i -> TopicPartition in
            let e = list.pointee.elems[i]
            return TopicPartition(topic: String(cString: e.topic), partition: e.partition)
        }
        // ref: rdkafka.h, rd_kafka_position(): the offset of the last message returned by
        // poll + 1, or RD_KAFKA_OFFSET_INVALID. Records polled but still buffered are
        // dropped here (their new owner gets them); the application's position in such a
        // partition is the first of them.
        let dropped = buffer?.dropBuffered(Set(partitions)) ?? [:]
        heldAtRevoke = [:]
        if rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR {
            for i in 0..<Int(list.pointee.cnt) {
                let e = list.pointee.elems[i]
                let topic = String(cString: e.topic)
                if windows[topic] != nil, e.err == RD_KAFKA_RESP_ERR_NO_ERROR, e.offset >= 0 {
                    let tp = TopicPartition(topic: topic, partition: e.partition)
                    heldAtRevoke[tp] = min(e.offset, dropped[tp] ?? e.offset)
                }
            }
        }
        revokedPartitions.withLock { $0.append(contentsOf: partitions) }
    }

    func assign(_ rk: OpaquePointer, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        var decided: [AssignedStart] = []
        for i in 0..<Int(list.pointee.cnt) {
            let entry = list.pointee.elems.advanced(by: i)
            let topic = String(cString: entry.pointee.topic)
            guard let window = windows[topic] else { continue }
            var low: Int64 = 0, high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(rk, topic, entry.pointee.partition, &low, &high, Self.watermarkTimeoutMs)
            let tp = TopicPartition(topic: topic, partition: entry.pointee.partition)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                decided.append(AssignedStart(partition: tp, offset: nil, lowWatermark: -1, highWatermark: -1))
                continue
            }
            var start = max(low, high - window)
            let resumed = heldAtRevoke[tp].map { min(max($0, low), high) }
            if let resumed { start = max(start, resumed) }
            let committed = Self.committed(rk, tp)
            if let committed, committed >= low, committed < start { start = committed }
            entry.pointee.offset = start
            decided.append(AssignedStart(partition: tp, offset: start, lowWatermark: low, highWatermark: high,
                                         committed: committed, resumed: resumed != nil))
        }
        heldAtRevoke = [:]
        starts.withLock { $0.append(contentsOf: decided) }
        rd_kafka_assign(rk, list)
    }

    /// The group's committed offset for one partition (nil: none, or the query failed).
    static func committed(_ rk: OpaquePointer, _ tp: TopicPartition) -> Int64? {
        guard let list = rd_kafka_topic_partition_list_new(1) else { return nil }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)
        guard rd_kafka_committed(rk, list, watermarkTimeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR,
              list.pointee.elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let offset = list.pointee.elems[0].offset
        return offset >= 0 ? offset : nil
    }
}

let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                       UnsafeMutableRawPointer?) -> Void = { rk, err, list, opaque in
    guard let rk else { return }
    if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, let list, let opaque {
        Unmanaged<RebalanceHandler>.fromOpaque(opaque).takeUnretainedValue().assign(rk, list)
    } else {
        if let list, let opaque { Unmanaged<RebalanceHandler>.fromOpaque(opaque).takeUnretainedValue().revoked(rk, list) }
        rd_kafka_assign(rk, nil)
    }
}

extension Consumer {
    /// Partitions revoked by rebalances since the last call (consumers with a replay
    /// window only: they install the rebalance callback). Work held for them — e.g.
    /// prompts parked waiting for an embedding — belongs to their new owner now, which
    /// gets the uncommitted records redelivered.
    public func takeRevoked() -> [TopicPartition] {
        rebalance.revokedPartitions.withLock { revoked in defer { revoked = [] }; return revoked }
    }

    /// Replay-window starts decided since the last call (for logs and metrics).
    public func takeAssignedStarts() -> [AssignedStart] {
        rebalance.starts.withLock { starts in defer { starts = [] }; return starts }
    }
}
