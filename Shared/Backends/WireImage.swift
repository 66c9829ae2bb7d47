import Imaging
import Messaging

/// The image of an `ImageRequest` → pixels, with the stable wire error codes. Every size
/// check is overflow-safe: field values come from whoever can write to the topic.
public enum WireImage {
    public static func decode(_ image: ImageRequest.Image, maxPixels: Int) throws(ServingError) -> RGBImage {
        switch image {
        case let .png(bytes):
            // PNG, JPEG or WebP, detected by content (the field predates JPEG and WebP).
            do { return try ImageDecoder.decodeRGB(bytes, options: .init(maxPixels: maxPixels)) } catch {
                if case .tooManyPixels = error { throw ServingError(.imageTooLarge, "\(error)") }
                throw ServingError(.invalidImage, "\(error)")
            }
        case let .raw(raw):
            let (w, h) = (Int(raw.width), Int(raw.height))
            guard w > 0, h > 0 else { throw ServingError(.invalidImage, "raw image has zero size \(w)x\(h)") }
            let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
            guard !overflow, pixels <= maxPixels else {
                throw ServingError(.imageTooLarge, "raw image \(w)x\(h) exceeds the limit of \(maxPixels) pixels")
            }
            guard raw.rgb8.count == pixels * 3 else {
                throw ServingError(.invalidImage, "raw image \(w)x\(h) needs \(pixels * 3) RGB bytes, got \(raw.rgb8.count)")
            }
            do { return try RGBImage(width: w, height: h, pixels: raw.rgb8) } catch { throw ServingError(.invalidImage, "\(error)") }
        }
    }
}
