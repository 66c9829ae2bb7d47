import Foundation
import Imaging

/// Helpers of SAM's automatic mask generator, one function per upstream helper.
/// ref: segment_anything/utils/amg.py, torchvision/ops/boxes.py (batched_nms, box_area),
///      torchvision/csrc/ops/cpu/nms_kernel.cpp
///
/// Masks here are row-major bytes (0/1), as the model's logits are; RLEs are COCO's
/// column-major runs (`COCORLE`).
public enum AMG {
    /// An axis-aligned box in XYXY pixel coordinates, as upstream's int64 box tensors hold
    /// them. Boxes from masks have *inclusive* right/bottom edges (`batched_mask_to_box`);
    /// crop boxes have exclusive ones (`generate_crop_boxes`). Upstream mixes the two
    /// conventions and so does this port, on purpose.
    public struct Box: Sendable, Equatable, Hashable, CustomStringConvertible {
        public var x0: Int, y0: Int, x1: Int, y1: Int
        public init(x0: Int, y0: Int, x1: Int, y1: Int) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }

        /// [x0, y0, x1 - x0, y1 - y0]. ref: amg.py box_xyxy_to_xywh (no +1, as upstream)
        public var xywh: [Int] { [x0, y0, x1 - x0, y1 - y0] }
        /// ref: torchvision box_area: (x1 - x0) * (y1 - y0)
        public var area: Int { (x1 - x0) * (y1 - y0) }
        public var description: String { "[\(x0), \(y0), \(x1), \(y1)]" }
    }

    /// A point in pixels (or normalised to [0, 1] in a point grid); float64 as numpy holds it.
    public struct Point: Sendable, Equatable, Hashable {
        public var x: Double, y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
    }

    // MARK: - Point grids and crops

    /// `np.linspace(start, stop, num)` bit for bit: `i * step + start`, last element = stop.
    /// ref: numpy/_core/function_base.py linspace
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 0 else { return [] }
        let div = num - 1
        let delta = stop - start
        if div == 0 { return [start] }  // numpy: step = nan, y = [0] * delta + start
        let step = delta / Double(div)
        var y = (0..<num).map { step == 0 ? Double($0) / Double(div) * delta + start : Double($0) * step + start }
        y[num - 1] = stop
        return y
    }

    /// Evenly spaced n×n grid in [0,1]², x fastest. ref: amg.py build_point_grid
    public static func buildPointGrid(_ nPerSide: Int) -> [Point] {
        let offset = 1 / (2 * Double(nPerSide))
        let side = linspace(offset, 1 - offset, nPerSide)
        var points: [Point] = []
        points.reserveCapacity(nPerSide * nPerSide)
        for y in side { for x in side { points.append(Point(x: x, y: y)) } }
        return points
    }

    /// One grid per crop layer; layer i has int(n / scale^i) points per side.
    /// ref: amg.py build_all_layer_point_grids
    public static func buildAllLayerPointGrids(nPerSide: Int, nLayers: Int, scalePerLayer: Int) -> [[Point]] {
        (0...max(0, nLayers)).map { i in
            // Python: int(n_per_side / (scale_per_layer ** i)), true division then truncation.
            let nPoints = Int(Double(nPerSide) / pow(Double(scalePerLayer), Double(i)))
            return buildPointGrid(nPoints)
        }
    }

    /// The whole image, then (2^(i+1))² overlapping crops for each layer i, with the layer
    /// index of each. ref: amg.py generate_crop_boxes
    public static func generateCropBoxes(height imH: Int, width imW: Int, nLayers: Int,
                                         overlapRatio: Double) -> (boxes: [Box], layerIndexes: [Int]) {
        var boxes = [Box(x0: 0, y0: 0, x1: imW, y1: imH)]
        var layers = [0]
        let shortSide = min(imH, imW)
        func cropLen(_ origLen: Int, _ nCrops: Int, _ overlap: Int) -> Int {
            Int((Double(overlap * (nCrops - 1) + origLen) / Double(nCrops)).rounded(.up))
        }
        for iLayer in 0..<max(0, nLayers) {
            let nCropsPerSide = 1 << (iLayer + 1)
            let overlap = Int(overlapRatio * Double(shortSide) * (2 / Double(nCropsPerSide)))
            let cropW = cropLen(imW, nCropsPerSide, overlap)
            let cropH = cropLen(imH, nCropsPerSide, overlap)
            let x0s = (0..<nCropsPerSide).map { (cropW - overlap) * $0 }
            let y0s = (0..<nCropsPerSide).map { (cropH - overlap) * $0 }
            // itertools.product(x0s, y0s): x outer, y inner.
            for x0 in x0s {
                for y0 in y0s {
                    boxes.append(Box(x0: x0, y0: y0, x1: min(x0 + cropW, imW), y1: min(y0 + cropH, imH)))
                    layers.append(iLayer + 1)
                }
            }
        }
        return (boxes, layers)
    }

    // MARK: - Per-mask measurements

    /// IoU of the masks thresholded at `maskThreshold ± offset` (the higher one is always
    /// inside the lower one): count(> t + o) / count(> t - o); NaN for an empty low mask,
    /// as torch's 0/0. ref: amg.py calculate_stability_score
    public static func stabilityScore(_ logits: UnsafeBufferPointer<Float>, maskThreshold: Float,
                                      offset: Double) -> Float {
        // Python adds the two floats in double; torch compares a float32 tensor with that
        // scalar in float32.
        let hi = Float(Double(maskThreshold) + offset), lo = Float(Double(maskThreshold) - offset)
        var intersections = 0, unions = 0
        for v in logits {
            intersections &+= v > hi ? 1 : 0
            unions &+= v > lo ? 1 : 0
        }
        // int32 / int32 → float32 true division.
        return Float(intersections) / Float(unions)
    }

    /// Box around the foreground of a row-major 0/1 mask, XYXY with inclusive right/bottom
    /// edges; [0, 0, 0, 0] for an empty mask. ref: amg.py batched_mask_to_box
    public static func maskToBox(_ mask: UnsafeBufferPointer<UInt8>, width: Int, height: Int) -> Box {
        var left = width, top = height, right = -1, bottom = -1
        for y in 0..<height {
            let row = y * width
            var x = 0
            while x < width && mask[row + x] == 0 { x += 1 }
            guard x < width else { continue }
            var xr = width - 1
            while mask[row + xr] == 0 { xr -= 1 }
            if x < left { left = x }
            if xr > right { right = xr }
            if y < top { top = y }
            bottom = y
        }
        guard right >= left, bottom >= top else { return Box(x0: 0, y0: 0, x1: 0, y1: 0) }
        return Box(x0: left, y0: top, x1: right, y1: bottom)
    }

    public static func maskToBox(_ mask: [UInt8], width: Int, height: Int) -> Box {
        mask.withUnsafeBufferPointer { maskToBox($0, width: width, height: height) }
    }

    /// True when the box (in crop coordinates) lies within `atol` of a crop edge that is
    /// not also an edge of the original image. ref: amg.py is_box_near_crop_edge
    public static func isBoxNearCropEdge(_ box: Box, cropBox: Box, origBox: Box, atol: Float = 20) -> Bool {
        let b = uncrop(box, cropBox)
        let bs = [b.x0, b.y0, b.x1, b.y1], cs = [cropBox.x0, cropBox.y0, cropBox.x1, cropBox.y1]
        let os = [origBox.x0, origBox.y0, origBox.x1, origBox.y1]
        // torch.isclose(a, b, atol, rtol=0): |a - b| <= atol, in float32.
        for k in 0..<4 {
            let nearCrop = abs(Float(bs[k]) - Float(cs[k])) <= atol
            let nearImage = abs(Float(bs[k]) - Float(os[k])) <= atol
            if nearCrop && !nearImage { return true }
        }
        return false
    }

    /// ref: amg.py uncrop_boxes_xyxy
    public static func uncrop(_ box: Box, _ cropBox: Box) -> Box {
        Box(x0: box.x0 + cropBox.x0, y0: box.y0 + cropBox.y0, x1: box.x1 + cropBox.x0, y1: box.y1 + cropBox.y0)
    }

    /// ref: amg.py uncrop_points (float64 + int64 → float64)
    public static func uncrop(_ point: Point, _ cropBox: Box) -> Point {
        Point(x: point.x + Double(cropBox.x0), y: point.y + Double(cropBox.y0))
    }

    /// COCO RLE of a crop mask pasted at `cropBox` into an otherwise empty `origWidth`×
    /// `origHeight` mask, without building the padded mask.
    /// ref: amg.py uncrop_masks followed by mask_to_rle_pytorch
    public static func uncroppedRLE(_ mask: UnsafeBufferPointer<UInt8>, cropBox: Box,
                                    origWidth: Int, origHeight: Int) -> COCORLE {
        let cw = cropBox.x1 - cropBox.x0, ch = cropBox.y1 - cropBox.y0
        precondition(mask.count == cw * ch, "crop mask has \(mask.count) pixels, crop box \(cropBox) needs \(cw * ch)")
        var counts: [Int] = []
        var current: UInt8 = 0
        var run = 0
        for x in 0..<origWidth {
            let inX = x >= cropBox.x0 && x < cropBox.x1
            if !inX {
                if current != 0 { counts.append(run); run = 0; current = 0 }
                run += origHeight
                continue
            }
            // Rows above the crop are background.
            if cropBox.y0 > 0 {
                if current != 0 { counts.append(run); run = 0; current = 0 }
                run += cropBox.y0
            }
            var i = x - cropBox.x0
            for _ in 0..<ch {
                let v = mask[i]
                if v != current { counts.append(run); run = 0; current = v }
                run += 1
                i += cw
            }
            let below = origHeight - cropBox.y1
            if below > 0 {
                if current != 0 { counts.append(run); run = 0; current = 0 }
                run += below
            }
        }
        counts.append(run)
        // The runs cover origWidth × origHeight by construction.
        do {
            return try COCORLE(height: origHeight, width: origWidth, counts: counts)
        } catch {
            preconditionFailure("uncroppedRLE built an inconsistent RLE: \(error)")
        }
    }

    // MARK: - Non-maximum suppression

    /// Greedy NMS per category, torchvision semantics: boxes in order of decreasing score
    /// (ties: lower index first, as torchvision's stable sort in its CPU kernel), a box is
    /// dropped when its IoU with a kept box of the same category exceeds `iouThreshold`.
    /// IoU uses box_area's (x1 - x0) * (y1 - y0) on float32 coordinates, compared with the
    /// threshold in double as the C++ kernel does. Returns kept indices by decreasing score.
    /// Upstream's result order among exactly equal scores is only defined for ≤ 1000 boxes
    /// (above that torchvision re-sorts with an unstable sort); the kept set is the same.
    /// ref: torchvision/ops/boxes.py batched_nms; csrc/ops/cpu/nms_kernel.cpp nms_kernel_impl
    public static func batchedNMS(boxes: [Box], scores: [Float], categories: [Int], iouThreshold: Double) -> [Int] {
        precondition(boxes.count == scores.count && boxes.count == categories.count, "batchedNMS: array sizes differ")
        let n = boxes.count
        let order = (0..<n).sorted { a, b in
            scores[a] > scores[b] || (scores[a] == scores[b] && a < b)
        }
        let x0 = boxes.map { Float($0.x0) }, y0 = boxes.map { Float($0.y0) }
        let x1 = boxes.map { Float($0.x1) }, y1 = boxes.map { Float($0.y1) }
        let areas = (0..<n).map { (x1[$0] - x0[$0]) * (y1[$0] - y0[$0]) }
        var suppressed = [Bool](repeating: false, count: n)
        var keep: [Int] = []
        for (oi, i) in order.enumerated() {
            if suppressed[i] { continue }
            keep.append(i)
            for j in order[(oi + 1)...] where !suppressed[j] && categories[j] == categories[i] {
                let w = max(0, min(x1[i], x1[j]) - max(x0[i], x0[j]))
                let h = max(0, min(y1[i], y1[j]) - max(y0[i], y0[j]))
                let inter = w * h
                let ovr = inter / (areas[i] + areas[j] - inter)
                if Double(ovr) > iouThreshold { suppressed[j] = true }
            }
        }
        return keep
    }

    // MARK: - Small regions

    public enum RegionMode: Sendable { case holes, islands }

    /// Removes connected regions (8-connectivity) smaller than `areaThreshold`: background
    /// holes are filled (`.holes`) or foreground islands dropped (`.islands`; if every
    /// island is small the largest stays). Returns whether the mask changed.
    /// ref: amg.py remove_small_regions (cv2.connectedComponentsWithStats(…, 8))
    @discardableResult
    public static func removeSmallRegions(_ mask: inout [UInt8], width: Int, height: Int,
                                          areaThreshold: Double, mode: RegionMode) -> Bool {
        let correctHoles = mode == .holes
        // working_mask = (correct_holes ^ mask)
        let working = correctHoles ? mask.map { $0 == 0 ? 1 : 0 } : mask
        let (labels, sizes) = connectedComponents(working, width: width, height: height)
        // sizes[0] is the background label (working == 0).
        var small = [Bool](repeating: false, count: sizes.count)
        var anySmall = false
        for l in 1..<sizes.count where Double(sizes[l]) < areaThreshold { small[l] = true; anySmall = true }
        guard anySmall else { return false }
        // fill[l]: pixels with label l become foreground.
        var fill = [Bool](repeating: false, count: sizes.count)
        if correctHoles {
            fill[0] = true
            for l in 1..<sizes.count where small[l] { fill[l] = true }
        } else {
            var anyFill = false
            for l in 1..<sizes.count where !small[l] { fill[l] = true; anyFill = true }
            if !anyFill {
                // np.argmax: the first label of the largest size.
                var best = 1
                for l in 1..<sizes.count where sizes[l] > sizes[best] { best = l }
                fill[best] = true
            }
        }
        for p in 0..<mask.count { mask[p] = fill[Int(labels[p])] ? 1 : 0 }
        return true
    }

    /// 8-connected components of the non-zero pixels. Label 0 is the zero pixels; labels
    /// 1… are numbered in the order OpenCV's block-based labelling (BBDT/Spaghetti, 2×2
    /// blocks in raster order) first meets each component, so "first of the largest" ties
    /// resolve as upstream's np.argmax over cv2's stats does. Returns per-pixel labels and
    /// the pixel count of each label.
    public static func connectedComponents(_ mask: [UInt8], width: Int, height: Int) -> (labels: [Int32], sizes: [Int]) {
        var labels = [Int32](repeating: 0, count: width * height)
        var sizes = [mask.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }]
        var stack: [Int] = []
        mask.withUnsafeBufferPointer { m in
            labels.withUnsafeMutableBufferPointer { lab in
                func flood(_ start: Int, _ label: Int32) -> Int {
                    var count = 0
                    lab[start] = label
                    stack.append(start)
                    while let p = stack.popLast() {
                        count += 1
                        let y = p / width, x = p - y * width
                        for dy in -1...1 {
                            let ny = y + dy
                            guard ny >= 0 && ny < height else { continue }
                            for dx in -1...1 {
                                let nx = x + dx
                                guard nx >= 0 && nx < width else { continue }
                                let q = ny * width + nx
                                if m[q] != 0 && lab[q] == 0 { lab[q] = label; stack.append(q) }
                            }
                        }
                    }
                    return count
                }
                for by in stride(from: 0, to: height, by: 2) {
                    for bx in stride(from: 0, to: width, by: 2) {
                        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let y = by + dy, x = bx + dx
                            guard y < height && x < width else { continue }
                            let p = y * width + x
                            if m[p] != 0 && lab[p] == 0 {
                                sizes.append(flood(p, Int32(sizes.count)))
                            }
                        }
                    }
                }
            }
        }
        return (labels, sizes)
    }
}
