import CRdKafka
import Foundation

/// Owns one `rd_kafka_t`.
///
/// `@unchecked Sendable` because the only stored state is the C handle, and librdkafka
/// documents its handle API as thread-safe ("librdkafka is thread-safe", INTRODUCTION.md
/// §Threads and callbacks); the few calls that are not (closing, destroying) are made
/// by exactly one owner, as the types using this class document. Same approach as
/// swift-kafka-client's RDKafkaClient.
final class RDKafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Set by the consumer's owner once rd_kafka_consumer_close() has returned (written
    /// on the poll thread before the owner lets go of the handle, read only in deinit).
    var consumerClosed = false

    /// - Parameters:
    ///   - configure: called with the `rd_kafka_conf_t` after the properties are set,
    ///     to install callbacks.
    init(type: rd_kafka_type_t, properties: [String: String],
         configure: (OpaquePointer) -> Void = { _ in }) throws {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .invalidArgument, message: "rd_kafka_conf_new failed")
        }
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, name, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: .invalidArgument,
                                 message: "librdkafka property '\(name)' = '\(value)': \(cString(errstr))")
            }
        }
        // Log lines through swift-log (KafkaLog), never raw to stderr.
        rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
        configure(conf)
        // rd_kafka_new takes ownership of conf only on success.
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: .invalidArgument, message: "rd_kafka_new: \(cString(errstr))")
        }
        pointer = handle
    }

    /// rd_kafka_destroy waits for librdkafka's broker threads, which can take as long as
    /// the broker takes to answer (seen: indefinitely with a stalled coordinator). Whoever
    /// drops the last reference — often a Swift concurrency thread — must not wait for
    /// that: the destroy runs on a thread of its own. Producers are flushed by
    /// `Producer.close` and consumers closed by `Consumer.shutdown` before this point.
    deinit {
        // rd_kafka_destroy() closes a consumer again; on a consumer whose close already
        // returned, that second close was seen to wait forever (1 in ~15 embedded-stack
        // shutdowns, in the prompt-pairs follower). ref: rdkafka.h, rd_kafka_destroy_flags()
        let handle = UnsafeSendableHandle(pointer: pointer)
        let noClose = consumerClosed
        let thread = Thread {
            if noClose { rd_kafka_destroy_flags(handle.pointer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE) } else { rd_kafka_destroy(handle.pointer) }
        }
        thread.name = "segflow.rdkafka.destroy"
        thread.start()
    }

    /// The instance's fatal error, if one was raised (e.g. idempotence violated).
    func fatalError() -> KafkaError? {
        var errstr = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(pointer, &errstr, errstr.count)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { return nil }
        return KafkaError(code: KafkaError.Code(err), message: "fatal: \(cString(errstr))", isFatal: true)
    }
}

/// An rd_kafka_t handed to the thread that destroys it (nothing else uses it any more).
struct UnsafeSendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A value behind a lock.
///
/// `@unchecked Sendable` because every access goes through `withLock`; this is what
/// `Synchronization.Mutex` provides, which is not available on the macOS 13 deployment
/// target declared in Package.swift.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Runs a blocking librdkafka call (metadata, mock cluster start) on its own thread so
/// it never occupies one of the few cooperative-pool threads (2 on the build machines).
func runOnDedicatedThread<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = name
        thread.start()
    }
}

func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    let ms = seconds.multipliedReportingOverflow(by: 1000)
    if ms.overflow { return seconds < 0 ? Int.min : Int.max }
    return Int(ms.partialValue + attoseconds / 1_000_000_000_000_000)
}

/// Text from a C error buffer filled by librdkafka (NUL-terminated within the array).
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
