import Backends
import Client
import Foundation
import Imaging
import Messaging
import SAM
import ServiceKit
import Serving
import XCTest

/// A real deployment in miniature: the embedded broker in the test process and the
/// service executables as separate processes, talking only through Kafka.
final class TestCluster {
    let broker: EmbeddedBroker
    let partitions: Int
    let logDir: URL
    var processes: [String: Process] = [:]

    static var binDir: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    init(partitions: Int = 8, brokers: Int = 1, extraTopics: [String] = []) async throws {
        broker = try EmbeddedBroker(brokers: brokers)
        self.partitions = partitions
        try await broker.createTopics(SegflowTopics.specs(partitions: partitions, replicationFactor: brokers)
                                      + extraTopics.map { TopicSpec(name: $0, partitions: 1, replicationFactor: brokers) })
        logDir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logDir, withIntermediateDirectories: true)
    }

    var client: KafkaClientConfig { broker.clientConfig(clientID: "segflow-test") }

    /// `SEGFLOW_IT_KAFKA_DEBUG=cgrp,fetch` (say) turns on librdkafka's debug contexts in
    /// every service the tests start; their logs then show the group protocol step by step.
    static var kafkaDebug: [String] {
        guard let contexts = ProcessInfo.processInfo.environment["SEGFLOW_IT_KAFKA_DEBUG"], !contexts.isEmpty else { return [] }
        return ["--property", "debug=\(contexts)", "--log-level", "debug"]
    }

    /// Starts `segflow-image-encoder` or `segflow-prompt-decoder` as a child process.
    @discardableResult
    func start(_ executable: String, name: String, extra: [String] = []) throws -> Process {
        let url = Self.binDir.appendingPathComponent(executable)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw XCTSkip("\(url.path) not built; build all products first (swift build -c release --build-tests)")
        }
        let p = Process()
        p.executableURL = url
        p.arguments = ["--brokers", broker.bootstrapServers, "--model", "litemedsam", "--log-level", "info"]
            + EmbeddedBroker.memberArguments + Self.kafkaDebug + extra
        let log = logDir.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes[name] = p
        return p
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: logDir.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    func kill9(_ name: String) {
        guard let p = processes[name], p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// The longest a service may take to exit after SIGTERM: ServiceRunner's graceful bound
    /// (30 s) plus its cancellation bound (10 s), plus 5 s for process teardown. Services
    /// normally exit in about a second; a test that hits this bound found a shutdown bug.
    static let exitBound: Duration = ServiceRunner.defaultGracefulShutdownBound + ServiceRunner.defaultCancellationBound + .seconds(5)

    /// SIGTERM to every child, then waits at most `exitBound` for all of them; a child
    /// still running is SIGKILLed and fails the calling test with its log.
    func stop(file: StaticString = #filePath, line: UInt = #line) {
        for p in processes.values where p.isRunning { p.terminate() }
        let deadline = ContinuousClock.now + Self.exitBound
        for (name, p) in processes.sorted(by: { $0.key < $1.key }) {
            while p.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
            guard p.isRunning else { continue }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("\(name) did not exit within \(Self.exitBound) of SIGTERM; killed it. Its log ends:\n\(log(name).suffix(6000))",
                    file: file, line: line)
        }
        broker.stop()
    }

    /// Reads `topic` from the beginning with a fresh group until `done` says so or time runs out.
    func collect(topic: String, timeout: Duration, done: @escaping ([ConsumedMessage]) -> Bool) async throws -> [ConsumedMessage] {
        let consumer = try Consumer(config: ConsumerConfig(client: client, groupID: "test-\(UUID().uuidString)"), topics: [topic])
        let deadline = ContinuousClock.now + timeout
        let timer = Task { try? await Task.sleep(until: deadline); if !Task.isCancelled { await consumer.shutdown() } }
        defer { timer.cancel() }
        var seen: [ConsumedMessage] = []
        for try await m in consumer.messages {
            seen.append(m)
            if done(seen) { break }
        }
        await consumer.shutdown()
        return seen
    }

    func send(_ records: [ProducerRecord]) async throws {
        let producer = try Producer(config: ProducerConfig(client: client))
        _ = try await producer.send(records)
        await producer.close()
    }
}

/// Signals `process` (SIGTERM by default) and waits at most `TestCluster.exitBound`; a
/// process still running then is SIGKILLed and fails the calling test.
func stopBounded(_ process: Process, name: String, signal: Int32 = SIGTERM, file: StaticString = #filePath, line: UInt = #line) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, signal)
    let deadline = ContinuousClock.now + TestCluster.exitBound
    while process.isRunning && ContinuousClock.now < deadline { usleep(50_000) }
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    XCTFail("\(name) did not exit within \(TestCluster.exitBound) of signal \(signal); killed it", file: file, line: line)
}

/// The first line `process` writes to `pipe`, waiting at most `timeout`; a process that
/// prints nothing by then is SIGKILLed (and "" returned, which the caller's checks fail on).
func firstLine(of pipe: Pipe, from process: Process, timeout: TimeInterval = 60) -> String {
    let received = Locked("")
    pipe.fileHandleForReading.readabilityHandler = { handle in
        let data = handle.availableData
        received.withLock { $0 += String(decoding: data, as: UTF8.self) }
        if data.isEmpty { handle.readabilityHandler = nil }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let line = received.withLock { text in text.firstIndex(of: "\n").map { String(text[..<$0]) } }
        if let line { pipe.fileHandleForReading.readabilityHandler = nil; return line.trimmingCharacters(in: .whitespaces) }
        if !process.isRunning { break }
        Thread.sleep(forTimeInterval: 0.05)
    }
    pipe.fileHandleForReading.readabilityHandler = nil
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    return ""
}

/// A value behind a lock, for test helpers that collect output on another thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

enum Fixtures {
    static var dir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SAMTests/Fixtures")
    }

    static func png(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(name).png"))) }

    /// Where Deploy/setup.sh caches what it fetches: $SEGFLOW_HOME, else $XDG_CACHE_HOME/segflow, else ~/.cache/segflow.
    static var segflowHome: URL {
        let env = ProcessInfo.processInfo.environment
        return env["SEGFLOW_HOME"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: env["XDG_CACHE_HOME"] ?? (env["HOME"] ?? "/root") + "/.cache").appendingPathComponent("segflow")
    }

    static var liteMedSAM: URL { segflowHome.appendingPathComponent("weights/lite_medsam.pth") }

    static func requireCheckpoint() throws {
        guard FileManager.default.fileExists(atPath: liteMedSAM.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("LiteMedSAM checkpoint missing at \(liteMedSAM.path)") }
            throw XCTSkip("LiteMedSAM checkpoint not cached; run Deploy/setup.sh")
        }
    }
}

func record(_ topic: String, key: String, _ value: [UInt8], requestID: String) -> ProducerRecord {
    ProducerRecord(topic: topic, key: key, value: value, headers: [.requestID(requestID)])
}

func results(_ messages: [ConsumedMessage]) -> [MaskResult] { messages.compactMap { try? MaskResult(bytes: $0.value) } }

/// The in-process answer (RLE masks) for an image and a wire prompt, from an embedding
/// rounded through f16 exactly as the wire carries it (or not, for f32 embeddings).
func inProcessMasks(_ sam: Sam, image: RGBImage, prompt: PromptRequest, f16: Bool) throws -> [MaskResult.Mask] {
    var emb = try sam.embed(rgb: image.pixels, width: image.width, height: image.height)
    if f16 { emb.embedding.data = emb.embedding.data.map { Float(Float16($0)) } }
    let sp = try Conversions.prompts(prompt, maskSide: 256)
    return try Conversions.masks(try sam.predict(emb, sp), width: image.width, height: image.height, format: .rle, lowResLogits: false)
}

/// The COCO counts strings of wire masks ("" for a PNG mask).
func rleCounts(_ masks: [MaskResult.Mask]) -> [String] { masks.map { if case let .rle(c, _, _) = $0.encoding { c } else { "" } } }

/// A 60-byte PNG that declares 100000×100000 pixels: a decompression bomb's header.
func pngBombHeader() -> [UInt8] {
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be(UInt32(data.count)) + body + be(crc32(body))
    }
    let ihdr = be(100_000) + be(100_000) + [8, 2, 0, 0, 0]
    return [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + chunk("IHDR", ihdr) + chunk("IDAT", [0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
}

/// Sends one in-context query per case and checks each fails with its stable code (the
/// service must answer every one and keep running); returns the error messages by case name.
func expectInContextErrors(_ sc: SegflowClient, query: [UInt8], model: String,
                           _ cases: [(name: String, request: InContextRequest, code: ErrorCode)],
                           file: StaticString = #filePath, line: UInt = #line) async throws -> [String: String] {
    var messages: [String: String] = [:]
    for (name, request, code) in cases {
        do {
            _ = try await sc.segmentInContext(image: .png(query), imageID: "q-bad", model: model, inContext: request,
                                              timeout: .seconds(60))
            XCTFail("\(name) should fail with \(code)", file: file, line: line)
        } catch let e as ServingError {
            XCTAssertEqual(e.code, code, "\(name): \(e)", file: file, line: line)
            messages[name] = e.message
        }
    }
    return messages
}
