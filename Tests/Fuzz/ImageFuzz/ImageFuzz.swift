// libFuzzer entry point for ImageDecoder (PNG, JPEG, WebP detected by content),
// built by Tests/Fuzz/run-image-fuzz.sh together with the Imaging sources (one
// module, so no `import Imaging`).
//
// Contract under test: any byte string either decodes to a consistent image or
// throws ImagingError; anything else (crash, ASan report, trap, leak) is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    // A small pixel limit keeps every run fast; the limit logic itself is exercised
    // because mutated SOF / VP8 / IHDR headers routinely declare huge sizes.
    let options = ImageDecoder.Options(maxPixels: 1 << 20)
    do {
        let image = try ImageDecoder.decodeRGB(bytes, options: options)
        precondition(image.width > 0 && image.height > 0 && image.width * image.height <= options.maxPixels)
        precondition(image.pixels.count == image.width * image.height * 3)
        // What decodes has a header that agrees with it.
        let header = try ImageDecoder.header(bytes)
        precondition(header.width == image.width && header.height == image.height, "header disagrees with the decoded size")
        precondition(ImageFormat.detect(bytes) == header.format)
        // And survives a PNG round trip unchanged.
        let again = try ImageDecoder.decodeRGB(PNG.encode(image), options: options)
        precondition(again == image, "PNG round trip changed pixels")
    } catch {
        _ = error.description
    }
    return 0
}
