import CZlib

/// gunzip through zlib: CLIP's BPE vocabulary ships as `bpe_simple_vocab_16e6.txt.gz` and is
/// kept byte-for-byte as upstream publishes it (1.3 MB instead of 1.7 MB, same sha256 as the
/// open_clip wheel), so it is decompressed once at load.
enum Gzip {
    /// Decompresses a whole gzip (or zlib) stream. Trailing bytes after the first member
    /// and truncated or corrupt input are errors, not silently shortened output.
    static func decompress(_ input: [UInt8]) throws(CLIPError) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 32: accept gzip or zlib headers (zlib.h, inflateInit2).
        // inflateInit2 is a C macro; Swift calls the function it expands to.
        let initStatus = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else { throw .vocabularyUnreadable(reason: "zlib inflateInit2 failed (\(initStatus))") }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status: Int32 = Z_OK
        var consumedAll = false
        input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(contentsOf: out.prefix(out.count - Int(stream.avail_out)))
                }
            } while status == Z_OK
            consumedAll = stream.avail_in == 0
        }
        guard status == Z_STREAM_END else {
            let reason = status == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip stream (zlib status \(status))"
            throw .vocabularyUnreadable(reason: reason)
        }
        guard consumedAll else { throw .vocabularyUnreadable(reason: "unexpected bytes after the gzip stream") }
        return output
    }
}
