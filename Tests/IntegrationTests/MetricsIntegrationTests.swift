import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Messaging
import XCTest

/// Operations (issue 13): a running decoder serves Prometheus metrics, /healthz and
/// /readyz on `--metrics-port`, and a request moves its counters.
final class MetricsIntegrationTests: XCTestCase {
    /// GET http://127.0.0.1:port/path with a 5 s bound.
    func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 5
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? -1, String(decoding: data, as: UTF8.self))
    }

    /// The port a service started with `--metrics-port 0` logged, within `timeout`.
    func metricsPort(_ cluster: TestCluster, _ name: String, timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let log = cluster.log(name)
            if let range = log.range(of: #"metrics\.port=\d+"#, options: .regularExpression),
               let port = Int(log[range].dropFirst("metrics.port=".count)) {
                return port
            }
            if cluster.processes[name]?.isRunning == false { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("\(name) logged no metrics port within \(timeout); log: \(cluster.log(name).suffix(2000))")
        throw CancellationError()
    }

    /// Polls `path` until it answers `status`, within `timeout`; returns the last answer.
    func poll(_ port: Int, _ path: String, until status: Int, timeout: Duration) async throws -> (status: Int, body: String) {
        let deadline = ContinuousClock.now + timeout
        var last = (status: -1, body: "")
        while ContinuousClock.now < deadline {
            last = try await get(port, path)
            if last.status == status { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        return last
    }

    func testDecoderServesMetricsAndARequestMovesTheCounters() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster()
        defer { cluster.stopWithin(.seconds(45)) }
        try cluster.start("segflow-image-encoder", name: "encoder", extra: ["--metrics-port", "0"])
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--metrics-port", "0"])
        let port = try await metricsPort(cluster, "decoder")
        let encoderPort = try await metricsPort(cluster, "encoder")

        let health = try await get(port, "/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.body, "ok\n")
        // Ready once the model is loaded and the consumer holds partitions (the mock
        // broker's first group join takes ~3 s).
        let ready = try await poll(port, "/readyz", until: 200, timeout: .seconds(60))
        XCTAssertEqual(ready.status, 200, "decoder never ready: \(ready.body); log: \(cluster.log("decoder").suffix(2000))")
        XCTAssertTrue(ready.body.hasPrefix("ready\n") && ready.body.contains("\nok model: loaded")
                      && ready.body.contains("\nok consumer group: 16 partitions assigned"), ready.body)

        let before = PrometheusText(try await get(port, "/metrics").body)
        let decoder = ["service": "prompt-decoder"]
        XCTAssertEqual(before.value(MetricNames.requests, decoder), 0, "the counter exists from the start")
        // 8 partitions of each of the two topics the decoder joins.
        XCTAssertEqual(before.value("segflow_assigned_partitions", decoder), 16)

        let image = ImageRequest(requestID: "m-img", imageID: "m", image: .png(try Fixtures.png("chelsea_crop")))
        let prompt = PromptRequest(requestID: "m-p", imageID: "m", boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 90)])
        try await cluster.send([record(SegflowTopics.images, key: "m", image.encode(), requestID: "m-img"),
                                record(SegflowTopics.prompts, key: "m", prompt.encode(), requestID: "m-p"),
                                record(SegflowTopics.prompts, key: "m", [0x12, 0x80], requestID: "m-bad")])
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: ["m-p", "m-bad"])
        }
        let answers = Dictionary(results(got).map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertNil(answers["m-p"]?.error, "\(answers["m-p"]?.error?.message ?? "no answer")")
        XCTAssertEqual(answers["m-bad"]?.error?.code, .invalidProtobuf)

        let after = PrometheusText(try await get(port, "/metrics").body)
        XCTAssertEqual(after.value(MetricNames.requests, decoder), 2, "two prompts taken in")
        XCTAssertEqual(after.value("segflow_errors_total", ["service": "prompt-decoder", "code": "INVALID_PROTOBUF"]), 1)
        XCTAssertEqual(after.value("segflow_stage_duration_seconds_count", ["service": "prompt-decoder", "stage": "decode"]), 1)
        XCTAssertEqual(after.value("segflow_stage_duration_seconds_count", ["service": "prompt-decoder", "stage": "total"]), 1)
        XCTAssertGreaterThan(after.value("segflow_stage_duration_seconds_sum", ["service": "prompt-decoder", "stage": "decode"]) ?? 0, 0)
        let lookups = (after.value("segflow_cache_hits_total", ["cache": "embeddings"]) ?? 0)
            + (after.value("segflow_cache_misses_total", ["cache": "embeddings"]) ?? 0)
        XCTAssertEqual(lookups, 1, "one valid prompt looked its embedding up once")
        XCTAssertEqual(after.value("segflow_embeddings_cached_total", decoder), 1)
        XCTAssertEqual(after.value("segflow_embeddings_restored_total", decoder), 0, "encoded while the decoder ran")
        XCTAssertGreaterThan(after.value("segflow_cache_bytes", ["cache": "embeddings"]) ?? 0, 1_000_000, "one LiteMedSAM embedding")
        XCTAssertEqual(after.value("segflow_parked_prompts", decoder), 0)
        // Lag is reported per assigned partition once the consumer has read from it; the
        // monitor refreshes it every second.
        let lagDeadline = ContinuousClock.now + .seconds(10)
        var lag = after
        func caughtUp(_ m: PrometheusText) -> Bool {
            let s = m.series("segflow_consumer_lag", ["topic": SegflowTopics.prompts])
            return !s.isEmpty && s.allSatisfy { $0.value == 0 }
        }
        while !caughtUp(lag), ContinuousClock.now < lagDeadline {
            try await Task.sleep(for: .milliseconds(500))
            lag = PrometheusText(try await get(port, "/metrics").body)
        }
        let promptLag = lag.series("segflow_consumer_lag", ["topic": SegflowTopics.prompts])
        XCTAssertFalse(promptLag.isEmpty, "lag of the prompt partition read: \(lag.text)")
        XCTAssertTrue(promptLag.allSatisfy { $0.labels["partition"] != nil && $0.value == 0 }, "\(promptLag)")

        // The encoder's side of the same request: one image taken in, one ViT run.
        let encoder = PrometheusText(try await get(encoderPort, "/metrics").body)
        XCTAssertEqual(encoder.value(MetricNames.requests, ["service": "image-encoder"]), 1)
        XCTAssertEqual(encoder.value("segflow_stage_duration_seconds_count", ["service": "image-encoder", "stage": "encode"]), 1)
        XCTAssertEqual(encoder.value("segflow_stage_duration_seconds_count", ["service": "image-encoder", "stage": "publish"]), 1)
        XCTAssertNil(encoder.value("segflow_errors_total", ["service": "image-encoder"]), "no error: \(encoder.text)")

        // SIGTERM stops the endpoint with the rest of the process, within the shutdown bound.
        let decoderProcess = try XCTUnwrap(cluster.processes["decoder"])
        decoderProcess.terminate()
        XCTAssertTrue(waitForExit(decoderProcess, within: .seconds(45)), "decoder did not exit after SIGTERM")
        XCTAssertEqual(decoderProcess.terminationStatus, 0, cluster.log("decoder").suffix(2000).description)
        do {
            _ = try await get(port, "/healthz")
            XCTFail("the endpoint is gone with the process")
        } catch {}

        // A decoder started now rebuilds its cache from the embeddings topic: the embedding
        // encoded before it started counts as restored, not re-encoded.
        try cluster.start("segflow-prompt-decoder", name: "decoder-2", extra: ["--metrics-port", "0"])
        let port2 = try await metricsPort(cluster, "decoder-2")
        let restoreDeadline = ContinuousClock.now + .seconds(60)
        var restarted = PrometheusText("")
        while ContinuousClock.now < restoreDeadline {
            restarted = PrometheusText(try await get(port2, "/metrics").body)
            if restarted.value("segflow_embeddings_restored_total", decoder) == 1 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertEqual(restarted.value("segflow_embeddings_restored_total", decoder), 1, restarted.text)
        XCTAssertEqual(restarted.value("segflow_embeddings_cached_total", decoder), 1)
        XCTAssertEqual(restarted.value(MetricNames.requests, decoder), 0, "answered prompts were committed, not redelivered")
        let encoderAfter = PrometheusText(try await get(encoderPort, "/metrics").body)
        XCTAssertEqual(encoderAfter.value(MetricNames.requests, ["service": "image-encoder"]), 1, "nothing re-encoded")
    }

    func testAMetricsPortInUseFailsAtOnceNamingThePort() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 1)
        defer { cluster.stopWithin(.seconds(45)) }
        try cluster.start("segflow-prompt-decoder", name: "first", extra: ["--metrics-port", "0"])
        let port = try await metricsPort(cluster, "first")
        let second = try cluster.start("segflow-prompt-decoder", name: "second", extra: ["--metrics-port", "\(port)"])
        XCTAssertTrue(waitForExit(second, within: .seconds(30)), "a decoder whose metrics port is taken must exit")
        XCTAssertNotEqual(second.terminationStatus, 0)
        let log = cluster.log("second")
        XCTAssertTrue(log.contains("--metrics-port \(port): cannot listen on 0.0.0.0:\(port)"), log)
        XCTAssertTrue(log.lowercased().contains("in use"), log)
        XCTAssertFalse(log.contains("prompt-decoder ready"), "it fails before loading the model: \(log)")
    }

    /// The text-encoder's phrase cache and stages (tiny random CLIPSeg checkpoint).
    func testTextEncoderCountsPhraseCacheHitsAndErrors() async throws {
        let cluster = try await TestCluster(partitions: 2)
        defer { cluster.stopWithin(.seconds(45)) }
        let ckpt = cluster.logDir.appendingPathComponent("clipseg-tiny.safetensors")
        try TextPromptIntegrationTests.makeCheckpoint(at: ckpt)
        try cluster.start("segflow-text-encoder", name: "text",
                          extra: ["--model", "clipseg", "--checkpoint", ckpt.path, "--clipseg-config", "tiny-test", "--metrics-port", "0"])
        let port = try await metricsPort(cluster, "text")
        func text(_ id: String, _ t: String) -> ProducerRecord {
            var p = PromptRequest(requestID: id, imageID: "img")
            p.text = t
            return record(SegflowTopics.text, key: "img", p.encode(), requestID: id)
        }
        // The same phrase twice (a miss, then a hit) and a blank one (a miss, then INVALID_PROMPT).
        try await cluster.send([text("a", "a photo of a cat"), text("b", "a photo of a cat"), text("c", "   ")])
        let service = ["service": "text-encoder"]
        let deadline = ContinuousClock.now + .seconds(60)
        var m = PrometheusText("")
        while ContinuousClock.now < deadline {
            m = PrometheusText(try await get(port, "/metrics").body)
            if m.value("segflow_stage_duration_seconds_count", ["service": "text-encoder", "stage": "total"]) == 3 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertEqual(m.value(MetricNames.requests, service), 3, m.text)
        XCTAssertEqual(m.value("segflow_cache_hits_total", ["service": "text-encoder", "cache": "phrases"]), 1)
        XCTAssertEqual(m.value("segflow_cache_misses_total", ["service": "text-encoder", "cache": "phrases"]), 2)
        XCTAssertEqual(m.value("segflow_cache_entries", ["service": "text-encoder", "cache": "phrases"]), 1)
        XCTAssertGreaterThan(m.value("segflow_cache_bytes", ["service": "text-encoder", "cache": "phrases"]) ?? 0, 0)
        XCTAssertEqual(m.value("segflow_errors_total", ["service": "text-encoder", "code": "INVALID_PROMPT"]), 1)
        XCTAssertEqual(m.value("segflow_stage_duration_seconds_count", ["service": "text-encoder", "stage": "encode_text"]), 1,
                       "the hit skips the text tower")
        XCTAssertEqual(m.value("segflow_stage_duration_seconds_count", ["service": "text-encoder", "stage": "publish"]), 2)
    }

    /// `segflow up --metrics-port 0`: every child serves its own endpoint and becomes ready.
    func testSegflowUpGivesEachServiceAMetricsEndpoint() async throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-up-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let logURL = dir.appendingPathComponent("up.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        let up = Process()
        up.executableURL = TestCluster.binDir.appendingPathComponent("segflow")
        up.arguments = ["up", "--encoders", "1", "--decoders", "2", "--metrics-port", "0"]
        up.standardOutput = log
        up.standardError = log   // the children inherit it: their "metrics.port=" lines land here
        try up.run()
        defer {
            if up.isRunning { up.interrupt() }
            XCTAssertTrue(waitForExit(up, within: .seconds(60)), "segflow up did not stop after SIGINT")
        }
        func text() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
        let deadline = ContinuousClock.now + .seconds(60)
        var ports: [Int] = []
        while ContinuousClock.now < deadline, ports.count < 3, up.isRunning {
            ports = text().components(separatedBy: "metrics.port=").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(Set(ports).count, 3, "one encoder and two decoders, each on its own port: \(text())")
        XCTAssertTrue(text().contains("segflow up: metrics image-encoder :(logged), prompt-decoder :(logged), prompt-decoder :(logged)"), text())
        for port in ports {
            let ready = try await poll(port, "/readyz", until: 200, timeout: .seconds(60))
            XCTAssertEqual(ready.status, 200, "port \(port): \(ready.body)")
        }
        // Two decoders split the partitions of both topics (4 each by default).
        // A rebalance still in flight (the second decoder's join) can leave a member with
        // nothing for a moment: read again until both topics are split, at most 60 s.
        var assigned: [String: Double] = [:]
        let settled = ContinuousClock.now + .seconds(60)
        repeat {
            assigned = [:]
            for port in ports {
                let m = PrometheusText(try await get(port, "/metrics").body)
                for s in m.series("segflow_assigned_partitions") { assigned[s.labels["service"] ?? "", default: 0] += s.value }
            }
            if assigned["prompt-decoder"] == 8 && assigned["image-encoder"] == 4 { break }
            try await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < settled
        XCTAssertEqual(assigned["image-encoder"], 4)
        XCTAssertEqual(assigned["prompt-decoder"], 8, "\(assigned)")
    }

    func testAnOutOfRangeMetricsPortIsAUsageError() async throws {
        let cluster = try await TestCluster(partitions: 1)
        defer { cluster.stopWithin(.seconds(45)) }
        let p = try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--metrics-port", "70000"])
        XCTAssertTrue(waitForExit(p, within: .seconds(30)))
        XCTAssertEqual(p.terminationStatus, 64, "a usage error (EX_USAGE)")
        XCTAssertTrue(cluster.log("decoder").contains("--metrics-port must be a TCP port, 0…65535 (0 picks a free one), got 70000"),
                      cluster.log("decoder"))
    }
}

/// Names the test reads that the services define (Serving's MetricName).
enum MetricNames {
    static let requests = "segflow_requests_total"
}

/// Waits for `process` to exit; SIGKILLs it (and answers false) when it outlives `bound`.
func waitForExit(_ process: Process, within bound: Duration) -> Bool {
    let deadline = ContinuousClock.now + bound
    while process.isRunning, ContinuousClock.now < deadline { usleep(50_000) }
    guard process.isRunning else { return true }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return false
}

extension TestCluster {
    /// SIGTERM every process, SIGKILL what has not exited within `bound`, stop the broker.
    func stopWithin(_ bound: Duration) {
        for p in processes.values where p.isRunning { p.terminate() }
        for p in processes.values { _ = waitForExit(p, within: bound) }
        broker.stop()
    }
}

/// The Prometheus text exposition, parsed just enough to read series values.
struct PrometheusText {
    struct Series { var name: String; var labels: [String: String]; var value: Double }
    let text: String
    let all: [Series]

    init(_ text: String) {
        self.text = text
        all = text.split(separator: "\n").compactMap { line -> Series? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let head = line[..<space]
            guard let brace = head.firstIndex(of: "{") else { return Series(name: String(head), labels: [:], value: value) }
            var labels: [String: String] = [:]
            let body = head[head.index(after: brace)..<(head.lastIndex(of: "}") ?? head.endIndex)]
            // Label values here carry no escaped quotes or commas (names, codes, topics).
            for pair in body.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { labels[String(kv[0])] = String(kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))) }
            }
            return Series(name: String(head[..<brace]), labels: labels, value: value)
        }
    }

    /// Series named `name` whose labels include `labels`.
    func series(_ name: String, _ labels: [String: String] = [:]) -> [Series] {
        all.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }
    }

    /// The sum over matching series; nil when none matches.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = series(name, labels)
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }
}
