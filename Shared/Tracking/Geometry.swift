/// An axis-aligned box in frame pixels, half-open: it covers x0 ≤ x < x1, y0 ≤ y < y1.
/// A tracked box may extend beyond the frame (an object partly out of view keeps its size).
public struct TrackBox: Sendable, Equatable, CustomStringConvertible {
    public var x0: Float, y0: Float, x1: Float, y1: Float
    public init(x0: Float, y0: Float, x1: Float, y1: Float) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }

    public var width: Float { x1 - x0 }
    public var height: Float { y1 - y0 }
    public var area: Float { max(0, width) * max(0, height) }
    public var centerX: Float { (x0 + x1) / 2 }
    public var centerY: Float { (y0 + y1) / 2 }
    public var description: String { "[\(x0), \(y0), \(x1), \(y1))" }

    init(center cx: Float, _ cy: Float, width w: Float, height h: Float) {
        self.init(x0: cx - w / 2, y0: cy - h / 2, x1: cx + w / 2, y1: cy + h / 2)
    }

    func clipped(width: Int, height: Int) -> TrackBox {
        TrackBox(x0: max(0, x0), y0: max(0, y0), x1: min(Float(width), x1), y1: min(Float(height), y1))
    }

    /// Fraction of the box inside a width×height frame.
    func visibleFraction(width: Int, height: Int) -> Float {
        let a = area
        return a > 0 ? clipped(width: width, height: height).area / a : 0
    }

    func isInside(width: Int, height: Int) -> Bool {
        x0 >= 0 && y0 >= 0 && x1 <= Float(width) && y1 <= Float(height)
    }

    /// SAM's box prompt convention (inclusive pixel corners, as `--box` and the old tracker use).
    var samBox: (x0: Float, y0: Float, x1: Float, y1: Float) {
        (x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))
    }

    func iou(_ o: TrackBox) -> Float {
        let ix = max(0, min(x1, o.x1) - max(x0, o.x0)), iy = max(0, min(y1, o.y1) - max(y0, o.y0))
        let inter = ix * iy, union = area + o.area - inter
        return union > 0 ? inter / union : 0
    }
}

/// Row-major 0/1 masks of the frame and small shape templates.
enum MaskOps {
    /// Tight half-open box of the foreground; nil when empty.
    static func box(_ bits: [UInt8], width: Int, height: Int) -> TrackBox? {
        var minX = width, minY = height, maxX = -1, maxY = -1
        bits.withUnsafeBufferPointer { p in
            for y in 0..<height {
                let row = y * width
                for x in 0..<width where p[row + x] != 0 {
                    if x < minX { minX = x }
                    if x > maxX { maxX = x }
                    if y < minY { minY = y }
                    if y > maxY { maxY = y }
                }
            }
        }
        guard maxX >= 0 else { return nil }
        return TrackBox(x0: Float(minX), y0: Float(minY), x1: Float(maxX + 1), y1: Float(maxY + 1))
    }

    static func area(_ bits: [UInt8]) -> Int { bits.reduce(0) { $0 + Int($1) } }

    static func iou(_ a: [UInt8], _ b: [UInt8]) -> Float {
        var inter = 0, union = 0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count {
                    let u = pa[i] | pb[i]
                    union += Int(u); inter += Int(pa[i] & pb[i])
                }
            }
        }
        return union == 0 ? 0 : Float(inter) / Float(union)
    }

    /// The mask inside `box` resampled to side×side (cell centres, nearest pixel; outside
    /// the frame counts as background): the object's shape free of position and scale.
    static func shape(_ bits: [UInt8], width: Int, height: Int, box: TrackBox, side: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: side * side)
        let sx = box.width / Float(side), sy = box.height / Float(side)
        for j in 0..<side {
            let y = Int((box.y0 + (Float(j) + 0.5) * sy).rounded(.down))
            guard y >= 0, y < height else { continue }
            for i in 0..<side {
                let x = Int((box.x0 + (Float(i) + 0.5) * sx).rounded(.down))
                if x >= 0, x < width, bits[y * width + x] != 0 { out[j * side + i] = 1 }
            }
        }
        return out
    }

    /// A shape template drawn into `box` on a width×height frame (clipped to the frame).
    static func render(_ shape: [UInt8], side: Int, box: TrackBox, width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height)
        guard box.width > 0, box.height > 0 else { return out }
        let xa = max(0, Int(box.x0.rounded(.down))), xb = min(width, Int(box.x1.rounded(.up)))
        let ya = max(0, Int(box.y0.rounded(.down))), yb = min(height, Int(box.y1.rounded(.up)))
        guard xa < xb, ya < yb else { return out }
        var cols = [Int](repeating: -1, count: xb - xa)
        for x in xa..<xb {
            let t = Int(((Float(x) + 0.5 - box.x0) / box.width * Float(side)).rounded(.down))
            if t >= 0, t < side { cols[x - xa] = t }
        }
        for y in ya..<yb {
            let tj = Int(((Float(y) + 0.5 - box.y0) / box.height * Float(side)).rounded(.down))
            guard tj >= 0, tj < side else { continue }
            for x in xa..<xb {
                let ti = cols[x - xa]
                if ti >= 0, shape[tj * side + ti] != 0 { out[y * width + x] = 1 }
            }
        }
        return out
    }

    /// Per-cell majority of equally sized templates (ties count as foreground).
    static func majority(_ shapes: [[UInt8]]) -> [UInt8] {
        guard let first = shapes.first else { return [] }
        var counts = [Int](repeating: 0, count: first.count)
        for s in shapes { for i in s.indices { counts[i] += Int(s[i]) } }
        return counts.map { 2 * $0 >= shapes.count ? 1 : 0 }
    }

    static func pack(_ bits: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for i in bits.indices where bits[i] != 0 { out[i >> 3] |= UInt8(1 << (i & 7)) }
        return out
    }

    static func unpack(_ packed: [UInt8], count: Int) -> [UInt8] {
        (0..<count).map { (packed[$0 >> 3] >> UInt8($0 & 7)) & 1 }
    }
}

/// Theil–Sen line fit: the median of pairwise slopes, then the median intercept. Robust to
/// a minority of bad observations (one wrong mask does not swing the prediction).
enum RobustLine {
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])
    }

    /// Value at `t` of the line through (ts, ys); constant for a single point.
    static func predict(ts: [Double], ys: [Double], at t: Double) -> Double {
        guard ts.count > 1 else { return ys[0] }
        var slopes: [Double] = []
        for i in 0..<ts.count { for j in (i + 1)..<ts.count where ts[j] != ts[i] { slopes.append((ys[j] - ys[i]) / (ts[j] - ts[i])) } }
        let slope = slopes.isEmpty ? 0 : median(slopes)
        let intercept = median(zip(ts, ys).map { $1 - slope * $0 })
        return intercept + slope * t
    }
}
