import CRdKafka
import Logging

/// librdkafka's log lines, through swift-log: every client installs this callback, so
/// nothing is written raw to stderr, levels follow the process's `--log-level`, and the
/// disconnects every client sees when a broker (or the embedded broker) goes away at the
/// end of a run are debug, not errors.
public enum KafkaLog {
    /// The logger librdkafka's lines go to (label "librdkafka"; metadata: client name,
    /// facility). Uses whatever LoggingSystem the process bootstrapped.
    public static var logger: Logger {
        var l = Logger(label: "librdkafka")
        l.logLevel = threshold.withLock { $0 }
        return l
    }
    private static let threshold = Locked<Logger.Level>(.info)

    /// The lowest level of librdkafka's lines that reaches the log (the process's
    /// `--log-level`; its `debug` property's lines are level 7 = `.debug`).
    public static func setLevel(_ level: Logger.Level) { threshold.withLock { $0 = level } }

    /// syslog level (librdkafka's 0 emerg … 7 debug) → swift-log level.
    public static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5, 6: .info
        default: .debug
        }
    }

    /// Lines that report a broker connection going away or failing: expected whenever a
    /// broker stops (shutdown of `segflow up`, the embedded broker after a CLI run) and
    /// retried by librdkafka on its own; logged at debug. A lasting outage still shows,
    /// as request timeouts and delivery failures the services log themselves.
    public static func isDisconnect(facility: String, message: String) -> Bool {
        if facility == "FAIL" || facility == "BROKERFAIL" { return true }
        return message.contains("brokers are down") || message.contains("Disconnected") || message.contains("Connection refused")
    }

    static func forward(level syslog: Int32, facility: String, message: String, client: String) {
        if StartupTrace.enabled && syslog >= 7 { StartupTrace.mark("librdkafka \(client) \(facility): \(message)"); return }
        let level = isDisconnect(facility: facility, message: message) ? .debug : level(syslog: syslog)
        logger.log(level: level, "\(message)", metadata: ["client": "\(client)", "facility": "\(facility)"])
    }
}

/// The C callback (librdkafka calls it on its own threads; swift-log handlers are thread-safe).
let kafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, fac, buf in
    let client = rk.map { String(cString: rd_kafka_name($0)) } ?? ""
    KafkaLog.forward(level: level, facility: fac.map { String(cString: $0) } ?? "",
                     message: buf.map { String(cString: $0) } ?? "", client: client)
}
