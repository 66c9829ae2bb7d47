import Foundation
import Imaging
import SAM

/// segment-anything's `scripts/amg.py` folder layout for one image's automatic masks:
/// `DIR/0.png, 1.png, …` (0/255 masks, generator order) and `DIR/metadata.csv`.
/// ref: segment-anything scripts/amg.py, write_masks_to_folder.
public enum AMGFolder {
    /// amg.py's header, verbatim.
    public static let header = "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h"

    /// metadata.csv's text: the header and one row per mask, numbers printed as Python's
    /// `str()` prints them (ints plain, floats as the shortest repr of the double — the
    /// scores are float32 widened as torch's `.item()` does), lines joined by "\n" with no
    /// final newline, as amg.py writes it.
    public static func metadataCSV(_ records: [AutomaticMaskGenerator.MaskRecord]) -> String {
        var lines = [header]
        for (i, r) in records.enumerated() {
            let point = r.pointCoords.first ?? []
            let fields: [String] = [String(i), String(r.area)] + r.bbox.map { String($0) }
                + point.map(pythonFloat)
                + [pythonFloat(Double(r.predictedIoU)), pythonFloat(Double(r.stabilityScore))]
                + r.cropBox.map { String($0) }
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }

    /// Python's `repr(float)`: shortest round-trip digits, ".0" on integral values,
    /// exponent form below 1e-4 and from 1e16. Swift's `description` is the same shortest
    /// round-trip algorithm with the same forms, except that it switches to the exponent
    /// form at 2^53 instead of 1e16.
    public static func pythonFloat(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf") }
        if abs(v) >= 9007199254740992, abs(v) < 1e16 { return String(format: "%.1f", v) }
        return "\(v)"
    }

    /// Writes `dir/i.png` per mask and `dir/metadata.csv`, creating `dir`.
    public static func write(_ records: [AutomaticMaskGenerator.MaskRecord], to dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw PipelineError.badArgument("cannot create the output directory \(dir): \((error as NSError).localizedDescription)")
        }
        for (i, r) in records.enumerated() {
            let mask = try r.rle.decode()
            try PNG.write(mask.grayImage(), toFile: (dir as NSString).appendingPathComponent("\(i).png"))
        }
        try Data(metadataCSV(records).utf8).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("metadata.csv")))
    }
}
