import Client
import Foundation
import Imaging
import Logging
import Messaging
import XCTest

/// SAM 2 image mode through the `segflow` binary: the same CLI and wire as SAM, with a
/// transformers directory and an official `.pt` (tiny random weights, real names).
final class Sam2CommandLineTests: XCTestCase {
    static var dir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SAM2Tests/Fixtures")
    }

    /// f16 features on the wire vs f32 in process, on the tiny random model's 56×40 mask
    /// (logits near 0 on many pixels): measured 1 pixel of 67 flips.
    static let f16MaskIoU = 0.95

    func run(_ args: [String]) throws -> (status: Int32, output: String) {
        try runExecutable(args)
    }

    /// In-process and through the embedded broker (image-encoder → embeddings topic →
    /// prompt-decoder) write the same masks; the official checkpoint layout writes them too.
    func testSegmentWithSam2InProcessAndOverKafkaWritesTheSameMasks() throws {
        let fx = Self.dir.path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-sam2-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let prompt = ["--box", "10,8,45,33", "--point", "20.5,15,1"]
        for (label, extra) in [("local", ["--in-process"]), ("kafka", [String]())] {
            let r = try run(["segment", "\(fx)/image.png", "--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_tiny"] + prompt + extra
                            + ["--multimask", "--out", "\(out)/\(label).png", "--json", "\(out)/\(label).json"])
            XCTAssertEqual(r.status, 0, r.output)
        }
        let official = try run(["segment", "\(fx)/image.png", "--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_tiny_original.pt",
                                "--config", "\(fx)/sam2_tiny/config.json", "--in-process"] + prompt
                               + ["--multimask", "--out", "\(out)/official.png"])
        XCTAssertEqual(official.status, 0, official.output)
        func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(name)")) }
        // Same weights and features in both layouts, in process: the same bytes.
        XCTAssertEqual(try bytes("local.png"), try bytes("official.png"), "official layout masks differ")
        let local = try BinaryMask(png: [UInt8](try bytes("local.png"))), kafka = try BinaryMask(png: [UInt8](try bytes("kafka.png")))
        XCTAssertEqual(local.width, 56); XCTAssertEqual(local.height, 40)
        XCTAssertGreaterThan(local.area, 20)
        // The embedded stack ships f16 features (Sam2BackendTests pins f32 as bit-identical).
        var inter = 0, union = 0
        for i in 0..<local.bits.count { inter += Int(local.bits[i] & kafka.bits[i]); union += Int(local.bits[i] | kafka.bits[i]) }
        XCTAssertGreaterThanOrEqual(Double(inter) / Double(max(union, 1)), Self.f16MaskIoU, "in-process vs Kafka masks")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: try bytes("kafka.json")) as? [String: Any])
        XCTAssertEqual(json["model"] as? String, "sam2.1-hiera-t", "\(json)")
    }

    /// `segflow track` with a transformers Sam2VideoModel directory: in process and through the
    /// embedded broker (the prompt-decoder keeps each object's memory bank in the stream state)
    /// the masks are the same.
    func testTrackWithSam2InProcessAndOverKafka() throws {
        let fx = Self.dir.path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-sam2-track-\(UUID().uuidString)").path
        let frames = (0..<4).map { "\(fx)/video_frame\($0).png" }
        for (label, extra) in [("local", ["--in-process"]), ("kafka", [String]())] {
            let r = try run(["track"] + frames + ["--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_video_tiny",
                                                  "--box", "12,10,30,28", "--out-dir", "\(out)/\(label)"] + extra)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("object 1 tracked"), r.output)
        }
        for i in 0..<4 {
            let name = String(format: "mask_%04d.png", i)
            let a = try BinaryMask(png: [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(out)/local/\(name)"))))
            let b = try BinaryMask(png: [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(out)/kafka/\(name)"))))
            XCTAssertGreaterThan(a.area, 0, name)
            var inter = 0, union = 0
            for j in 0..<a.bits.count { inter += Int(a.bits[j] & b.bits[j]); union += Int(a.bits[j] | b.bits[j]) }
            XCTAssertGreaterThanOrEqual(Double(inter) / Double(max(union, 1)), Self.f16MaskIoU, "frame \(i): in-process vs Kafka")
        }
        // The official layout (.pt + --config for the tiny geometry) with a correction on frame 2:
        // the same masks as the transformers directory, frame by frame.
        for (label, ckpt) in [("official", ["\(fx)/sam2_video_tiny_original.pt", "--config", "\(fx)/sam2_video_tiny/config.json"]),
                              ("hf", ["\(fx)/sam2_video_tiny"])] {
            let r = try run(["track"] + frames + ["--model", "sam2.1-hiera-t", "--checkpoint"] + ckpt
                            + ["--box", "12,10,30,28", "--correct", "2:1:14,10,32,28", "--in-process", "--out-dir", "\(out)/\(label)"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("frame 2: object 1 corrected"), r.output)
        }
        for i in 0..<4 {
            let name = String(format: "mask_%04d.png", i)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(out)/official/\(name)")),
                           try Data(contentsOf: URL(fileURLWithPath: "\(out)/hf/\(name)")), "frame \(i): official vs transformers layout")
        }
        // The image-mode checkpoint cannot track, and says what to bring.
        let image = try run(["track"] + frames + ["--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_tiny",
                                                  "--box", "12,10,30,28", "--in-process", "--out-dir", "\(out)/never"])
        XCTAssertNotEqual(image.status, 0)
        XCTAssertTrue(image.output.contains("sam2_video"), image.output)
    }

    func testSam2UsageErrorsNameTheProblem() throws {
        let fx = Self.dir.path
        let none = try run(["segment", "\(fx)/image.png", "--model", "sam2.1-hiera-t", "--box", "1,1,10,10", "--in-process", "--out", "/tmp/never.png"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.output.contains("sam2.1_hiera_tiny.pt"), none.output)
        let text = try run(["segment", "\(fx)/image.png", "--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_tiny",
                            "--text", "a cat", "--in-process", "--out", "/tmp/never.png"])
        XCTAssertNotEqual(text.status, 0)
        XCTAssertTrue(text.output.contains("text"), text.output)
        // A .pt carries no geometry: without --config the full-size tiny preset is assumed and
        // the first mis-shaped tensor is named.
        let shapes = try run(["segment", "\(fx)/image.png", "--model", "sam2.1-hiera-t", "--checkpoint", "\(fx)/sam2_tiny_original.pt",
                              "--box", "1,1,10,10", "--in-process", "--out", "/tmp/never.png"])
        XCTAssertNotEqual(shapes.status, 0)
        XCTAssertTrue(shapes.output.contains("image_encoder.trunk"), shapes.output)
    }
}

/// SAM 2 streams through the real service processes: the decoder that owns a stream keeps the
/// objects' memory banks in the stream state; kill -9 it mid-stream and a new decoder continues
/// from the snapshot with exactly the masks of an uninterrupted run. The decoders write the
/// state in 4 KiB parts (`--snapshot-part-kb 4`; the tiny model's ~20 KB state stands in for a
/// full-size one's ~4 MB over 512 KiB parts), so the new decoder reassembles it from parts.
final class Sam2StreamFailoverTests: XCTestCase {
    func testSam2StreamSurvivesKillingItsDecoder() async throws {
        let fx = Sam2CommandLineTests.dir
        let images = try (0..<6).map { try Data(contentsOf: fx.appendingPathComponent("video_frame\($0 % 4).png")) }.map { [UInt8]($0) }
        let model = ["--model", "sam2.1-hiera-t", "--checkpoint", fx.appendingPathComponent("sam2_video_tiny").path]
        let cluster = try await TestCluster(partitions: 4)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder", extra: model)
        let decoder = model + ["--snapshot-part-kb", "4"]
        try cluster.start("segflow-prompt-decoder", name: "decoder-1", extra: decoder)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let sc = SegflowClient(client: cluster.client, logger: logger)
        func prompts(_ i: Int) -> [ObjectPrompt] {
            switch i {
            case 0: [ObjectPrompt(objectID: 1, box: .init(x0: 12, y0: 10, x1: 30, y1: 28))]
            case 3: [ObjectPrompt(objectID: 2, points: [.init(x: 43, y: 29, label: 1)])]
            default: []
            }
        }
        func run(_ stream: String, onResult: (Int, MaskResult) throws -> Void) async throws {
            var i = 0
            try await sc.trackStream(streamID: stream, model: "sam2.1-hiera-t", window: 2, timeout: .seconds(150),
                                     next: {
                                         guard i < images.count else { return nil }
                                         defer { i += 1 }
                                         return StreamFrame(image: .png(images[i]), objects: prompts(i))
                                     }, onResult: onResult)
        }
        var reference: [Int: MaskResult] = [:]
        try await run("sam2-reference") { index, r in reference[index] = r }
        var remote: [Int: MaskResult] = [:]
        var killed = false
        try await run("sam2-failover") { index, r in
            remote[index] = r
            if index == 2 && !killed {
                killed = true
                cluster.kill9("decoder-1")
                try cluster.start("segflow-prompt-decoder", name: "decoder-2", extra: decoder)
            }
        }
        XCTAssertTrue(killed)
        XCTAssertEqual(Set(reference.keys), Set(0..<6))
        XCTAssertEqual(Set(remote.keys), Set(0..<6), "every frame answered; decoder-2 log: \(cluster.log("decoder-2").suffix(3000))")
        for i in 0..<6 {
            XCTAssertNil(reference[i]?.error, "frame \(i): \(String(describing: reference[i]?.error))")
            XCTAssertNil(remote[i]?.error)
            XCTAssertEqual(remote[i]?.masks, reference[i]?.masks, "frame \(i): differs from an uninterrupted run")
        }
        XCTAssertEqual(reference[3]?.masks.map(\.objectID), [1, 2], "object 2 added mid-stream")
        let log2 = cluster.log("decoder-2")
        XCTAssertTrue(log2.contains("restored stream state"), "decoder-2 continued from the snapshot:\n\(log2.suffix(3000))")
        // The restored state was larger than one part: it came back from parts.
        let restored = log2.components(separatedBy: "\n").first { $0.contains("restored stream state") } ?? ""
        let bytes = restored.components(separatedBy: "bytes=").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        XCTAssertGreaterThan(bytes, 4 * 1024, "restored from parts: \(restored)")
    }
}
