import CPNG

/// The colour map of DAVIS and YouTube-VOS annotations: index 0 is black (background),
/// index k is object k. Entry i takes bits 0, 1, 2 of i (then of i >> 3, i >> 6, …) as the
/// most significant remaining bits of red, green and blue — the PASCAL VOC `labelcolormap`
/// rule the DAVIS toolkit ships: 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0), …
public enum DAVISPalette {
    public static let colors: [RGBColor] = (0..<256).map(color)

    public static func color(_ index: Int) -> RGBColor {
        var r = 0, g = 0, b = 0, c = index
        for j in 0..<8 {
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        }
        return RGBColor(UInt8(r), UInt8(g), UInt8(b))
    }
}

/// One label per pixel (0 = background, k = object k), as a DAVIS annotation stores it.
public struct LabelMap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Row-major, `width * height` labels.
    public private(set) var labels: [UInt8]

    public init(width: Int, height: Int, labels: [UInt8]) throws(ImagingError) {
        let expected = try checkedByteCount(width: width, height: height, channels: 1)
        guard labels.count == expected else { throw .bufferSizeMismatch(expected: expected, actual: labels.count) }
        self.width = width; self.height = height; self.labels = labels
    }

    /// Object masks painted into one map. Where objects overlap the lowest id wins — SAM 2's
    /// rule when it writes DAVIS-style PNGs (`put_per_obj_mask` in tools/vos_inference.py
    /// paints ids in descending order). Ids must be 1…255 (one palette index each).
    public init(width: Int, height: Int, objects: [(id: Int, mask: BinaryMask)]) throws(ImagingError) {
        let count = try checkedByteCount(width: width, height: height, channels: 1)
        var labels = [UInt8](repeating: 0, count: count)
        for (id, mask) in objects.sorted(by: { $0.id > $1.id }) {
            guard (1...255).contains(id) else { throw .invalidLabel(id) }
            guard mask.width == width, mask.height == height else {
                throw .sizeMismatch(expectedWidth: width, expectedHeight: height, width: mask.width, height: mask.height)
            }
            let bits = mask.bits
            for i in 0..<count where bits[i] != 0 { labels[i] = UInt8(id) }
        }
        self.width = width; self.height = height; self.labels = labels
    }

    /// The pixels labelled `id`.
    public func mask(_ id: Int) throws(ImagingError) -> BinaryMask {
        try BinaryMask(width: width, height: height, values: labels.map { Int($0) == id ? 1 : 0 })
    }
}

extension PNG {
    /// An indexed-colour PNG (colour type 3, 8-bit indices, a PLTE of `palette.count`
    /// entries, no transparency): what PIL opens as mode "P" with `getpalette()` equal to
    /// `palette` and `np.array(im)` equal to the labels. DAVIS/YouTube-VOS annotation files
    /// use this layout with the full 256-entry DAVISPalette (the default).
    public static func encodeIndexed(_ map: LabelMap, palette: [RGBColor] = DAVISPalette.colors) throws(ImagingError) -> [UInt8] {
        guard palette.count > 16, palette.count <= 256 else { throw .invalidPalette(count: palette.count) }
        if let top = map.labels.max(), Int(top) >= palette.count { throw .invalidLabel(Int(top)) }
        var colormap = [UInt8]()
        colormap.reserveCapacity(palette.count * 3)
        for c in palette { colormap += [c.r, c.g, c.b] }
        return try write(pixels: map.labels, width: map.width, height: map.height,
                         format: UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_COLORMAP), colormap: colormap)
    }

    public static func writeIndexed(_ map: LabelMap, palette: [RGBColor] = DAVISPalette.colors, toFile path: String) throws(ImagingError) {
        try writeFile(encodeIndexed(map, palette: palette), path: path)
    }
}
