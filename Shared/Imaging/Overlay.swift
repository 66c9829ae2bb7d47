/// An 8-bit RGB colour.
public struct RGBColor: Sendable, Equatable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r; self.g = g; self.b = b
    }
}

/// Renders masks on top of their image for a person to inspect.
public enum Overlay {
    /// Ten saturated, mutually distinct colours (matplotlib's "tab10"), cycled
    /// when there are more masks. Chosen over random colours so the same mask
    /// index has the same colour in every frame of a video.
    public static let palette: [RGBColor] = [
        RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40),
        RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(127, 127, 127),
        RGBColor(188, 189, 34), RGBColor(23, 190, 207),
    ]

    public struct Options: Sendable, Equatable {
        /// Weight of the mask colour in the blend (SAM's notebooks use 0.6; 0.5 keeps the image readable).
        public var alpha: Float
        /// Paint each mask's boundary in its colour at full opacity, so touching
        /// or overlapping masks stay distinguishable.
        public var outline: Bool
        /// Colours by mask index (cycled); defaults to `Overlay.palette`.
        public var colors: [RGBColor]

        public init(alpha: Float = 0.5, outline: Bool = true, colors: [RGBColor] = Overlay.palette) {
            self.alpha = alpha
            self.outline = outline
            self.colors = colors
        }
    }

    /// Blends each mask's colour into `image` (`out = (1-α)·pixel + α·colour`,
    /// rounded; masks applied in order, so later masks sit on top) and optionally
    /// outlines them. Every mask must match the image size.
    public static func render(_ image: RGBImage, masks: [BinaryMask], options: Options = Options()) throws(ImagingError) -> RGBImage {
        for mask in masks where mask.width != image.width || mask.height != image.height {
            throw .sizeMismatch(expectedWidth: image.width, expectedHeight: image.height, width: mask.width, height: mask.height)
        }
        let colors = options.colors.isEmpty ? palette : options.colors
        let alpha = min(max(options.alpha.isNaN ? 0.5 : options.alpha, 0), 1)
        let w = image.width, h = image.height
        var pixels = image.pixels
        for (index, mask) in masks.enumerated() {
            let color = colors[index % colors.count]
            let cr = Float(color.r) * alpha, cg = Float(color.g) * alpha, cb = Float(color.b) * alpha
            let keep = 1 - alpha
            for p in 0..<(w * h) where mask.bits[p] != 0 {
                pixels[p * 3] = UInt8((Float(pixels[p * 3]) * keep + cr).rounded())
                pixels[p * 3 + 1] = UInt8((Float(pixels[p * 3 + 1]) * keep + cg).rounded())
                pixels[p * 3 + 2] = UInt8((Float(pixels[p * 3 + 2]) * keep + cb).rounded())
            }
        }
        if options.outline {
            for (index, mask) in masks.enumerated() {
                let color = colors[index % colors.count]
                for p in boundary(of: mask) {
                    pixels[p * 3] = color.r; pixels[p * 3 + 1] = color.g; pixels[p * 3 + 2] = color.b
                }
            }
        }
        return RGBImage(uncheckedWidth: w, height: h, pixels: pixels)
    }

    /// Row-major indices of foreground pixels with a 4-neighbour that is background
    /// or outside the image (so masks touching the border are closed too).
    public static func boundary(of mask: BinaryMask) -> [Int] {
        let w = mask.width, h = mask.height
        var result: [Int] = []
        mask.bits.withUnsafeBufferPointer { bits in
            for y in 0..<h {
                for x in 0..<w where bits[y * w + x] != 0 {
                    let p = y * w + x
                    if x == 0 || y == 0 || x == w - 1 || y == h - 1
                        || bits[p - 1] == 0 || bits[p + 1] == 0 || bits[p - w] == 0 || bits[p + w] == 0 {
                        result.append(p)
                    }
                }
            }
        }
        return result
    }
}
