// libFuzzer entry point for VideoReader on in-memory input (libavformat probes the
// container, libavcodec decodes, libswscale converts), built by
// Tests/Fuzz/run-video-fuzz.sh with the reader's sources and Imaging in one module.
//
// Contract under test: any byte string either yields frames consistent with the
// limits and the stream info, or throws VideoError; anything else (crash, ASan report,
// trap, hang past libFuzzer's timeout) is a finding. The first byte picks the
// corrupt-data policy so both paths are explored.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVideo(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 1, let data else { return 0 }
    let policy: VideoReader.CorruptDataPolicy = data[0] & 1 == 0 ? .fail : .skip
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    // Small limits keep runs fast; mutated headers routinely declare huge sizes and counts.
    let options = VideoReader.Options(threads: 1, maxFrames: 64, maxPixels: 1 << 20, corruptData: policy)
    do {
        let reader = try VideoReader(data: bytes, name: "fuzz", options: options)
        precondition(reader.info.width > 0 && reader.info.height > 0)
        var n = 0
        while let frame = try reader.next() {
            precondition(frame.index == n, "frame indices must count up from 0")
            precondition(frame.image.width * frame.image.height <= options.maxPixels)
            precondition(frame.image.pixels.count == frame.image.width * frame.image.height * 3)
            n += 1
            precondition(n <= options.maxFrames)
        }
        precondition(reader.framesRead == n)
        let after = try reader.next()
        precondition(after == nil, "a finished reader stays finished")
    } catch {
        _ = error.description
    }
    return 0
}
