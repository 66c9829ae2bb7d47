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
/// `condition` locked; `handle` is thread-safe; `consumerQueue` is used from other
/// threads only for rd_kafka_queue_yield (thread-safe) and destroyed by the poll thread
/// after it stopped using it, before `finished` is published.
final class ConsumerCore: @unchecked Sendable {
    struct Job {
        let run: (OpaquePointer) -> Void
        let fail: (KafkaError) -> Void
    }

    let handle: RDKafkaHandle
    private let consumerQueue: OpaquePointer
    private let capacity: Int
    private let onError: (@Sendable (KafkaError) -> Void)?
    private let condition = NSCondition()
    private var buffer: [ConsumedMessage] = []
    private var waiter: CheckedContinuation<ConsumedMessage?, Error>?
    private var jobs: [Job] = []
    private var stopRequested = false
    private var finished = false
    private var terminalError: KafkaError?
    private var exitWaiters: [CheckedContinuation<Void, Never>] = []

    init(handle: RDKafkaHandle, capacity: Int, onError: (@Sendable (KafkaError) -> Void)?) throws {
        self.handle = handle
        self.capacity = max(1, capacity)
        self.onError = onError
        guard let queue = rd_kafka_queue_get_consumer(handle.pointer) else {
            throw KafkaError(code: .invalidArgument, message: "no consumer queue (is group.id set?)")
        }
        consumerQueue = queue
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
                    let message = buffer.removeFirst()
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
            condition.unlock()
            // ref: rdkafka.h, rd_kafka_queue_yield(): makes a blocked poll return now.
            rd_kafka_queue_yield(consumerQueue)
        }
    }

    func requestStop() {
        condition.lock()
        stopRequested = true
        condition.signal()
        let done = finished
        condition.unlock()
        if !done { rd_kafka_queue_yield(consumerQueue) }
    }

    func waitUntilFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            if finished {
                condition.unlock()
                continuation.resume()
            } else {
                exitWaiters.append(continuation)
                condition.unlock()
            }
        }
    }

    // MARK: Poll thread

    private func pollLoop() {
        let rk = handle.pointer
        while true {
            condition.lock()
            while jobs.isEmpty && !stopRequested && buffer.count >= capacity {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1))
            }
            let pending = jobs
            jobs = []
            let stop = stopRequested
            condition.unlock()

            for job in pending { job.run(rk) }
            if stop { break }

            condition.lock()
            let hasRoom = buffer.count < capacity
            condition.unlock()
            if !hasRoom { continue }

            guard let raw = rd_kafka_consumer_poll(rk, 100) else { continue }
            let outcome = Self.convert(raw)
            rd_kafka_message_destroy(raw)
            switch outcome {
            case .message(let message):
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

    private func deliver(_ message: ConsumedMessage) {
        condition.lock()
        if let waiter {
            self.waiter = nil
            condition.unlock()
            waiter.resume(returning: message)
        } else {
            buffer.append(message)
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
        // assignment; with auto-commit off it commits nothing on its own. Messages still
        // in our buffer are dropped uncommitted and will be redelivered (at-least-once).
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { onError?(KafkaError(err, "consumer close")) }
        handle.consumerClosed = true
        rd_kafka_queue_destroy(consumerQueue)

        condition.lock()
        finished = true
        buffer.removeAll()
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
        for exit in exits { exit.resume() }
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
    public let topics: [String]
    public let groupID: String

    /// Joins `config.groupID` and subscribes to `topics`. Partitions are assigned by the
    /// group's assignor after the join (the mock broker's first join takes ~3 s).
    /// - Parameter onError: non-fatal client errors (broker down, unknown topic…);
    ///   librdkafka retries these itself. Fatal errors end `messages` by throwing.
    public init(config: ConsumerConfig, topics: [String], onError: (@Sendable (KafkaError) -> Void)? = nil) throws {
        precondition(!topics.isEmpty, "Consumer needs at least one topic")
        self.topics = topics
        self.groupID = config.groupID
        let handle = try RDKafkaHandle(type: RD_KAFKA_CONSUMER, properties: config.librdkafkaProperties())
        // Route all events to the consumer queue so rd_kafka_consumer_poll serves them.
        // ref: rdkafka.h, rd_kafka_poll_set_consumer()
        let redirect = rd_kafka_poll_set_consumer(handle.pointer)
        if redirect != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(redirect, "rd_kafka_poll_set_consumer") }
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(handle.pointer, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "subscribe to \(topics)") }
        core = try ConsumerCore(handle: handle, capacity: config.prefetchCount, onError: onError)
    }

    deinit {
        core.requestStop()
    }

    public var messages: ConsumerMessages { ConsumerMessages(core: core) }

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

    /// Graceful shutdown: stop fetching, finish commits already requested, leave the
    /// group (so partitions move to other members without waiting for the session
    /// timeout), then end `messages`. Idempotent; returns when the client is closed.
    public func shutdown() async {
        core.requestStop()
        await core.waitUntilFinished()
    }
}
