import Foundation
import Messaging
import XCTest

/// `segflow up` supervises its children; `segflow broker --faults` takes fault commands.
final class SupervisionTests: XCTestCase {
    /// A process started with stdin/stderr pipes; stderr is collected as it arrives.
    final class Child: @unchecked Sendable {
        let process = Process()
        let input = Pipe()
        private let lock = NSLock()
        private var errText = ""
        private(set) var firstLine = ""

        init(_ args: [String]) throws {
            process.executableURL = TestCluster.binDir.appendingPathComponent("segflow")
            process.arguments = args
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = input
            err.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard let self, !data.isEmpty else { return }
                self.lock.lock(); self.errText += String(decoding: data, as: UTF8.self); self.lock.unlock()
            }
            try process.run()
            firstLine = IntegrationTests.firstLine(of: out, from: process)
        }

        var stderr: String { lock.lock(); defer { lock.unlock() }; return errText }

        /// Waits (bounded) until stderr matches `predicate`.
        func waitFor(_ what: String, timeout: TimeInterval = 60, _ predicate: (String) -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if predicate(stderr) { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            XCTFail("timed out waiting for \(what); stderr: \(stderr.suffix(2000))")
            return false
        }

        func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
    }

    static func pids(of name: String, in text: String) -> [pid_t] {
        text.split(separator: "\n").compactMap { line in
            guard line.contains("started \(name) pid ") else { return nil }
            return pid_t(line.split(separator: " ").last ?? "")
        }
    }

    /// Alive and not a zombie.
    static func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
    }

    func testUpRestartsADeadChildAndItsChildrenEndWithIt() throws {
        try Fixtures.requireCheckpoint()
        let up = try Child(["up", "--encoders", "1", "--decoders", "1"])
        defer { stopBounded(up.process, name: "segflow up") }
        XCTAssertTrue(up.firstLine.hasPrefix("127.0.0.1:"), up.firstLine)
        guard up.waitFor("the decoder's start", { !Self.pids(of: "segflow-prompt-decoder", in: $0).isEmpty }) else { return }
        let decoder = Self.pids(of: "segflow-prompt-decoder", in: up.stderr)[0]
        kill(decoder, SIGKILL)
        guard up.waitFor("the restart", { Self.pids(of: "segflow-prompt-decoder", in: $0).count == 2 }) else { return }
        XCTAssertTrue(up.stderr.contains("segflow-prompt-decoder pid \(decoder) was killed by signal 9; restarting it"), up.stderr)
        let children = Self.pids(of: "segflow-image-encoder", in: up.stderr) + [Self.pids(of: "segflow-prompt-decoder", in: up.stderr)[1]]
        XCTAssertTrue(children.allSatisfy(Self.alive))
        // kill -9 of `up` itself: the children notice and shut down (bounded).
        kill(up.process.processIdentifier, SIGKILL)
        up.process.waitUntilExit()
        let deadline = Date().addingTimeInterval(45)
        while children.contains(where: Self.alive) && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        let orphans = children.filter(Self.alive)
        for pid in orphans { kill(pid, SIGKILL) }
        XCTAssertEqual(orphans, [], "children outlived `segflow up`")
    }

    func testBrokerTakesFaultCommandsOnStdin() async throws {
        let broker = try Child(["broker", "--broker-count", "3", "--partitions", "2", "--faults"])
        defer { stopBounded(broker.process, name: "segflow broker") }
        XCTAssertTrue(broker.firstLine.hasPrefix("127.0.0.1:"), broker.firstLine)
        for line in ["down 2", "up 2", "rtt 1 20", "leader segflow.prompts 0 3", "errors produce NOT_LEADER_FOR_PARTITION 2",
                     "down 9", "errors produce NO_SUCH_ERROR 1", "sideways"] {
            broker.send(line)
        }
        guard broker.waitFor("8 answers", { $0.components(separatedBy: "\n").filter { $0.hasPrefix("ok: ") || $0.hasPrefix("error: ") }.count >= 8 }) else { return }
        let text = broker.stderr
        for expected in ["ok: broker 2 down", "ok: broker 2 up", "ok: broker 1 answers 20 ms later", "ok: segflow.prompts [0] led by broker 3",
                         "ok: next 2 produce requests fail with NOT_LEADER_FOR_PARTITION", "broker 9 does not exist (ids 1…3)",
                         "error: 'errors produce NO_SUCH_ERROR 1': unknown Kafka error", "error: 'sideways': unknown command"] {
            XCTAssertTrue(text.contains(expected), "missing '\(expected)' in: \(text)")
        }
        // The injected produce errors are retried by the (idempotent) producer: the record lands.
        let producer = try Producer(config: ProducerConfig(client: KafkaClientConfig(bootstrapServers: broker.firstLine)))
        let report = try await producer.send(ProducerRecord(topic: SegflowTopics.prompts, key: "k", value: [1], partition: 0))
        await producer.close()
        XCTAssertEqual(report.partition, 0)
    }
}
