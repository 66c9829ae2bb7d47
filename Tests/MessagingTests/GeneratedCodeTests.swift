import Foundation
import XCTest

/// The committed protobuf-c code must be what Protocols/generate.sh makes from the
/// committed segflow.proto, or the Swift types and the schema silently disagree.
final class GeneratedCodeTests: XCTestCase {
    func testCommittedProtobufCCodeIsFresh() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("Protocols/generate.sh")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-proto-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", script.path, out.path]
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if process.terminationStatus == 127 {
            return XCTFail("protoc-c is not installed, so the generated code cannot be checked; run Deploy/setup.sh (installs protobuf-c-compiler). \(message)")
        }
        XCTAssertEqual(process.terminationStatus, 0, "Protocols/generate.sh failed: \(message)")

        for (generated, committed) in [("segflow.pb-c.c", "Shared/CSegflowProto/segflow.pb-c.c"),
                                       ("include/segflow.pb-c.h", "Shared/CSegflowProto/include/segflow.pb-c.h")] {
            let fresh = try Data(contentsOf: out.appendingPathComponent(generated))
            let stored = try Data(contentsOf: root.appendingPathComponent(committed))
            XCTAssertFalse(fresh.isEmpty)
            XCTAssertTrue(fresh == stored,
                          "\(committed) is stale (\(stored.count) bytes committed, \(fresh.count) generated): run Protocols/generate.sh and commit the result")
        }
    }
}
