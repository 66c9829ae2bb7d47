import CPNGSupport

/// Owns one `segflow_png_reader` (the C shim around libpng's full read API).
/// The only Swift code that touches libpng read pointers; the borrowed input
/// buffer must outlive the reader, which callers guarantee by scoping both in
/// one `withUnsafeBufferPointer`.
final class PNGReader {
    struct Layout {
        let channels: Int
        let bitDepth: Int
        let rowBytes: Int
    }

    private let handle: OpaquePointer
    private let inputCount: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) throws(ImagingError) {
        guard let base = bytes.baseAddress, let handle = segflow_png_reader_create(base, bytes.count) else {
            if bytes.isEmpty { throw .emptyInput }
            throw .outOfMemory
        }
        self.handle = handle
        self.inputCount = bytes.count
    }

    deinit {
        segflow_png_reader_destroy(handle)
    }

    private func failure() -> ImagingError {
        let message = String(cString: segflow_png_reader_message(handle))
        if segflow_png_reader_truncated(handle) != 0 {
            return .truncated(byteCount: inputCount, message: message)
        }
        return .corrupt(message: message)
    }

    func readHeader() throws(ImagingError) -> PNG.Header {
        var h = segflow_png_header()
        guard segflow_png_read_header(handle, &h) == 0 else { throw failure() }
        return PNG.Header(width: Int(h.width), height: Int(h.height), bitDepth: Int(h.bit_depth),
                          colorType: Int(h.color_type), interlaced: h.interlaced != 0)
    }

    func prepare() throws(ImagingError) -> Layout {
        var l = segflow_png_layout()
        guard segflow_png_prepare(handle, &l) == 0 else { throw failure() }
        guard (1...4).contains(l.channels), l.bit_depth == 8 || l.bit_depth == 16 else {
            throw .corrupt(message: "unexpected decoded layout: \(l.channels) channels, \(l.bit_depth) bits")
        }
        return Layout(channels: Int(l.channels), bitDepth: Int(l.bit_depth), rowBytes: Int(l.row_bytes))
    }

    func readPixels(into buffer: UnsafeMutableBufferPointer<UInt8>) throws(ImagingError) {
        guard let base = buffer.baseAddress,
              segflow_png_read_pixels(handle, base, buffer.count) == 0 else { throw failure() }
    }
}
