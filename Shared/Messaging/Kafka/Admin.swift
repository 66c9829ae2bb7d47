import CRdKafka
import Foundation

/// Something that can create topics: `Admin` on a real cluster, `EmbeddedBroker` for
/// librdkafka's mock cluster (which does not implement the CreateTopics API).
public protocol TopicProvisioner: Sendable {
    /// Creates the topics (existing ones are accepted) and returns once clients can see them.
    func createTopics(_ specs: [TopicSpec], timeout: Duration) async throws
}

public struct TopicMetadata: Sendable, Hashable {
    public var name: String
    public var partitionCount: Int
}

/// Cluster administration through librdkafka's Admin API.
public final class Admin: TopicProvisioner {
    private let handle: RDKafkaHandle

    public init(config: KafkaClientConfig) throws {
        var properties = config.render()
        properties.merge(config.nonConsumerProperties) { $1 }
        handle = try RDKafkaHandle(type: RD_KAFKA_PRODUCER, properties: properties)
    }

    /// CreateTopics with partitions, replication and per-topic config, then waits until
    /// metadata shows every topic. A topic that already exists is fine if its partition
    /// count matches; a different count is an error, because embeddings and prompts must
    /// be co-partitioned.
    public func createTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(30)) async throws {
        if specs.isEmpty { return }
        let deadline = ContinuousClock.now + timeout
        let timeoutMs = Int32(clamping: milliseconds(timeout))
        let rk = handle.pointer
        var errstr = [CChar](repeating: 0, count: 512)

        var newTopics: [OpaquePointer?] = []
        defer { newTopics.withUnsafeMutableBufferPointer { rd_kafka_NewTopic_destroy_array($0.baseAddress, $0.count) } }
        for spec in specs {
            guard let topic = rd_kafka_NewTopic_new(spec.name, Int32(spec.partitions), Int32(spec.replicationFactor),
                                                    &errstr, errstr.count) else {
                throw KafkaError(code: .invalidArgument, message: "topic \(spec.name): \(cString(errstr))")
            }
            newTopics.append(topic)
            for (name, value) in spec.config.sorted(by: { $0.key < $1.key }) {
                let err = rd_kafka_NewTopic_set_config(topic, name, value)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "topic \(spec.name) config \(name)=\(value)") }
            }
        }

        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errstr, errstr.count)
        // Broker-side wait until the topics exist on the controller.
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errstr, errstr.count)

        guard let queue = rd_kafka_queue_new(rk) else { throw KafkaError(code: .invalidArgument, message: "rd_kafka_queue_new") }
        defer { rd_kafka_queue_destroy(queue) }
        newTopics.withUnsafeMutableBufferPointer { rd_kafka_CreateTopics(rk, $0.baseAddress, $0.count, options, queue) }

        // Non-blocking polls with sleeps: the result arrives on our private queue.
        var event: OpaquePointer?
        while true {
            event = rd_kafka_queue_poll(queue, 0)
            if event != nil { break }
            if ContinuousClock.now >= deadline {
                throw KafkaError(code: .timedOut, message: "CreateTopics \(specs.map(\.name)) got no answer within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        defer { rd_kafka_event_destroy(event) }
        let eventErr = rd_kafka_event_error(event)
        if eventErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            var error = KafkaError(eventErr, "CreateTopics \(specs.map(\.name))")
            if let text = rd_kafka_event_error_string(event) { error.message += " (\(String(cString: text)))" }
            if eventErr == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE || eventErr == RD_KAFKA_RESP_ERR__TIMED_OUT {
                // The mock cluster neither implements CreateTopics nor reports a
                // controller, so librdkafka waits for one until the timeout.
                // ref: rdkafka_mock.h, rd_kafka_mock_topic_create() remark
                error.message += "; if this is librdkafka's mock cluster (EmbeddedBroker), it has no CreateTopics API: use EmbeddedBroker.createTopics"
            }
            throw error
        }
        var failures: [String] = []
        if let result = rd_kafka_event_CreateTopics_result(event) {
            var count = 0
            if let results = rd_kafka_CreateTopics_result_topics(result, &count) {
                for index in 0..<count {
                    let entry = results[index]
                    let err = rd_kafka_topic_result_error(entry)
                    if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
                    let name = String(cString: rd_kafka_topic_result_name(entry))
                    let text = rd_kafka_topic_result_error_string(entry).map { String(cString: $0) } ?? ""
                    failures.append("\(name): \(String(cString: rd_kafka_err2name(err))) \(text)")
                }
            }
        }
        if !failures.isEmpty {
            throw KafkaError(code: .invalidArgument, message: "CreateTopics failed for " + failures.joined(separator: "; "))
        }
        let remaining = deadline - ContinuousClock.now
        let counts = try await waitForTopics(specs.map(\.name), timeout: max(remaining, .seconds(1)))
        try checkPartitionCounts(specs, counts)
    }

    /// All topics and partition counts the cluster reports (no auto-creation is triggered:
    /// this asks for all topics rather than naming one).
    public func topics(timeout: Duration = .seconds(10)) async throws -> [String: TopicMetadata] {
        let handle = self.handle
        let timeoutMs = Int32(clamping: milliseconds(timeout))
        return try await runOnDedicatedThread(name: "segflow.admin.metadata") {
            var metadata: UnsafePointer<rd_kafka_metadata_t>?
            let err = rd_kafka_metadata(handle.pointer, 1, nil, &metadata, timeoutMs)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, "metadata") }
            guard let metadata else { return [:] }
            defer { rd_kafka_metadata_destroy(metadata) }
            var topics: [String: TopicMetadata] = [:]
            for index in 0..<Int(metadata.pointee.topic_cnt) {
                let topic = metadata.pointee.topics[index]
                if topic.err != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
                let name = String(cString: topic.topic)
                topics[name] = TopicMetadata(name: name, partitionCount: Int(topic.partition_cnt))
            }
            return topics
        }
    }

    /// Polls metadata until every named topic exists; returns their partition counts.
    public func waitForTopics(_ names: [String], timeout: Duration = .seconds(30)) async throws -> [String: Int] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let known = try await topics(timeout: .seconds(5))
            let missing = names.filter { (known[$0]?.partitionCount ?? 0) == 0 }
            if missing.isEmpty {
                return Dictionary(uniqueKeysWithValues: names.map { ($0, known[$0]!.partitionCount) })
            }
            if ContinuousClock.now >= deadline {
                throw KafkaError(code: .timedOut, message: "topics \(missing) not visible after \(timeout)", isRetriable: true)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

func checkPartitionCounts(_ specs: [TopicSpec], _ counts: [String: Int]) throws {
    for spec in specs where counts[spec.name] != spec.partitions {
        throw KafkaError(code: .invalidArgument,
                         message: "topic \(spec.name) has \(counts[spec.name].map(String.init) ?? "no") partitions, wanted \(spec.partitions)")
    }
}
