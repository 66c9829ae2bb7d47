import CRdKafka

/// An error reported by librdkafka or by the Kafka layer around it.
///
/// `code` is librdkafka's `rd_kafka_resp_err_t` (negative values are client-side,
/// positive ones are broker error codes); `isFatal` means the client instance is unusable
/// and must be recreated, `isRetriable` that trying again may succeed.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ err: rd_kafka_resp_err_t) { self.rawValue = err.rawValue }

        public static let messageSizeTooLarge = Code(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
        public static let queueFull = Code(RD_KAFKA_RESP_ERR__QUEUE_FULL)
        public static let messageTimedOut = Code(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
        public static let purged = Code(RD_KAFKA_RESP_ERR__PURGE_QUEUE)
        public static let purgedInFlight = Code(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
        public static let timedOut = Code(RD_KAFKA_RESP_ERR__TIMED_OUT)
        public static let topicAlreadyExists = Code(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        public static let unknownTopicOrPartition = Code(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        public static let unsupportedFeature = Code(RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE)
        public static let invalidArgument = Code(RD_KAFKA_RESP_ERR__INVALID_ARG)
        /// Broker-side errors the fault drills inject (EmbeddedBroker.injectErrors).
        public static let notLeaderForPartition = Code(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
        public static let requestTimedOut = Code(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
        public static let notCoordinator = Code(RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
        public static let coordinatorNotAvailable = Code(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
        public static let rebalanceInProgress = Code(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        public static let brokerNotAvailable = Code(RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE)
        /// Looks a broker error up by librdkafka's symbolic name ("NOT_LEADER_FOR_PARTITION").
        public static func named(_ name: String) -> Code? {
            var descs: UnsafePointer<rd_kafka_err_desc>?
            var count = 0
            rd_kafka_get_err_descs(&descs, &count)
            guard let descs else { return nil }
            for i in 0..<count where descs[i].name != nil && String(cString: descs[i].name) == name {
                return Code(descs[i].code)
            }
            return nil
        }
        /// Not a librdkafka code: the operation was refused because the client is shutting down.
        public static let shutDown = Code(rawValue: -20_000)

        /// librdkafka's symbolic name, e.g. "MSG_SIZE_TOO_LARGE".
        public var description: String {
            if self == .shutDown { return "SHUT_DOWN" }
            return String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue)))
        }
    }

    public var code: Code
    public var message: String
    public var isFatal: Bool
    public var isRetriable: Bool
    public var file: String
    public var line: Int

    public init(code: Code, message: String, isFatal: Bool = false, isRetriable: Bool = false,
                file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.isFatal = isFatal
        self.isRetriable = isRetriable
        self.file = file
        self.line = line
    }

    /// From a plain response code; `context` says what we were doing.
    init(_ err: rd_kafka_resp_err_t, _ context: String, file: String = #fileID, line: Int = #line) {
        let text = String(cString: rd_kafka_err2str(err))
        self.init(code: Code(err), message: "\(context): \(text)", file: file, line: line)
    }

    /// From an `rd_kafka_error_t`, which carries fatal/retriable flags; destroys it.
    init(consuming error: OpaquePointer, _ context: String, file: String = #fileID, line: Int = #line) {
        let text = String(cString: rd_kafka_error_string(error))
        self.init(code: Code(rd_kafka_error_code(error)), message: "\(context): \(text)",
                  isFatal: rd_kafka_error_is_fatal(error) != 0, isRetriable: rd_kafka_error_is_retriable(error) != 0,
                  file: file, line: line)
        rd_kafka_error_destroy(error)
    }

    public var description: String { "KafkaError.\(code) (\(code.rawValue)): \(message) [\(file):\(line)]" }
}
