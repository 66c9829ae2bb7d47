import Foundation
import Imaging
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
