import CPNG
import Foundation

/// Encoding uses libpng's simplified writer (`png_image_write_to_memory`), which
/// catches libpng's longjmp internally and reports failure through
/// `png_image.message`, so it is safe to call straight from Swift. All formats
/// written here are 8-bit, which the simplified API treats as sRGB and writes
/// without any sample conversion.
extension PNG {
    public static func encode(_ image: GrayImage) throws(ImagingError) -> [UInt8] {
        try write(pixels: image.pixels, width: image.width, height: image.height, format: 0 /* PNG_FORMAT_GRAY */)
    }

    public static func encode(_ image: RGBImage) throws(ImagingError) -> [UInt8] {
        try write(pixels: image.pixels, width: image.width, height: image.height, format: UInt32(PNG_FORMAT_FLAG_COLOR))
    }

    public static func encode(_ image: RGBAImage) throws(ImagingError) -> [UInt8] {
        try write(pixels: image.pixels, width: image.width, height: image.height,
                  format: UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA))
    }

    public static func write(_ image: GrayImage, toFile path: String) throws(ImagingError) {
        try writeFile(encode(image), path: path)
    }

    public static func write(_ image: RGBImage, toFile path: String) throws(ImagingError) {
        try writeFile(encode(image), path: path)
    }

    public static func write(_ image: RGBAImage, toFile path: String) throws(ImagingError) {
        try writeFile(encode(image), path: path)
    }

    /// Atomic write so a reader never sees a half-written PNG.
    static func writeFile(_ bytes: [UInt8], path: String) throws(ImagingError) {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .fileIO(path: path, reason: String(describing: error))
        }
    }

    /// `colormap` (with PNG_FORMAT_FLAG_COLORMAP in `format`): packed RGB entries; libpng
    /// writes them as the PLTE chunk, 8-bit indices when there are more than 16.
    static func write(pixels: [UInt8], width: Int, height: Int, format: UInt32, colormap: [UInt8]? = nil) throws(ImagingError) -> [UInt8] {
        // PNG dimensions are 31-bit; the image types already guarantee > 0.
        guard width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw .invalidDimensions(width: width, height: height)
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        image.colormap_entries = UInt32((colormap?.count ?? 0) / 3)
        // A first guess that fits almost everything (raw size + zlib/PNG overhead);
        // libpng reports the exact size needed if it does not.
        var capacity = pixels.count + pixels.count / 8 + 1024
        for _ in 0..<2 {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let ok = out.withUnsafeMutableBytes { dst in
                pixels.withUnsafeBytes { src in
                    if let colormap {
                        return colormap.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, 0, $0.baseAddress) }
                    }
                    return png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, 0, nil)
                }
            }
            if ok != 0 {
                out.removeSubrange(size...)
                png_image_free(&image)
                return out
            }
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            guard size > capacity else { throw .encodeFailed(message: message) }
            // Too small: libpng stored the required size; retry once with it.
            capacity = size
            image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(width)
            image.height = UInt32(height)
            image.format = format
            image.colormap_entries = UInt32((colormap?.count ?? 0) / 3)
        }
        throw .encodeFailed(message: "PNG output size kept growing")
    }
}
