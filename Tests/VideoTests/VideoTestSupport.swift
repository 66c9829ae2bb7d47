import Foundation
import Imaging
import Video
import XCTest

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            throw XCTSkip("fixture \(name) missing from bundle") as Error
        }
        return url
    }

    /// The CC0 photograph the reference clips pan across (Tests/SAMTests/Fixtures/IMAGES-LICENSE.md).
    static var photo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SAMTests/Fixtures/chelsea.png")
    }

    static var referenceScript: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Reference/make_video_fixtures.py")
    }

    struct Clip: Decodable {
        let file: String
        let width: Int
        let height: Int
        let count: Int
        let pts: [Double?]
        let codec: String
        let pix_fmt: String
        let frame_rate: Double?
        let nb_frames: Int?
    }

    struct Cases: Decodable {
        let pyav: String
        let ffmpeg: String
        let clips: [String: Clip]
    }

    static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: url("video_cases.json")))
    }

    /// Frames stacked top to bottom in one PNG (the reference script's layout), split again.
    static func stackedFrames(_ name: String, width: Int, height: Int, count: Int) throws -> [RGBImage] {
        let all = try PNG.decodeRGB(contentsOfFile: url(name).path)
        XCTAssertEqual([all.width, all.height], [width, height * count], name)
        let frameBytes = width * height * 3
        return try (0..<count).map { i in
            try RGBImage(width: width, height: height, pixels: Array(all.pixels[(i * frameBytes)..<((i + 1) * frameBytes)]))
        }
    }
}

/// A fresh temporary directory per test, removed at the end.
func temporaryDirectory(_ label: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-\(label)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Crops of the photograph moving `dx`, `dy` pixels per frame (a synthetic camera pan).
func panFrames(width: Int, height: Int, count: Int, dx: Int = 7, dy: Int = 3) throws -> [RGBImage] {
    let photo = try PNG.decodeRGB(contentsOfFile: Fixtures.photo.path)
    return try (0..<count).map { i in
        let x0 = 10 + dx * i, y0 = 5 + dy * i
        precondition(x0 + width <= photo.width && y0 + height <= photo.height, "pan leaves the photograph")
        var pixels = [UInt8]()
        pixels.reserveCapacity(width * height * 3)
        for y in y0..<(y0 + height) {
            let row = (y * photo.width + x0) * 3
            pixels += photo.pixels[row..<(row + width * 3)]
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }
}

/// Largest absolute difference of two images' samples, and the mean.
func difference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, mean: Double) {
    precondition(a.width == b.width && a.height == b.height)
    var worst = 0, total = 0
    for i in 0..<a.pixels.count {
        let d = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
        worst = max(worst, d); total += d
    }
    return (worst, Double(total) / Double(a.pixels.count))
}

/// Peak signal-to-noise ratio in dB over all samples (infinity when equal).
func psnr(_ a: RGBImage, _ b: RGBImage) -> Double {
    var se = 0.0
    for i in 0..<a.pixels.count {
        let d = Double(a.pixels[i]) - Double(b.pixels[i])
        se += d * d
    }
    let mse = se / Double(a.pixels.count)
    return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
}

func readAll(_ reader: VideoReader) throws -> [VideoFrame] {
    var frames: [VideoFrame] = []
    while let f = try reader.next() { frames.append(f) }
    return frames
}

/// A Python with PyAV, PIL, numpy and pycocotools for the runtime reference checks:
/// SEGFLOW_REFERENCE_PYTHON, else none (the checks skip; the committed goldens still run).
func referencePython() throws -> URL {
    guard let path = ProcessInfo.processInfo.environment["SEGFLOW_REFERENCE_PYTHON"], !path.isEmpty else {
        throw XCTSkip("set SEGFLOW_REFERENCE_PYTHON to a Python with av, pillow, numpy, pycocotools (e.g. /work/venv/bin/python)")
    }
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw XCTSkip("SEGFLOW_REFERENCE_PYTHON=\(path) is not executable")
    }
    return URL(fileURLWithPath: path)
}

/// Runs the reference script with `args`; its stdout parsed as JSON. Bounded by `timeout`.
func runReference(_ args: [String], timeout: TimeInterval = 120) throws -> Any {
    let p = Process()
    p.executableURL = try referencePython()
    p.arguments = [Fixtures.referenceScript.path] + args
    var env = ProcessInfo.processInfo.environment
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    p.environment = env
    // Output to files, not pipes: a full pipe would block the child while we wait.
    let dir = try temporaryDirectory("reference")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
    _ = FileManager.default.createFile(atPath: dir + "/err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
    p.standardError = FileHandle(forWritingAtPath: dir + "/err")
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if p.isRunning {
        p.terminate()
        Thread.sleep(forTimeInterval: 1)
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        XCTFail("reference script \(args) did not finish within \(Int(timeout)) s; killed")
    }
    p.waitUntilExit()
    let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/out"))
    let stderr = (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? ""
    guard p.terminationStatus == 0 else {
        throw NSError(domain: "reference", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "reference script failed: \(stderr)"])
    }
    return try JSONSerialization.jsonObject(with: data)
}
