import Foundation
import Imaging

/// An input image as the command line reads it: the file's bytes (sent as-is over Kafka)
/// and its pixels. PNG, JPEG and WebP are told apart by content, never by file name;
/// errors name the file and what was detected.
public struct ImageInput: Sendable {
    public var path: String
    public var bytes: [UInt8]
    public var image: RGBImage
    public var format: ImageFormat

    public init(path: String, bytes: [UInt8], image: RGBImage, format: ImageFormat) {
        self.path = path; self.bytes = bytes; self.image = image; self.format = format
    }

    public static func read(_ path: String, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws(PipelineError) -> ImageInput {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path: path, reason: "no such file or not readable")
        }
        let bytes = [UInt8](data)
        do {
            let header = try ImageDecoder.header(bytes)
            let image = try ImageDecoder.decodeRGB(bytes, options: .init(maxPixels: maxPixels))
            return ImageInput(path: path, bytes: bytes, image: image, format: header.format)
        } catch {
            throw .unreadableFile(path: path, reason: "\(error)")
        }
    }
}

/// An input file checked without decoding its pixels: the bytes (what travels over
/// Kafka) and the header, so a folder's sizes and formats are validated before any
/// compute and pixels are decoded one image at a time.
public struct ImageFile: Sendable {
    public var path: String
    public var bytes: [UInt8]
    public var header: ImageDecoder.Header

    public static func read(_ path: String, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws(PipelineError) -> ImageFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path: path, reason: "no such file or not readable")
        }
        let bytes = [UInt8](data)
        let header: ImageDecoder.Header
        do { header = try ImageDecoder.header(bytes) } catch { throw .unreadableFile(path: path, reason: "\(error)") }
        guard header.pixelCount <= maxPixels else {
            throw .unreadableFile(path: path, reason: "\(header.format) of \(header.width)x\(header.height) pixels exceeds the limit of \(maxPixels)")
        }
        return ImageFile(path: path, bytes: bytes, header: header)
    }

    /// The pixels (PIL's `convert("RGB")`); errors name the file and its format.
    public func decode(maxPixels: Int = ImageDecoder.defaultMaxPixels) throws(PipelineError) -> RGBImage {
        do { return try ImageDecoder.decodeRGB(bytes, options: .init(maxPixels: maxPixels)) } catch {
            throw .unreadableFile(path: path, reason: "\(header.format): \(error)")
        }
    }
}
