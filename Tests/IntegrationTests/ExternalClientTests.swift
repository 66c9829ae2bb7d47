import Foundation
import Messaging
import XCTest

/// A client written without any Segflow code: protoc (Debian's protobuf-compiler) turns
/// text-format messages into protobuf bytes using Protocols/segflow.proto, kcat (Debian's
/// Kafka command-line client) produces and consumes them.
final class ExternalClientTests: XCTestCase {
    static var protoDir: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocols").path
    }

    func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("\(name) missing: Deploy/setup.sh installs it") }
        throw XCTSkip("\(name) not installed (Deploy/setup.sh installs it)")
    }

    @discardableResult
    func run(_ exe: String, _ args: [String], stdin: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = inp
        try p.run()
        // Bounded: a tool that does not finish in 60 s is killed (and the test fails below).
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if p.isRunning { kill(pid, SIGKILL) } }
        if let stdin { inp.fileHandleForWriting.write(stdin) }
        try inp.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw NSError(domain: "\(exe) \(args): \(errText)", code: Int(p.terminationStatus)) }
        return data
    }

    /// Text-format bytes literal: every byte as an octal escape.
    func escaped(_ bytes: [UInt8]) -> String { bytes.map { String(format: "\\%03o", $0) }.joined() }

    func testKcatAndProtocClientGetsAMask() async throws {
        try Fixtures.requireCheckpoint()
        let kcat = try tool("kcat"), protoc = try tool("protoc")
        let cluster = try await TestCluster(partitions: 4, extraTopics: ["external.replies"])
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder")
        let addr = cluster.broker.bootstrapServers
        let dir = cluster.logDir.path
        let imageText = "request_id: \"ext-img\" image_id: \"ext\" png: \"\(escaped(try Fixtures.png("chelsea_crop")))\""
        let promptText = "request_id: \"ext-prm\" image_id: \"ext\" boxes { x0: 20 y0: 15 x1: 100 y1: 80 } reply_topic: \"external.replies\""
        for (name, type, text) in [("image.bin", "ImageRequest", imageText), ("prompt.bin", "PromptRequest", promptText)] {
            let bytes = try run(protoc, ["--encode=segflow.v1.\(type)", "-I", Self.protoDir, "segflow.proto"], stdin: Data(text.utf8))
            try bytes.write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        try run(kcat, ["-P", "-b", addr, "-t", "segflow.images", "-k", "ext", "\(dir)/image.bin"])
        try run(kcat, ["-P", "-b", addr, "-t", "segflow.prompts", "-k", "ext", "\(dir)/prompt.bin"])
        var reply = Data()
        let deadline = Date().addingTimeInterval(180)
        while reply.isEmpty && Date() < deadline {
            reply = try run(kcat, ["-C", "-b", addr, "-t", "external.replies", "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%s"])
            if reply.isEmpty { try await Task.sleep(for: .seconds(1)) }
        }
        XCTAssertFalse(reply.isEmpty, "no reply on external.replies; decoder log: \(cluster.log("decoder").suffix(1500))")
        let text = String(decoding: try run(protoc, ["--decode=segflow.v1.MaskResult", "-I", Self.protoDir, "segflow.proto"], stdin: reply),
                          as: UTF8.self)
        XCTAssertTrue(text.contains("request_id: \"ext-prm\""), text)
        XCTAssertTrue(text.contains("predicted_iou"), text)
        XCTAssertFalse(text.contains("error {"), text)
        // And it is the same answer Segflow's own decoder of MaskResult reads.
        let parsed = try MaskResult(bytes: [UInt8](reply))
        XCTAssertEqual(parsed.masks.count, 1)
        XCTAssertGreaterThan(parsed.masks[0].area, 0)
    }
}
