import CRdKafka
import Foundation

/// One record to produce.
public struct ProducerRecord: Sendable, Hashable {
    public var topic: String
    /// The partitioning key: image id for embeddings/prompts, stream id for video frames.
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// nil lets the configured partitioner hash the key.
    public var partition: Int32?
    /// A null value (compacted topics: deletes the key). `value` must be empty.
    public var tombstone = false

    /// A tombstone for `key` on a compacted topic.
    public static func tombstone(topic: String, key: String) -> ProducerRecord {
        var r = ProducerRecord(topic: topic, key: key, value: [])
        r.tombstone = true
        return r
    }

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }

    public init(topic: String, key: String, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil) {
        self.init(topic: topic, key: Array(key.utf8), value: value, headers: headers, partition: partition)
    }
}

/// Where the broker stored a record.
public struct DeliveryReport: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Carries one record's delivery result from librdkafka's callback to the awaiting task.
/// Passed to librdkafka as the per-message opaque (retained), released in the callback.
private final class DeliveryBox: Sendable {
    typealias Stream = AsyncStream<(Int, Result<DeliveryReport, KafkaError>)>
    let index: Int
    let continuation: Stream.Continuation
    init(index: Int, continuation: Stream.Continuation) {
        self.index = index
        self.continuation = continuation
    }
}

/// Called by rd_kafka_poll() on the producer's poll thread, once per message, after the
/// broker acknowledged it or librdkafka gave up (timeout, purge, permanent error).
/// ref: rdkafka.h, rd_kafka_conf_set_dr_msg_cb()
private let deliveryReportCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
    let m = message.pointee
    let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
    if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
        var error = KafkaError(m.err, "delivery to \(topic) [\(m.partition)] failed")
        error.isRetriable = m.err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
        box.continuation.yield((box.index, .failure(error)))
    } else {
        box.continuation.yield((box.index, .success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset))))
    }
}

/// Runs `rd_kafka_poll` on a dedicated thread until stopped: it serves delivery reports
/// (and error/log callbacks), which librdkafka only invokes from inside poll.
final class ProducerPollThread: Sendable {
    private let state = Locked((stop: false, exited: false, waiters: [CheckedContinuation<Void, Never>]()))
    private let handle: RDKafkaHandle

    init(handle: RDKafkaHandle, name: String) {
        self.handle = handle
        let thread = Thread { [state, handle] in
            while !state.withLock({ $0.stop }) {
                rd_kafka_poll(handle.pointer, 100)
            }
            rd_kafka_poll(handle.pointer, 0)  // serve reports raised while stopping (e.g. purges)
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.exited = true
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = name
        thread.start()
    }

    /// Asks the thread to stop without waiting (for deinit).
    func requestStop() {
        state.withLock { $0.stop = true }
        rd_kafka_yield(handle.pointer)
    }

    func stop() async {
        requestStop()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { s -> Bool in
                if !s.exited { s.waiters.append(continuation) }
                return s.exited
            }
            if exited { continuation.resume() }
        }
    }
}

/// An idempotent Kafka producer whose sends complete when the broker has the record.
///
/// `send` returns the partition and offset from librdkafka's delivery report, so a
/// service commits its input offset only after its output is durable (at-least-once).
public final class Producer: Sendable {
    private let handle: RDKafkaHandle
    private let poller: ProducerPollThread
    private let config: ProducerConfig
    /// Guards "closed" together with enqueueing, so no record is enqueued after close()
    /// stopped the poll thread (its report would never be served).
    private let closed = Locked(false)
    private let acksZero: Bool

    /// - Parameter knownTopics: topics this producer will write to. Their metadata is
    ///   fetched now, in the background: librdkafka 2.0.2 learns a topic it has not seen
    ///   from its 1 s topic scan (rdkafka_topic.c, rd_kafka_topic_scan_all), so the first
    ///   record to each new topic waited up to a second (measured with SEGFLOW_TRACE=1 and
    ///   SEGFLOW_KAFKA_DEBUG=topic,metadata: "New local topic" … 0.7–1.0 s … "refresh
    ///   unavailable topics"). Records to other topics work as before.
    public init(config: ProducerConfig, knownTopics: [String] = []) throws {
        self.config = config
        let properties = config.librdkafkaProperties()
        acksZero = properties["acks"] == "0" || properties["request.required.acks"] == "0"
        handle = try RDKafkaHandle(type: RD_KAFKA_PRODUCER, properties: config.librdkafkaProperties()) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        poller = ProducerPollThread(handle: handle, name: "segflow.producer.poll")
        if !knownTopics.isEmpty { Self.warmUp(handle, topics: Array(Set(knownTopics)).sorted()) }
    }

    /// How long the background metadata warm-up may wait for the cluster; past it the
    /// topics are learnt as before (by the first record).
    static let warmUpTimeoutMs: Int32 = 5000

    /// Creates the topic objects and asks for their metadata on a thread of its own (a
    /// metadata request blocks). The thread holds the handle until it is done.
    private static func warmUp(_ handle: RDKafkaHandle, topics: [String]) {
        let thread = Thread {
            for topic in topics {
                guard let rkt = rd_kafka_topic_new(handle.pointer, topic, nil) else { continue }
                var metadata: UnsafePointer<rd_kafka_metadata>?
                let err = rd_kafka_metadata(handle.pointer, 0, rkt, &metadata, warmUpTimeoutMs)
                if let metadata { rd_kafka_metadata_destroy(metadata) }
                StartupTrace.mark("producer \(String(cString: rd_kafka_name(handle.pointer))): metadata for \(topic): \(err == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : String(cString: rd_kafka_err2str(err)))")
                rd_kafka_topic_destroy(rkt)
            }
        }
        thread.name = "segflow.producer.warmup"
        thread.start()
    }

    deinit {
        poller.requestStop()
    }

    /// Produces one record and waits for its delivery report.
    public func send(_ record: ProducerRecord) async throws -> DeliveryReport {
        try await send([record])[0]
    }

    /// How many times `send` re-produces a record whose delivery report came back
    /// successful but without an offset (see `send`).
    public static let implicitAckResendLimit = 3

    /// Records `send` re-produced because their delivery report had no offset.
    public var implicitAckResends: Int { resends.withLock { $0 } }
    private let resends = Locked(0)

    /// Enqueues all records at once (so they share batches and round trips), then waits
    /// for every delivery report. Records with the same key keep their order. Throws the
    /// first failure, after all enqueued records have reported. Cancellation stops the
    /// wait, not delivery: records already handed to librdkafka may still be written.
    ///
    /// A successful report without an offset (RD_KAFKA_OFFSET_INVALID) is librdkafka's
    /// implicit acknowledgement: a request R1 failed, a later request R2 of the same
    /// partition succeeded, and since an idempotent broker accepts R2 only after R1's
    /// sequence, R1's records are reported delivered with no offset
    /// (rdkafka_request.c, rd_kafka_handle_idempotent_Produce_success → rd_kafka_dr_implicit_ack).
    /// The mock cluster of librdkafka 2.0.2 does not check sequences for a
    /// non-transactional producer (rdkafka_mock.c: the PID check returns early without a
    /// transactional id), so there R1's records were never written: with produce errors
    /// injected, 7 of 120 records were reported delivered and were not in the log
    /// (MessagingTests.ProducerImplicitAckTests). Such records are produced again, up to
    /// `implicitAckResendLimit` times: at-least-once allows the duplicate a real broker
    /// then holds, and a caller gets an offset for every record it indexes or commits
    /// behind. Only reports still without an offset after that come back with offset < 0.
    public func send(_ records: [ProducerRecord]) async throws -> [DeliveryReport] {
        var reports = try await sendOnce(records)
        guard !acksZero else { return reports }  // acks=0: no report carries an offset
        for _ in 0..<Self.implicitAckResendLimit {
            let unproven = reports.indices.filter { reports[$0].offset < 0 }
            if unproven.isEmpty { break }
            resends.withLock { $0 += unproven.count }
            let again = try await sendOnce(unproven.map { records[$0] })
            for (i, report) in zip(unproven, again) { reports[i] = report }
        }
        return reports
    }

    private func sendOnce(_ records: [ProducerRecord]) async throws -> [DeliveryReport] {
        if records.isEmpty { return [] }
        let (stream, continuation) = DeliveryBox.Stream.makeStream()
        defer { continuation.finish() }
        var enqueued = 0
        var enqueueError: Error?
        for (index, record) in records.enumerated() {
            do {
                try await enqueue(record, box: DeliveryBox(index: index, continuation: continuation))
                enqueued += 1
            } catch {
                enqueueError = error
                break
            }
        }
        var results = [Result<DeliveryReport, KafkaError>?](repeating: nil, count: enqueued)
        var received = 0
        if enqueued > 0 {
            for await (index, result) in stream {
                results[index] = result
                received += 1
                if received == enqueued { break }
            }
        }
        if received < enqueued { throw CancellationError() }
        if let enqueueError { throw enqueueError }
        return try results.map { try $0!.get() }
    }

    /// Hands a record to librdkafka, waiting while its local queue is full.
    private func enqueue(_ record: ProducerRecord, box: DeliveryBox) async throws {
        let deadline = ContinuousClock.now + .milliseconds(config.messageTimeoutMs)
        while true {
            let opaque = Unmanaged.passRetained(box).toOpaque()
            let error = closed.withLock { isClosed -> KafkaError? in
                if isClosed { return KafkaError(code: .shutDown, message: "producer is closed; record for \(record.topic) not sent") }
                return produce(record, opaque: opaque)
            }
            guard let error else { return }
            Unmanaged<DeliveryBox>.fromOpaque(opaque).release()
            if error.code == .queueFull && ContinuousClock.now < deadline {
                // The poll thread drains the queue as deliveries complete.
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            throw error
        }
    }

    /// rd_kafka_produceva with RD_KAFKA_MSG_F_COPY: librdkafka copies key and value, so
    /// the Swift buffers only need to live for the call.
    /// ref: rdkafka.h, rd_kafka_produceva() / RD_KAFKA_V_HEADERS (headers are owned by
    /// librdkafka only when the call succeeds).
    private func produce(_ record: ProducerRecord, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    _ = value.withUnsafeBytes { rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let key = record.key ?? []
        let error: OpaquePointer? = record.topic.withCString { topic in
            record.value.withUnsafeBytes { value in
                key.withUnsafeBytes { keyBytes in
                    var vus: [rd_kafka_vu_t] = []
                    func add(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                        var vu = rd_kafka_vu_t()
                        vu.vtype = type
                        fill(&vu)
                        vus.append(vu)
                    }
                    add(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = topic }
                    add(RD_KAFKA_VTYPE_VALUE) {
                        $0.u.mem.ptr = record.tombstone ? nil : UnsafeMutableRawPointer(mutating: value.baseAddress)
                        $0.u.mem.size = record.tombstone ? 0 : value.count
                    }
                    if record.key != nil {
                        add(RD_KAFKA_VTYPE_KEY) {
                            $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
                            $0.u.mem.size = keyBytes.count
                        }
                    }
                    if let partition = record.partition { add(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition } }
                    add(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                    add(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque }
                    if let headers { add(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = headers } }
                    return rd_kafka_produceva(handle.pointer, vus, vus.count)
                }
            }
        }
        guard let error else { return nil }
        if let headers { rd_kafka_headers_destroy(headers) }
        return KafkaError(consuming: error, "producing \(record.value.count) bytes to \(record.topic)")
    }

    /// Records enqueued or in flight, plus delivery reports not yet served.
    public var pendingCount: Int { Int(rd_kafka_outq_len(handle.pointer)) }

    /// Waits until every enqueued record has been delivered (or failed) and reported.
    /// Polls the queue length rather than calling rd_kafka_flush, which would block a
    /// cooperative thread for the whole timeout.
    public func flush(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while pendingCount > 0 {
            if ContinuousClock.now >= deadline {
                throw KafkaError(code: .timedOut, message: "flush: \(pendingCount) records still pending after \(timeout)",
                                 isRetriable: true)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Graceful shutdown: refuse new records, flush for up to `timeout`, purge what is
    /// left (those sends fail with PURGE_QUEUE/PURGE_INFLIGHT instead of hanging), stop
    /// the poll thread. Idempotent.
    public func close(timeout: Duration = .seconds(10)) async {
        let alreadyClosed = closed.withLock { isClosed -> Bool in
            defer { isClosed = true }
            return isClosed
        }
        if alreadyClosed { return }
        do {
            try await flush(timeout: timeout)
        } catch {
            // ref: rdkafka.h, rd_kafka_purge(): purged messages get delivery reports
            // with __PURGE_QUEUE / __PURGE_INFLIGHT on the next poll.
            _ = rd_kafka_purge(handle.pointer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
            try? await flush(timeout: .seconds(5))
        }
        await poller.stop()
    }
}
