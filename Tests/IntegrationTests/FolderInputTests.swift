import Foundation
import Imaging
import XCTest

/// Folders and globs as input (`segment`, `everything`, `embed`): per-image outputs under
/// --out-dir equal the single-image runs, in-process and over Kafka; `everything` writes
/// segment-anything's amg.py layout.
extension CommandLineTests {
    func makeFolder() throws -> (dir: String, input: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-folder-\(UUID().uuidString)").path
        let input = dir + "/in"
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        for name in ["chelsea.png", "chelsea.jpg", "coffee.png"] {
            try FileManager.default.copyItem(atPath: Fixtures.dir.appendingPathComponent(name).path, toPath: "\(input)/\(name)")
        }
        try Data("not an image\n".utf8).write(to: URL(fileURLWithPath: "\(input)/notes.txt"))
        return (dir, input)
    }

    func jsonArray(_ path: String) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]] ?? []
    }

    func segmentations(_ records: [[String: Any]]) -> [String] {
        records.map { (($0["segmentation"] as? [String: Any])?["counts"] as? String) ?? "" }
    }

    /// amg.py's layout: STEM/0.png… + metadata.csv whose header is amg.py's and whose rows
    /// are the JSON records (id, area, bbox XYWH, the point, scores, crop box).
    func checkAMGFolder(_ folder: String, records: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        let csv = try String(contentsOfFile: folder + "/metadata.csv", encoding: .utf8)
        let rows = csv.components(separatedBy: "\n")
        XCTAssertEqual(rows[0], "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h",
                       file: file, line: line)
        XCTAssertEqual(rows.count - 1, records.count, file: file, line: line)
        let pngs = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(Set(pngs), Set(records.indices.map { "\($0).png" }), file: file, line: line)
        for (i, r) in records.enumerated() {
            let f = rows[i + 1].split(separator: ",").map(String.init)
            XCTAssertEqual(f.count, 14, file: file, line: line)
            let bbox = r["bbox"] as? [Int] ?? [], crop = r["crop_box"] as? [Int] ?? []
            let point = (r["point_coords"] as? [[Double]])?.first ?? []
            XCTAssertEqual(Int(f[0]), i, file: file, line: line)
            XCTAssertEqual(Int(f[1]), r["area"] as? Int, file: file, line: line)
            XCTAssertEqual(f[2...5].compactMap { Int($0) }, bbox, file: file, line: line)
            XCTAssertEqual(f[6...7].compactMap { Double($0) }, point, file: file, line: line)
            // The CSV prints Python's repr (shortest round trip); Foundation's JSON writer rounds
            // the last digit or two, hence the tolerance.
            XCTAssertEqual(Double(f[8]) ?? -1, r["predicted_iou"] as? Double ?? -2, accuracy: 1e-12, file: file, line: line)
            XCTAssertEqual(Double(f[9]) ?? -1, r["stability_score"] as? Double ?? -2, accuracy: 1e-12, file: file, line: line)
            XCTAssertEqual(f[10...13].compactMap { Int($0) }, crop, file: file, line: line)
            // Each PNG is the record's mask: its area in white pixels.
            let png = try PNG.decodeRGB(contentsOfFile: "\(folder)/\(i).png")
            XCTAssertEqual(BinaryMask(png.gray()).area, r["area"] as? Int, "\(folder)/\(i).png", file: file, line: line)
        }
    }

    func testEverythingOnAFolderEqualsSingleImageRunsInProcessAndOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let (dir, input) = try makeFolder()
        // Zero thresholds keep LiteMedSAM's weak multimask outputs (see `everything --help`).
        let amg = ["--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
        for (label, route) in [("local", ["--in-process"]), ("kafka", ["--timeout", "120"])] {
            let batch = try run(["everything", input] + amg + route + ["--out-dir", "\(dir)/\(label)"], timeout: 200)
            XCTAssertEqual(batch.status, 0, batch.output)
            XCTAssertTrue(batch.output.contains("skipping \(input)/notes.txt"), batch.output)
            XCTAssertTrue(batch.output.contains("3 image(s)"), batch.output)
            // One speed line per image, and no progress line: stderr is a pipe here.
            let speedLines = batch.output.components(separatedBy: "\n").filter { $0.hasPrefix("image ") && $0.contains("Speed:") }
            XCTAssertEqual(speedLines.count, 3, batch.output)
            // The same stages on every path: over Kafka the result carries the encoder's time.
            XCTAssertTrue(speedLines.allSatisfy { $0.contains("ms encode,") && $0.contains("ms decode,") }, speedLines.joined(separator: "\n"))
            XCTAssertFalse(batch.output.contains("\r"), "progress written to a non-terminal")
            // Stems: chelsea.png and chelsea.jpg share one, so both keep their whole names.
            let outputs = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/\(label)").sorted()
            XCTAssertEqual(outputs, ["chelsea.jpg", "chelsea.jpg.json", "chelsea.png", "chelsea.png.json", "coffee", "coffee.json"])
            for stem in ["chelsea.jpg", "chelsea.png", "coffee"] {
                let records = try jsonArray("\(dir)/\(label)/\(stem).json")
                XCTAssertGreaterThan(records.count, 0, "\(label) \(stem)")
                try checkAMGFolder("\(dir)/\(label)/\(stem)", records: records)
            }
            // The single-image run on the same path writes the same masks.
            let single = try run(["everything", "\(input)/coffee.png"] + amg + route + ["--json", "\(dir)/\(label)-coffee.json"], timeout: 200)
            XCTAssertEqual(single.status, 0, single.output)
            let a = try jsonArray("\(dir)/\(label)/coffee.json"), b = try jsonArray("\(dir)/\(label)-coffee.json")
            XCTAssertEqual(segmentations(a), segmentations(b), "\(label): folder masks differ from the single-image run")
            XCTAssertEqual(a.map { $0["bbox"] as? [Int] ?? [] }, b.map { $0["bbox"] as? [Int] ?? [] })
        }
        // An image's folder that exists is not overwritten (amg.py: makedirs(exist_ok=False)), before any compute.
        let again = try run(["everything", input, "--in-process", "--out-dir", "\(dir)/local"], timeout: 30)
        XCTAssertEqual(again.status, 64, again.output)
        XCTAssertTrue(again.output.contains("exists"), again.output)
    }

    func testSegmentAndEmbedOnAFolderOrGlobEqualSingleImageRuns() throws {
        try Fixtures.requireCheckpoint()
        let (dir, input) = try makeFolder()
        let box = ["--box", "60,10,330,290"]
        func mask(_ path: String) throws -> BinaryMask { BinaryMask(try PNG.decodeRGB(contentsOfFile: path).gray()) }
        for (label, route) in [("local", ["--in-process"]), ("kafka", ["--timeout", "120"])] {
            // A quoted glob (expanded by segflow, not the shell).
            let batch = try run(["segment", "\(input)/*.png"] + box + route + ["--out-dir", "\(dir)/\(label)", "--overlays"], timeout: 200)
            XCTAssertEqual(batch.status, 0, batch.output)
            XCTAssertTrue(batch.output.contains("2 image(s), 0 failed"), batch.output)
            for stem in ["chelsea", "coffee"] {
                let single = try run(["segment", "\(input)/\(stem).png"] + box + route + ["--out", "\(dir)/\(label)-\(stem).png"], timeout: 200)
                XCTAssertEqual(single.status, 0, single.output)
                let m = try mask("\(dir)/\(label)/\(stem).png")
                XCTAssertGreaterThan(m.area, 1000)
                XCTAssertEqual(m, try mask("\(dir)/\(label)-\(stem).png"), "\(label) \(stem): folder mask differs from the single-image run")
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(label)/\(stem)_overlay.png"))
                let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(label)/\(stem).json"))) as? [String: Any]
                XCTAssertEqual(json?["model"] as? String, "litemedsam")
                XCTAssertNotNil((json?["timings_ms"] as? [String: Double])?["decode"], "\(label): no decode timing")
            }
        }
        for stem in ["chelsea", "coffee"] {  // f16 embeddings on the wire
            XCTAssertGreaterThanOrEqual(maskIoU(try mask("\(dir)/local/\(stem).png"), try mask("\(dir)/kafka/\(stem).png")), Self.wireVersusInProcessIoU)
        }
        // embed: a directory → STEM.sgfe each, equal to the single-image file.
        let emb = try run(["embed", input, "--out-dir", "\(dir)/emb", "--f16"], timeout: 200)
        XCTAssertEqual(emb.status, 0, emb.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/emb").sorted(), ["chelsea.jpg.sgfe", "chelsea.png.sgfe", "coffee.sgfe"])
        let one = try run(["embed", "\(input)/coffee.png", "--out", "\(dir)/coffee.sgfe", "--f16"], timeout: 200)
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/emb/coffee.sgfe")), try Data(contentsOf: URL(fileURLWithPath: "\(dir)/coffee.sgfe")))
        // Folders need --out-dir; a named non-image is an error naming it (not skipped).
        let noDir = try run(["segment", input] + box + ["--out", "\(dir)/x.png"], timeout: 30)
        XCTAssertEqual(noDir.status, 64, noDir.output)
        XCTAssertTrue(noDir.output.contains("--out-dir"), noDir.output)
        let named = try run(["segment", "\(input)/notes.txt", "\(input)/coffee.png", "--in-process"] + box + ["--out-dir", "\(dir)/never"], timeout: 30)
        XCTAssertEqual(named.status, 64, named.output)
        XCTAssertTrue(named.output.contains("notes.txt"), named.output)
    }

    /// ArgumentParser's convention on every command: 64 for usage errors whether the parser
    /// or the command's run found them (with that subcommand's usage line), 1 for run-time
    /// failures. Regression: `topics` without brokers printed the root's usage line, and a
    /// malformed --box exited 1 while a point outside the image exited 64.
    func testExitCodesAndUsageLinesAreConsistent() throws {
        let image = Fixtures.dir.appendingPathComponent("coffee.png").path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-exit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let usage: [([String], String, String)] = [
            (["topics"], "no brokers", "Usage: segflow topics"),
            (["segment", image, "--in-process", "--box", "1,2,3", "--out", "\(dir)/x.png"], "box '1,2,3'", "Usage: segflow segment"),
            (["segment", image, "--in-process", "--point", "1000,1", "--out", "\(dir)/x.png"], "outside the 600x400 image", "Usage: segflow segment"),
            (["segment", "\(dir)/missing.png", "--in-process", "--box", "1,2,3,4", "--out", "\(dir)/x.png"], "missing.png", "Usage: segflow segment"),
            (["segment", image, "--model", "nope", "--box", "1,2,3,4", "--out", "\(dir)/x.png"], "unknown model 'nope'", "Usage: segflow segment"),
            (["everything", image, "--model", "sam-vit-b", "--in-process", "--json", "\(dir)/x.json"], "needs a checkpoint", "Usage: segflow everything"),
            (["embed", image], "nothing to write", "Usage: segflow embed"),
            (["segment", image, "--box", "1,2,3,4", "--no-such-flag", "--out", "\(dir)/x.png"], "no-such-flag", "Usage: segflow segment"),
        ]
        for (args, message, line) in usage {
            let r = try run(args, timeout: 30)
            XCTAssertEqual(r.status, 64, "\(args.joined(separator: " ")): \(r.output)")
            XCTAssertTrue(r.output.contains(message), "\(args.joined(separator: " ")): \(r.output)")
            XCTAssertTrue(r.output.contains(line), "\(args.joined(separator: " ")): \(r.output)")
        }
        // A run-time failure: the checkpoint exists but is not one.
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.pt"))
        let bad = try run(["segment", image, "--model", "mobilesam", "--checkpoint", "\(dir)/bad.pt", "--in-process",
                           "--box", "1,2,30,40", "--out", "\(dir)/x.png"], timeout: 30)
        XCTAssertEqual(bad.status, 1, bad.output)
        XCTAssertFalse(bad.output.contains("Usage:"), bad.output)
    }

    /// The printed summary says which mask is the best one in words (it was an unexplained `*`).
    func testSegmentSummaryMarksTheBestMaskInWords() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-best-\(UUID().uuidString)").path
        let r = try run(["segment", Fixtures.dir.appendingPathComponent("chelsea.png").path, "--in-process", "--point", "200,150",
                         "--multimask", "--json", "\(dir)/r.json"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.output)
        let line = r.output.components(separatedBy: "\n").first { $0.hasPrefix("prompt 0:") } ?? ""
        XCTAssertEqual(line.components(separatedBy: "(best)").count, 2, "exactly one mask marked best: \(line)")
        XCTAssertFalse(line.contains("*"), line)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]
        let best = ((json?["prompts"] as? [[String: Any]])?.first?["best"] as? Int) ?? -1
        XCTAssertTrue(line.contains("[\(best)] ") && line.components(separatedBy: "[\(best)] ")[1].components(separatedBy: "  ")[0].hasSuffix("(best)"), line)
    }
}

extension CommandLineTests {
    /// LiteMedSAM + everything with upstream's thresholds keeps no masks: the run says so on
    /// stderr and names thresholds that keep masks; with those, no warning and masks.
    func testEverythingWarnsWhenTheModelIsOutOfItsDomain() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-domain-\(UUID().uuidString)").path
        let image = Fixtures.dir.appendingPathComponent("chelsea.png").path
        let defaults = try run(["everything", image, "--in-process", "--points-per-side", "8", "--json", "\(dir)/d.json"], timeout: 120)
        XCTAssertEqual(defaults.status, 0, defaults.output)
        XCTAssertTrue(defaults.output.contains("litemedsam is out of its domain for `everything`"), defaults.output)
        XCTAssertTrue(defaults.output.contains("--stability-score-thresh 0 and --pred-iou-thresh 0.2"), defaults.output)
        XCTAssertEqual(try jsonArray("\(dir)/d.json").count, 0)
        let advised = try run(["everything", image, "--in-process", "--points-per-side", "8", "--pred-iou-thresh", "0.2",
                               "--stability-score-thresh", "0", "--json", "\(dir)/a.json"], timeout: 120)
        XCTAssertEqual(advised.status, 0, advised.output)
        XCTAssertFalse(advised.output.contains("out of its domain"), advised.output)
        XCTAssertGreaterThan(try jsonArray("\(dir)/a.json").count, 0, "the advised thresholds kept no mask at 8 points per side")
    }
}

extension CommandLineTests {
    /// `track --json`: one schema in-process and over Kafka (COCO RLE, XYWH box from
    /// pycocotools' toBbox, area, predicted IoU), masks within the wire tolerance.
    func testTrackJSONHasOneSchemaOnEveryPath() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-trackjson-\(UUID().uuidString)").path
        let frames = ["chelsea.png", "chelsea.jpg", "chelsea.png"].map { Fixtures.dir.appendingPathComponent($0).path }
        var docs: [[String: Any]] = []
        for (label, route) in [("local", ["--in-process"]), ("kafka", ["--timeout", "120"])] {
            let r = try run(["track"] + frames + ["--box", "60,10,330,290", "--out-dir", "\(dir)/\(label)", "--json", "\(dir)/\(label).json"] + route,
                            timeout: 200)
            XCTAssertEqual(r.status, 0, r.output)
            docs.append(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(label).json"))) as? [String: Any] ?? [:])
        }
        for doc in docs {
            // Version 2 (multi-object) adds version, source and per-frame objects; a
            // single-object run keeps version 1's frame-level fields.
            XCTAssertEqual(doc.keys.sorted(), ["frames", "model", "source", "stream_id", "version"])
            XCTAssertEqual(doc["version"] as? Int, 2)
            let records = doc["frames"] as? [[String: Any]] ?? []
            XCTAssertEqual(records.count, 3)
            for (i, f) in records.enumerated() {
                XCTAssertEqual(f.keys.sorted(), ["area", "bbox", "file", "height", "index", "objects", "predicted_iou", "segmentation", "width"])
                let objects = f["objects"] as? [[String: Any]] ?? []
                XCTAssertEqual(objects.map { $0["id"] as? Int }, [1])
                XCTAssertEqual((objects.first?["segmentation"] as? [String: Any])?["counts"] as? String,
                               (f["segmentation"] as? [String: Any])?["counts"] as? String)
                XCTAssertEqual(f["index"] as? Int, i)
                XCTAssertEqual(f["file"] as? String, frames[i])
                let seg = f["segmentation"] as? [String: Any] ?? [:]
                let mask = try COCORLE(height: 300, width: 451, compressedCounts: seg["counts"] as? String ?? "").decode()
                XCTAssertEqual(mask.area, f["area"] as? Int)
                let b = COCORLE(mask: mask).boundingBox
                XCTAssertEqual(f["bbox"] as? [Int], [b.x, b.y, b.width, b.height], "bbox is XYWH")
            }
        }
        let a = (docs[0]["frames"] as? [[String: Any]] ?? []).map { try? COCORLE(height: 300, width: 451, compressedCounts: (($0["segmentation"] as? [String: Any])?["counts"] as? String) ?? "").decode() }
        let b = (docs[1]["frames"] as? [[String: Any]] ?? []).map { try? COCORLE(height: 300, width: 451, compressedCounts: (($0["segmentation"] as? [String: Any])?["counts"] as? String) ?? "").decode() }
        // Frame 0 is the user's box on both paths. Later frames differ by design until the
        // prompt-decoder runs ObjectTracker too: --in-process tracks with ObjectTracker, the
        // Kafka path still sends the legacy previous-logits-and-box prompt (README, Video).
        XCTAssert(a.allSatisfy { $0 != nil } && b.allSatisfy { $0 != nil }, "undecodable track mask")
        if let x = a.first ?? nil, let y = b.first ?? nil {
            XCTAssertGreaterThanOrEqual(maskIoU(x, y), Self.wireVersusInProcessIoU, "frame 0")
        }
    }
}

extension CommandLineTests {
    /// A folder holding an image over a broker record goes through Kafka like a single one
    /// (the batch path slices images too) and equals the in-process folder run.
    func testFolderWithAnImageLargerThanABrokerRecordWorksOverKafka() throws {
        try Fixtures.requireCheckpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-bigfolder-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        let (png, _) = try Self.bigNoisyChelsea()
        XCTAssertGreaterThan(png.count, 2_000_000)
        try Data(png).write(to: URL(fileURLWithPath: dir + "/in/big.png"))
        try FileManager.default.copyItem(atPath: Fixtures.dir.appendingPathComponent("chelsea.png").path, toPath: dir + "/in/chelsea.png")
        let box = ["--box", "60,10,330,290"]
        let kafka = try run(["segment", dir + "/in"] + box + ["--out-dir", dir + "/kafka", "--timeout", "120"], timeout: 200)
        XCTAssertEqual(kafka.status, 0, kafka.output)
        let local = try run(["segment", dir + "/in", "--in-process"] + box + ["--out-dir", dir + "/local"], timeout: 200)
        XCTAssertEqual(local.status, 0, local.output)
        for stem in ["big", "chelsea"] {
            let a = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/kafka/\(stem).png").gray())
            let b = BinaryMask(try PNG.decodeRGB(contentsOfFile: "\(dir)/local/\(stem).png").gray())
            XCTAssertGreaterThan(b.area, 1000)
            XCTAssertGreaterThanOrEqual(maskIoU(a, b), Self.wireVersusInProcessIoU, stem)
        }
    }
}
