import Foundation
import Imaging
import SAM
import XCTest

/// The tracker evaluation: real photographs with synthetic camera motion. Each frame is a
/// crop of the photograph (a window, resized to `frameSize` with PIL-exact bilinear when
/// the window is another size — a zoom); each object's ground truth is its mask on the full
/// photograph (Tests/Reference/make_tracking_fixtures.py: upstream LiteMedSAM from a tight
/// hand-chosen box, independent of the tracker) cropped by the same window (nearest pixel).
enum Evaluation {
    static let frameSize = (width: 320, height: 240)

    struct Window: Equatable { var x: Int, y: Int, width: Int, height: Int }

    struct Sequence {
        let name: String
        let photo: String
        let objects: [String]
        let windows: [Window]
    }

    struct Frame {
        let image: RGBImage
        /// Ground truth per object (same order as the sequence's objects).
        let truth: [BinaryMask]
    }

    static func lerp(_ a: Double, _ b: Double, _ t: Double) -> Double { a + (b - a) * t }
    static func round(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }

    /// Pan right along the cat's face, then back left and up (three objects).
    static let chelseaPan = Sequence(name: "chelsea-pan", photo: "chelsea", objects: ["left_eye", "right_eye", "nose"], windows: {
        let pts: [(Double, Double)] = [(40, 50), (131, 60), (30, 40)]
        return (0..<8).map { i in
            let t = Double(i) / 7 * 2, k = min(Int(t), 1), u = t - Double(k)
            return Window(x: round(lerp(pts[k].0, pts[k + 1].0, u)), y: round(lerp(pts[k].1, pts[k + 1].1, u)), width: 320, height: 240)
        }
    }())

    /// Zoom in (window 520 → 280 px wide) towards the cup and spoon while drifting right.
    static let coffeeZoom = Sequence(name: "coffee-zoom", photo: "coffee", objects: ["cup", "spoon"], windows: (0..<8).map { i in
        let t = Double(i) / 7
        let w = round(lerp(520, 280, t)), h = w * 3 / 4
        let cx = lerp(300, 330, t), cy = lerp(200, 180, t)
        return Window(x: round(cx - Double(w) / 2), y: round(cy - Double(h) / 2), width: w, height: h)
    })

    /// Pan and zoom together (window 480 → 340 px wide, moving right and down).
    static let astronautMix = Sequence(name: "astronaut-mix", photo: "astronaut", objects: ["helmet", "patch"], windows: (0..<8).map { i in
        let t = Double(i) / 7
        let w = round(lerp(480, 340, t)), h = w * 3 / 4
        return Window(x: round(lerp(0, 150, t)), y: round(lerp(Double(512 - 360), 200, t)), width: w, height: h)
    })

    /// The camera pans so that the spoon leaves the view on the right (frames 3–4 show none
    /// of it) and comes back (fully in view across again from frame 6).
    static let coffeeExit = Sequence(name: "coffee-exit", photo: "coffee", objects: ["spoon"],
                                     windows: [250, 160, 70, 0, 0, 70, 160, 250].map { Window(x: $0, y: 60, width: 320, height: 240) })

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let samFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SAMTests/Fixtures")

    static func photo(_ name: String) throws -> RGBImage {
        let dir = name == "astronaut" ? fixtures : samFixtures
        return try PNG.decodeRGB([UInt8](try Data(contentsOf: dir.appendingPathComponent("\(name).png"))))
    }

    static func truth(_ photo: String, _ object: String) throws -> BinaryMask {
        try BinaryMask(png: [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("gt_\(photo)_\(object).png"))))
    }

    static func crop(_ image: RGBImage, _ w: Window) throws -> RGBImage {
        var px = [UInt8](repeating: 0, count: w.width * w.height * 3)
        for y in 0..<w.height {
            let src = ((w.y + y) * image.width + w.x) * 3
            px.replaceSubrange((y * w.width * 3)..<((y + 1) * w.width * 3), with: image.pixels[src..<(src + w.width * 3)])
        }
        let (fw, fh) = frameSize
        if (w.width, w.height) == (fw, fh) { return try RGBImage(width: fw, height: fh, pixels: px) }
        return try RGBImage(width: fw, height: fh, pixels: PILResample.bilinear(px, width: w.width, height: w.height, channels: 3, toWidth: fw, toHeight: fh))
    }

    /// Nearest-pixel crop and resize: destination pixel i takes source x + floor((i + ½)·w / W).
    static func crop(_ mask: BinaryMask, _ w: Window) throws -> BinaryMask {
        let (fw, fh) = frameSize
        var bits = [UInt8](repeating: 0, count: fw * fh)
        for y in 0..<fh {
            let sy = w.y + (2 * y + 1) * w.height / (2 * fh)
            for x in 0..<fw {
                let sx = w.x + (2 * x + 1) * w.width / (2 * fw)
                bits[y * fw + x] = mask[sx, sy] ? 1 : 0
            }
        }
        return try BinaryMask(width: fw, height: fh, values: bits)
    }

    static func frames(_ s: Sequence) throws -> [Frame] {
        let image = try photo(s.photo)
        let truths = try s.objects.map { try truth(s.photo, $0) }
        return try s.windows.map { w in Frame(image: try crop(image, w), truth: try truths.map { try crop($0, w) }) }
    }

    static func iou(_ a: BinaryMask, _ b: BinaryMask) -> Float {
        var inter = 0, union = 0
        for (x, y) in zip(a.bits, b.bits) { inter += Int(x & y); union += Int(x | y) }
        return union == 0 ? 1 : Float(inter) / Float(union)  // both empty: the object is correctly absent
    }

    /// Tight box of a mask in SAM's inclusive convention (what a user would draw).
    static func tightBox(_ m: BinaryMask) -> (x0: Float, y0: Float, x1: Float, y1: Float) {
        let b = m.boundingBox
        return (Float(b.x), Float(b.y), Float(b.x + b.width - 1), Float(b.y + b.height - 1))
    }
}
