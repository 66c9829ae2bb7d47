// libFuzzer entry point for the PNG decoder, built by Tests/Fuzz/run-png-fuzz.sh
// together with the Imaging sources (one module, so no `import Imaging`).
//
// Contract under test: any byte string either decodes to a consistent image or
// throws ImagingError; anything else (crash, ASan report, trap) is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    // A small pixel limit keeps every run fast; the limit logic itself is exercised
    // because mutated IHDRs routinely declare huge sizes.
    let options = PNG.DecodeOptions(maxPixels: 1 << 20)
    do {
        let image = try PNG.decodeRGB(bytes, options: options)
        precondition(image.width > 0 && image.height > 0 && image.width * image.height <= options.maxPixels)
        precondition(image.pixels.count == image.width * image.height * 3)
        // Whatever decodes must re-encode and decode to the same pixels.
        let again = try PNG.decodeRGB(PNG.encode(image), options: options)
        precondition(again == image, "re-encode round trip changed pixels")
    } catch {
        _ = error.description
    }
    return 0
}
