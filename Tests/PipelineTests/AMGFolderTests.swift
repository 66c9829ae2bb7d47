import Foundation
import Imaging
import Pipeline
import SAM
import XCTest

final class AMGFolderTests: XCTestCase {
    func record(_ mask: BinaryMask, iou: Float, stability: Float, point: [Double], crop: [Int]) throws -> AutomaticMaskGenerator.MaskRecord {
        let rle = COCORLE(mask: mask)
        let b = mask.boundingBox
        return AutomaticMaskGenerator.MaskRecord(segmentation: .cocoRLE(rle), rle: rle, area: mask.area,
                                                 bbox: [b.x, b.y, b.width - 1, b.height - 1], predictedIoU: iou,
                                                 pointCoords: [point], stabilityScore: stability, cropBox: crop)
    }

    /// amg.py's header verbatim (segment-anything scripts/amg.py, write_masks_to_folder) and
    /// rows as Python's str() prints them.
    func testMetadataCSVMatchesAmgPy() throws {
        var m0 = try BinaryMask(width: 4, height: 3), m1 = try BinaryMask(width: 4, height: 3)
        m0[1, 1] = true; m0[2, 1] = true
        m1[0, 0] = true
        let records = [try record(m0, iou: 0.9876543, stability: 1, point: [14.0625, 2], crop: [0, 0, 4, 3]),
                       try record(m1, iou: 0.00001, stability: 0.5, point: [0.5, 0.25], crop: [0, 0, 4, 3])]
        let csv = AMGFolder.metadataCSV(records)
        let lines = csv.components(separatedBy: "\n")
        XCTAssertEqual(lines[0], "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h")
        // float32 0.9876543 widened to double, printed as Python's repr: 0.9876543283462524.
        XCTAssertEqual(lines[1], "0,2,1,1,1,0,14.0625,2.0,0.9876543283462524,1.0,0,0,4,3")
        XCTAssertEqual(lines[2], "1,1,0,0,0,0,0.5,0.25,9.999999747378752e-06,0.5,0,0,4,3")
        XCTAssertEqual(lines.count, 3)
        XCTAssertFalse(csv.hasSuffix("\n"), "amg.py joins lines with no final newline")
        XCTAssertEqual(AMGFolder.metadataCSV([]), AMGFolder.header)
    }

    func testPythonFloatRepr() {
        XCTAssertEqual(AMGFolder.pythonFloat(3), "3.0")
        XCTAssertEqual(AMGFolder.pythonFloat(0.0001), "0.0001")
        XCTAssertEqual(AMGFolder.pythonFloat(0.00001), "1e-05")
        XCTAssertEqual(AMGFolder.pythonFloat(1e16), "1e+16")
        XCTAssertEqual(AMGFolder.pythonFloat(9007199254740993), "9007199254740992.0")
        XCTAssertEqual(AMGFolder.pythonFloat(-2.5), "-2.5")
    }

    func testWritesOnePNGPerMaskAndTheCSV() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-amg-\(UUID().uuidString)/img").path
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        var m = try BinaryMask(width: 5, height: 4)
        m[4, 3] = true
        try AMGFolder.write([try record(m, iou: 0.5, stability: 0.75, point: [1, 2], crop: [0, 0, 5, 4])], to: dir)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["0.png", "metadata.csv"])
        let png = try PNG.decodeRGB(contentsOfFile: dir + "/0.png")
        XCTAssertEqual([png.width, png.height], [5, 4])
        XCTAssertEqual(png.pixels.filter { $0 == 255 }.count, 3)   // one pixel, R = G = B = 255
        XCTAssertEqual(try String(contentsOfFile: dir + "/metadata.csv", encoding: .utf8).components(separatedBy: "\n").count, 2)
    }
}
