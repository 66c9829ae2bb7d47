import Foundation
import Imaging
import SAM
import Tensor
import XCTest

/// The README's main job and the scale-out path, run as a user runs them: the `segflow`
/// binary, through the embedded broker and against `segflow up`.
final class CommandLineTests: XCTestCase {
    func run(_ args: [String], executable: String = "segflow", timeout: TimeInterval = 240) throws -> (status: Int32, output: String) {
        try runExecutable(args, executable: executable, timeout: timeout)
    }

    func maskIoU(_ a: BinaryMask, _ b: BinaryMask) -> Double {
        var inter = 0, union = 0
        for i in 0..<a.bits.count {
            if a.bits[i] != 0 && b.bits[i] != 0 { inter += 1 }
            if a.bits[i] != 0 || b.bits[i] != 0 { union += 1 }
        }
        return union == 0 ? 1 : Double(inter) / Double(union)
    }

    /// f16 embeddings on the wire vs f32 in-process: measured ≥ 0.9998 (HalfPrecisionEmbeddingTests).
    static let wireVersusInProcessIoU = 0.995

    /// Regression: the service executables' `--help` crashed (a forced cast of the parsed
    /// command) although their usage errors point users to it.
    func testServiceExecutablesPrintHelp() throws {
        for exe in ["segflow-image-encoder", "segflow-prompt-decoder", "segflow-text-encoder"] {
            let (status, output) = try run(["--help"], executable: exe, timeout: 30)
            XCTAssertEqual(status, 0, "\(exe) --help: \(output)")
            XCTAssertTrue(output.contains("USAGE: \(exe)"), "\(exe) --help printed: \(output)")
            XCTAssertTrue(output.contains("--brokers"), "\(exe) --help lists no options: \(output)")
        }
    }

    func testMainJobThroughTheEmbeddedBrokerAndAgainstRunningServices() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = Fixtures.dir.appendingPathComponent("chelsea.png").path
        let box = ["--box", "60,10,330,290"]

        // The README's main job: embedded broker, mask + overlay + JSON.
        let main = try run(["segment", image, "--model", "litemedsam"] + box
                           + ["--out", "\(dir)/mask.png", "--overlay", "\(dir)/overlay.png", "--json", "\(dir)/r.json"])
        XCTAssertEqual(main.status, 0, main.output)
        XCTAssertTrue(main.output.contains("via embedded broker"), main.output)
        // Regression: every Kafka run ended with librdkafka's raw "%3|…|FAIL|… brokers are down".
        let rawLines = main.output.split(separator: "\n").filter { $0.hasPrefix("%") && $0.dropFirst(2).hasPrefix("|") }
        XCTAssertEqual(rawLines, [], "librdkafka wrote to stderr directly")
        XCTAssertFalse(main.output.contains("brokers are down"), main.output)
        // Regression: the Kafka path reported no encode time; every stage is named on every path.
        let speed = main.output.split(separator: "\n").first { $0.contains("Speed:") }.map(String.init) ?? ""
        for stage in ["preprocess", "encode", "decode", "postprocess"] {
            XCTAssertTrue(speed.contains("ms \(stage)"), "no \(stage) time over Kafka: '\(speed)'")
        }
        let viaKafka = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/mask.png").gray())
        let overlay = try PNG.decodeRGB(contentsOfFile: "\(dir)/overlay.png")
        XCTAssertEqual([overlay.width, overlay.height], [451, 300])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]
        XCTAssertEqual(json?["model"] as? String, "litemedsam")

        // The same request in-process.
        let local = try run(["segment", image, "--in-process"] + box + ["--out", "\(dir)/local.png"])
        XCTAssertEqual(local.status, 0, local.output)
        let inProcess = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/local.png").gray())
        XCTAssertGreaterThan(inProcess.area, 1000)
        XCTAssertGreaterThanOrEqual(maskIoU(viaKafka, inProcess), Self.wireVersusInProcessIoU)

        // Scale-out: `segflow up` (separate encoder and decoder processes), then a client.
        let up = Process()
        up.executableURL = TestCluster.binDir.appendingPathComponent("segflow")
        up.arguments = ["up", "--encoders", "1", "--decoders", "2"]
        let upOut = Pipe()
        up.standardOutput = upOut
        up.standardError = FileHandle.nullDevice
        try up.run()
        defer { stopBounded(up, name: "segflow up") }
        let address = firstLine(of: upOut, from: up)
        XCTAssertTrue(address.hasPrefix("127.0.0.1:"), "segflow up printed '\(address)'")
        let remote = try run(["segment", image, "--brokers", address] + box + ["--out", "\(dir)/remote.png"])
        XCTAssertEqual(remote.status, 0, remote.output)
        XCTAssertTrue(remote.output.contains("via brokers"), remote.output)
        let viaServices = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/remote.png").gray())
        XCTAssertGreaterThanOrEqual(maskIoU(viaServices, inProcess), Self.wireVersusInProcessIoU)
        stopBounded(up, name: "segflow up", signal: SIGINT)
    }
}

extension CommandLineTests {
    /// Regression: over Kafka (the default) `everything` waited for its 900 s timeout when
    /// no mask passed the filters (LiteMedSAM with upstream's thresholds): the zero-mask
    /// answer was unreadable to the client, which skipped it.
    func testEverythingWithNoSurvivingMaskAnswersOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-all-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = Fixtures.dir.appendingPathComponent("chelsea.png").path
        let r = try run(["everything", image, "--points-per-side", "4", "--json", "\(dir)/none.json", "--timeout", "120"], timeout: 150)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("0 masks"), r.output)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/none.json"))) as? [Any]
        XCTAssertEqual(json?.count, 0)
    }

    /// `everything --json` writes one schema (upstream's record keys, point_coords and
    /// crop_box included) and the same records in-process and over Kafka.
    func testEverythingJSONIsTheSameInProcessAndOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-all-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let image = Fixtures.dir.appendingPathComponent("chelsea.png").path
        // Zero thresholds keep LiteMedSAM's weak multimask outputs (see `everything --help`);
        // an explicit 0 must survive the wire (it used to mean "upstream default" there).
        let args = ["everything", image, "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
        let local = try run(args + ["--in-process", "--json", "\(dir)/local.json"])
        XCTAssertEqual(local.status, 0, local.output)
        let kafka = try run(args + ["--json", "\(dir)/kafka.json", "--timeout", "120"], timeout: 150)
        XCTAssertEqual(kafka.status, 0, kafka.output)
        func records(_ name: String) throws -> [[String: Any]] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))) as? [[String: Any]] ?? []
        }
        let a = try records("local.json"), b = try records("kafka.json")
        XCTAssertGreaterThan(a.count, 0, local.output)
        XCTAssertEqual(a.count, b.count)
        let keys = ["area", "bbox", "crop_box", "point_coords", "predicted_iou", "segmentation", "stability_score"]
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.keys.sorted(), keys)
            XCTAssertEqual(y.keys.sorted(), keys)
            XCTAssertEqual(x["point_coords"] as? [[Double]], y["point_coords"] as? [[Double]])
            XCTAssertEqual(x["crop_box"] as? [Int], y["crop_box"] as? [Int])
        }
    }
}

extension CommandLineTests {
    /// JPEG and WebP inputs, detected by content: in-process masks equal those of the same
    /// pixels decoded by PIL (Tests/Reference/make_cli_jpeg_fixtures.py), over Kafka (the
    /// encoded bytes travel as-is) within the wire tolerance; a misleading extension does
    /// not matter; a non-image names the file and what was seen.
    func testJPEGAndWebPInputsDecodeLikePILInProcessAndOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-jpeg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let box = ["--box", "60,10,330,290"]
        func mask(_ path: String) throws -> BinaryMask { BinaryMask(try PNG.decodeRGB(contentsOfFile: path).gray()) }
        for (input, pil) in [("chelsea.jpg", "chelsea_jpg_pil.png"), ("chelsea.webp", "chelsea_webp_pil.png")] {
            let name = input.replacingOccurrences(of: ".", with: "_")
            let a = try run(["segment", Fixtures.dir.appendingPathComponent(input).path, "--in-process"] + box + ["--out", "\(dir)/\(name).png"])
            XCTAssertEqual(a.status, 0, a.output)
            let b = try run(["segment", Fixtures.dir.appendingPathComponent(pil).path, "--in-process"] + box + ["--out", "\(dir)/\(name)_pil.png"])
            XCTAssertEqual(b.status, 0, b.output)
            let fromFile = try mask("\(dir)/\(name).png")
            XCTAssertGreaterThan(fromFile.area, 1000)
            XCTAssertEqual(fromFile, try mask("\(dir)/\(name)_pil.png"), "\(input): masks differ from PIL-decoded pixels")
        }
        let jpeg = Fixtures.dir.appendingPathComponent("chelsea.jpg").path
        let kafka = try run(["segment", jpeg] + box + ["--out", "\(dir)/kafka.png"])
        XCTAssertEqual(kafka.status, 0, kafka.output)
        XCTAssertGreaterThanOrEqual(maskIoU(try mask("\(dir)/kafka.png"), try mask("\(dir)/chelsea_jpg.png")), Self.wireVersusInProcessIoU)
        // Content, not name: a JPEG called .png.
        try FileManager.default.copyItem(atPath: jpeg, toPath: "\(dir)/actually-a-jpeg.png")
        let renamed = try run(["segment", "\(dir)/actually-a-jpeg.png", "--in-process"] + box + ["--out", "\(dir)/renamed.png"])
        XCTAssertEqual(renamed.status, 0, renamed.output)
        XCTAssertEqual(try mask("\(dir)/renamed.png"), try mask("\(dir)/chelsea_jpg.png"))
        // Not an image: the file and what was seen are named, nothing is computed.
        try Data("GIF89a not really".utf8).write(to: URL(fileURLWithPath: "\(dir)/x.gif"))
        let bad = try run(["segment", "\(dir)/x.gif", "--in-process"] + box + ["--out", "\(dir)/never.png"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("x.gif") && bad.output.contains("GIF"), bad.output)
    }
}

extension RGBImage {
    /// The red channel as gray (mask PNGs decode to R = G = B).
    func gray() -> GrayImage {
        try! GrayImage(width: width, height: height, pixels: stride(from: 0, to: pixels.count, by: 3).map { pixels[$0] })
    }
}

extension CommandLineTests {
    /// `segflow segment` and `segflow track` with an in-context model: the embedded-broker
    /// path writes exactly the in-process masks and raw output (.npy); Painter too.
    func testInContextSegmentAndTrackCLIOverKafkaEqualInProcess() throws {
        let fx = InContextIntegrationTests.dir.path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-ctx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let seggpt = ["--model", "seggpt", "--checkpoint", "\(fx)/seggpt_tiny", "--prompt-image", "\(fx)/prompt_a.png", "--prompt-mask", "\(fx)/mask_a.png"]
        for (label, extra) in [("local", ["--in-process"]), ("kafka", [String]())] {
            let r = try run(["segment", "\(fx)/query.png"] + seggpt + extra
                            + ["--out", "\(dir)/\(label).png", "--save-logits", "\(dir)/\(label).npy", "--json", "\(dir)/\(label).json"])
            XCTAssertEqual(r.status, 0, r.output)
            let t = try run(["track", "\(fx)/query.png", "\(fx)/prompt_a.png", "\(fx)/query.png"] + seggpt + extra
                            + ["--add-previous", "--out-dir", "\(dir)/track-\(label)"])
            XCTAssertEqual(t.status, 0, t.output)
            // A .pth carries no geometry: --config gives the tiny one (else ViT-L is assumed).
            let p = try run(["segment", "\(fx)/query.png", "--model", "painter", "--checkpoint", "\(fx)/painter_tiny.pth", "--config", "\(fx)/seggpt_tiny_config.json",
                             "--prompt-image", "\(fx)/prompt_a.png", "--prompt-mask", "\(fx)/mask_a.png", "--out", "\(dir)/painter-\(label).png"] + extra)
            XCTAssertEqual(p.status, 0, p.output)
        }
        func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)")) }
        XCTAssertEqual(try bytes("local.png"), try bytes("kafka.png"), "segment masks differ")
        XCTAssertEqual(try bytes("local.npy"), try bytes("kafka.npy"), "raw outputs differ")
        XCTAssertEqual(try bytes("painter-local.png"), try bytes("painter-kafka.png"), "painter masks differ")
        for i in 0..<3 {
            let name = String(format: "mask_%04d.png", i)
            XCTAssertEqual(try bytes("track-local/\(name)"), try bytes("track-kafka/\(name)"), "track frame \(i) differs")
        }
        // Usage errors before any compute: a mask without its image, a box for an in-context model.
        let missing = try run(["segment", "\(fx)/query.png", "--model", "seggpt", "--checkpoint", "\(fx)/seggpt_tiny",
                               "--prompt-mask", "\(fx)/mask_a.png", "--out", "\(dir)/x.png"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("--prompt-image"), missing.output)
        let sizes = try run(["segment", "\(fx)/query.png", "--model", "seggpt", "--checkpoint", "\(fx)/seggpt_tiny", "--in-process",
                             "--prompt-image", "\(fx)/query.png", "--prompt-mask", "\(fx)/mask_a.png", "--out", "\(dir)/x.png"])
        XCTAssertNotEqual(sizes.status, 0)
        XCTAssertTrue(sizes.output.contains("mask is 35x41, image is 37x45"), sizes.output)
    }
}

extension CommandLineTests {
    /// Regression (checks after the compute): outputs in a missing directory, and a box a
    /// pixel past the edge, are handled before the model runs; `--version` exists.
    func testInputsAndOutputsAreCheckedBeforeTheModelRuns() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-pre-\(UUID().uuidString)").path
        let image = Fixtures.dir.appendingPathComponent("chelsea.png").path  // 451×300
        // A missing output directory is created.
        let nested = try run(["segment", image, "--in-process", "--box", "60,10,330,290", "--out", "\(dir)/a/b/mask.png"])
        XCTAssertEqual(nested.status, 0, nested.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/a/b/mask.png"))
        // A box one pixel past the right and bottom edges is clipped, with a note.
        let edge = try run(["segment", image, "--in-process", "--box", "60,10,451,300", "--out", "\(dir)/edge.png"])
        XCTAssertEqual(edge.status, 0, edge.output)
        XCTAssertTrue(edge.output.contains("clipped to the 451x300 image"), edge.output)
        // A box entirely outside, or a point outside, fails at once without loading the model.
        let outside = try run(["segment", image, "--in-process", "--box", "500,10,600,100", "--out", "\(dir)/never.png"], timeout: 30)
        XCTAssertNotEqual(outside.status, 0)
        XCTAssertTrue(outside.output.contains("does not overlap the 451x300 image"), outside.output)
        XCTAssertFalse(outside.output.contains("encode"), outside.output)
        let point = try run(["segment", image, "--in-process", "--point", "10,400", "--out", "\(dir)/never.png"], timeout: 30)
        XCTAssertNotEqual(point.status, 0)
        XCTAssertTrue(point.output.contains("point 10.0,400.0 is outside"), point.output)
        // An output path that is a directory is refused before compute.
        let isDir = try run(["segment", image, "--in-process", "--box", "60,10,330,290", "--out", dir], timeout: 30)
        XCTAssertNotEqual(isDir.status, 0)
        XCTAssertTrue(isDir.output.contains("is a directory"), isDir.output)
        for exe in ["segflow", "segflow-image-encoder", "segflow-prompt-decoder", "segflow-text-encoder"] {
            let v = try run(["--version"], executable: exe, timeout: 30)
            XCTAssertEqual(v.status, 0, "\(exe): \(v.output)")
            XCTAssertTrue(v.output.contains("0.5.0"), "\(exe) --version: \(v.output)")
        }
    }
}

extension CommandLineTests {
    /// Regression: a PNG over ~1 MB failed on the default Kafka path (MSG_SIZE_TOO_LARGE)
    /// although in-process worked. Images now travel as record slices (RecordChunking).
    func testImageLargerThanABrokerRecordWorksOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-big-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (png, base) = try Self.bigNoisyChelsea()
        XCTAssertGreaterThan(png.count, 2_000_000, "the test image must exceed a broker record")
        let path = "\(dir)/big.png"
        try Data(png).write(to: URL(fileURLWithPath: path))
        let box = ["--box", "\(60 + base.width),\(10 + base.height),\(330 + base.width),\(290 + base.height)"]
        let kafka = try run(["segment", path, "--model", "litemedsam"] + box + ["--out", "\(dir)/kafka.png"])
        XCTAssertEqual(kafka.status, 0, kafka.output)
        let local = try run(["segment", path, "--in-process"] + box + ["--out", "\(dir)/local.png"])
        XCTAssertEqual(local.status, 0, local.output)
        let a = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/kafka.png").gray())
        let b = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/local.png").gray())
        XCTAssertGreaterThan(b.area, 1000)
        XCTAssertGreaterThanOrEqual(maskIoU(a, b), Self.wireVersusInProcessIoU)
    }
}

extension CommandLineTests {
    /// The chelsea photo tiled 3×3 with per-pixel noise: 1353×900, a PNG of several MB (over
    /// a broker record); `base` is the photo, whose box offset by one tile hits the centre copy.
    static func bigNoisyChelsea() throws -> (png: [UInt8], base: RGBImage) {
        let base = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        let (w, h) = (base.width * 3, base.height * 3)
        var rng = SplitMix64Lite(seed: 11)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<3 {
                    let v = Int(base.pixels[((y % base.height) * base.width + x % base.width) * 3 + c]) + Int(rng.next() % 17) - 8
                    pixels[(y * w + x) * 3 + c] = UInt8(clamping: v)
                }
            }
        }
        return (try PNG.encode(try RGBImage(width: w, height: h, pixels: pixels)), base)
    }

    /// `segflow bench --json` names the GEMM precision and f32 engine it ran with (bf16
    /// only where the CPU runs it natively; elsewhere bench refuses it, exit 1, naming why).
    func testBenchJSONNamesItsPrecision() throws {
        try Fixtures.requireCheckpoint()
        struct Report: Decodable { var precision: String; var f32Engine: String; var rows: [Row]; struct Row: Decodable { var stage: String } }
        let native = BF16Support.detect().isNative
        for precision in ["f32", "bf16"] {
            let r = try run(["bench", "--model", "litemedsam", "--runs", "1", "--decoder-runs", "1", "--warmup", "0", "--json", "--quiet", "--precision", precision])
            if precision == "bf16" && !native {
                XCTAssertNotEqual(r.status, 0, "bf16 on a CPU without native bf16 must be refused: \(r.output)")
                XCTAssertTrue(r.output.contains("bf16"), r.output)
                continue
            }
            XCTAssertEqual(r.status, 0, r.output)
            guard let start = r.output.firstIndex(of: "{") else { return XCTFail("no JSON in: \(r.output)") }
            let report = try JSONDecoder().decode(Report.self, from: Data(r.output[start...].utf8))
            XCTAssertEqual(report.precision, precision)
            XCTAssertEqual(report.f32Engine, "openblas")
            XCTAssertTrue(report.rows.contains { $0.stage == "image encoder" }, "\(report.rows.map(\.stage))")
        }
    }
}

/// A tiny deterministic generator for test pixels.
struct SplitMix64Lite {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

}

extension XCTestCase {
    /// Runs a built executable with a bounded wait (terminate, then SIGKILL, and a failure).
    func runExecutable(_ args: [String], executable: String = "segflow", timeout: TimeInterval = 240) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = TestCluster.binDir.appendingPathComponent(executable)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning {
            p.terminate()
            Thread.sleep(forTimeInterval: 2)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            XCTFail("\(executable) \(args.joined(separator: " ")) did not exit within \(Int(timeout)) s; killed")
        }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}
