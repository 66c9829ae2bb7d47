import Foundation
import Imaging
import Pipeline
import Video
import XCTest

/// Indexed-palette PNGs (DAVIS layout), the version-2 track JSON and TrackOutputs.
final class TrackOutputTests: XCTestCase {
    func testDAVISPaletteEqualsTheToolkitRule() throws {
        let golden = try JSONDecoder().decode([[Int]].self, from: Data(contentsOf: Fixtures.url("davis_palette.json")))
        XCTAssertEqual(golden.count, 256)
        XCTAssertEqual(DAVISPalette.colors.map { [Int($0.r), Int($0.g), Int($0.b)] }, golden)
        XCTAssertEqual(DAVISPalette.colors[1], RGBColor(128, 0, 0))
        XCTAssertEqual(DAVISPalette.colors[2], RGBColor(0, 128, 0))
        XCTAssertEqual(DAVISPalette.colors[4], RGBColor(0, 0, 128))
        XCTAssertEqual(Set(DAVISPalette.colors.map { [$0.r, $0.g, $0.b] }).count, 256, "entries are distinct")
    }

    /// Three overlapping object masks on an odd-sized frame.
    func objects(width: Int = 31, height: Int = 17) throws -> [(id: Int, mask: BinaryMask)] {
        func rect(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) throws -> BinaryMask {
            var v = [UInt8](repeating: 0, count: width * height)
            for y in y0..<y1 { for x in x0..<x1 { v[y * width + x] = 1 } }
            return try BinaryMask(width: width, height: height, values: v)
        }
        return [(3, try rect(10, 5, 25, 15)), (1, try rect(0, 0, 14, 9)), (7, try rect(20, 2, 31, 17))]
    }

    func testLabelMapLowestIDWinsWhereObjectsOverlap() throws {
        let map = try LabelMap(width: 31, height: 17, objects: try objects())
        XCTAssertEqual(map.labels[6 * 31 + 12], 1, "1 and 3 overlap: 1 wins")
        XCTAssertEqual(map.labels[10 * 31 + 22], 3, "3 and 7 overlap: 3 wins")
        XCTAssertEqual(map.labels[16 * 31 + 30], 7)
        XCTAssertEqual(map.labels[16 * 31 + 0], 0)
        XCTAssertThrowsError(try LabelMap(width: 31, height: 17, objects: [(256, try objects()[0].mask)])) { e in
            XCTAssertEqual(e as? ImagingError, .invalidLabel(256))
        }
        XCTAssertThrowsError(try LabelMap(width: 30, height: 17, objects: [(1, try objects()[0].mask)]))
    }

    /// Colour type 3, 8-bit, a 256-entry PLTE equal to the DAVIS palette, no tRNS; decoded
    /// pixels are palette[label] (the palette is injective, so the labels are exact).
    func testIndexedPNGLayout() throws {
        let map = try LabelMap(width: 31, height: 17, objects: try objects())
        let png = try PNG.encodeIndexed(map)
        // IHDR: width, height, bit depth, colour type right after the signature.
        XCTAssertEqual(Array(png[12..<16]), Array("IHDR".utf8))
        XCTAssertEqual(png[24], 8, "bit depth")
        XCTAssertEqual(png[25], 3, "colour type 3 (palette)")
        let chunks = Self.chunks(png)
        let plte = try XCTUnwrap(chunks.first { $0.type == "PLTE" }?.data)
        XCTAssertEqual(plte, DAVISPalette.colors.flatMap { [$0.r, $0.g, $0.b] })
        XCTAssertNil(chunks.first { $0.type == "tRNS" }, "no transparency: PIL keeps mode P without an alpha")
        let rgb = try PNG.decodeRGB(png)
        for (i, label) in map.labels.enumerated() {
            let c = DAVISPalette.colors[Int(label)]
            XCTAssertEqual([rgb.pixels[i * 3], rgb.pixels[i * 3 + 1], rgb.pixels[i * 3 + 2]], [c.r, c.g, c.b], "pixel \(i)")
        }
        XCTAssertThrowsError(try PNG.encodeIndexed(map, palette: Array(DAVISPalette.colors.prefix(5)))) { e in
            XCTAssertEqual(e as? ImagingError, .invalidPalette(count: 5))
        }
    }

    static func chunks(_ png: [UInt8]) -> [(type: String, data: [UInt8])] {
        var out: [(String, [UInt8])] = []
        var i = 8
        while i + 8 <= png.count {
            let n = Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3])
            let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            guard i + 12 + n <= png.count else { break }
            out.append((type, Array(png[(i + 8)..<(i + 8 + n)])))
            i += 12 + n
        }
        return out
    }

    func testTrackJSONVersion2KeepsVersion1FieldsForOneObject() throws {
        let objs = try objects()
        let single = TrackResult.Frame(index: 0, file: "f0.png", mask: objs[0].mask, predictedIoU: 0.9)
        let multi = TrackResult.Frame(index: 1, file: "v.mp4#1", pts: 0.04, width: 31, height: 17,
                                      objects: objs.map { TrackResult.Object(id: $0.id, mask: $0.mask, predictedIoU: nil) })
        let doc = TrackResult(model: "litemedsam", streamID: "s", source: .init(kind: "video", path: "v.mp4", frameRate: 25),
                              frames: [single, multi], lostAfterFrame: nil)
        let json = try JSONSerialization.jsonObject(with: doc.jsonData()) as? [String: Any] ?? [:]
        XCTAssertEqual(json["version"] as? Int, 2)
        let frames = json["frames"] as? [[String: Any]] ?? []
        XCTAssertEqual(frames[0].keys.sorted(), ["area", "bbox", "file", "height", "index", "objects", "predicted_iou", "segmentation", "width"])
        XCTAssertEqual(frames[1].keys.sorted(), ["file", "height", "index", "objects", "pts", "width"])
        XCTAssertEqual((frames[1]["objects"] as? [[String: Any]])?.map { $0["id"] as? Int }, [3, 1, 7])
        XCTAssertEqual(try JSONDecoder().decode(TrackResult.self, from: doc.jsonData()), doc)

        // A version-1 document (no version, no objects) reads as one object with id 1.
        let v1 = """
            {"model": "litemedsam", "stream_id": "s", "frames": [{"index": 0, "file": "a.png", "width": 2, "height": 1,
             "area": 1, "bbox": [0, 0, 1, 1], "predicted_iou": 0.5, "segmentation": {"size": [1, 2], "counts": "01"}}]}
            """
        let old = try JSONDecoder().decode(TrackResult.self, from: Data(v1.utf8))
        XCTAssertEqual(old.version, 1)
        XCTAssertEqual(old.frames[0].objects.map(\.id), [1])
        XCTAssertEqual(old.frames[0].objects[0].segmentation.counts, "01")
        XCTAssertThrowsError(try JSONDecoder().decode(TrackResult.self, from: Data(#"{"version": 3, "model": "m", "stream_id": "s", "frames": []}"#.utf8)))
    }

    /// TrackOutputs writes every output per frame; the overlay video reads back with the
    /// frame count; the palette PNGs hold the labels; the JSON's RLE decodes to the masks.
    func testTrackOutputsWriteEveryOutput() throws {
        let dir = try temporaryDirectory("trackoutputs")
        let frames = try panFrames(width: 31, height: 17, count: 4)
        let objs = try objects()
        let outputs = try TrackOutputs(options: .init(maskDir: "\(dir)/masks", overlays: true, paletteDir: "\(dir)/palette",
                                                      overlayVideo: "\(dir)/out/overlay.mp4", video: .init(frameRate: 10), json: "\(dir)/out/t.json"),
                                       model: "m", streamID: "s", source: .init(kind: "images"))
        for (i, f) in frames.enumerated() {
            let sf = SourceFrame(index: i, pts: nil, image: f, name: "f\(i).png", stem: "f\(i)", fileBytes: nil)
            try outputs.add(sf, objects: objs.map { TrackedObject(id: $0.id, mask: $0.mask, score: 0.5) })
        }
        let result = try outputs.finish(lostAfterFrame: nil)
        XCTAssertEqual(result.frames.count, 4)
        for i in 0..<4 {
            let union = try BinaryMask(png: [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/masks/mask_000\(i).png"))))
            XCTAssertEqual(union.area, try BinaryMask.union(objs.map(\.mask), width: 31, height: 17).area)
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/masks/overlay_000\(i).png"))
            let rgb = try PNG.decodeRGB(contentsOfFile: "\(dir)/palette/f\(i).png")
            let expected = try LabelMap(width: 31, height: 17, objects: objs)
            for p in 0..<(31 * 17) {
                let c = DAVISPalette.colors[Int(expected.labels[p])]
                XCTAssertEqual(rgb.pixels[p * 3], c.r); XCTAssertEqual(rgb.pixels[p * 3 + 1], c.g); XCTAssertEqual(rgb.pixels[p * 3 + 2], c.b)
            }
        }
        let video = try VideoReader(path: "\(dir)/out/overlay.mp4")
        XCTAssertEqual(try video.skipToEnd(), 4)
        XCTAssertEqual([video.info.width, video.info.height], [32, 18])
        let doc = try JSONDecoder().decode(TrackResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/t.json")))
        for f in doc.frames {
            XCTAssertEqual(f.objects.map(\.id), [1, 3, 7])
            for o in f.objects {
                let mask = try COCORLE(height: 17, width: 31, compressedCounts: o.segmentation.counts).decode()
                XCTAssertEqual(mask, objs.first { $0.id == o.id }!.mask)
            }
        }
    }
}
