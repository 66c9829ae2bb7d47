import Foundation
import Messaging
import Tensor

/// A tracker state too large for one record of a stock broker (SAM 2's memory banks: ~3.9 MB
/// per object at 1024²) travels as parts. Each part is its own compacted record — key
/// `<stream>\u{1F}<slot>.<k>`, a `StreamSnapshot` whose tracker state is
/// `SGPP | generation u64 | k u32 | bytes` — produced to the stream's own stream-state
/// partition before the stream's snapshot, whose tracker state is then the manifest
/// `SGSM | generation u64 | parts u32 | total bytes u64`. Generations alternate between two
/// slots: a crash while writing generation g+1 leaves generation g's parts intact, so the
/// latest complete snapshot always reassembles. The store reassembles when it applies the
/// manifest (parts precede it on the same partition).
public enum SnapshotParts {
    /// Unit separator: a stream id with it is refused (it would collide with part keys).
    public static let separator: Character = "\u{1F}"
    static let partMagic = Array("SGPP".utf8), manifestMagic = Array("SGSM".utf8)
    /// Bounds a forged manifest cannot exceed.
    static let maxParts = 4096, maxTotalBytes = 1 << 31

    public struct Manifest: Equatable, Sendable {
        public var generation: UInt64, parts: Int, totalBytes: Int
        public init(generation: UInt64, parts: Int, totalBytes: Int) { self.generation = generation; self.parts = parts; self.totalBytes = totalBytes }
    }

    public static func partKey(stream: String, generation: UInt64, part: Int) -> String {
        "\(stream)\(separator)\(generation % 2).\(part)"
    }

    /// The stream id a part key belongs to (nil: not a part key).
    public static func stream(ofPartKey key: String) -> String? {
        guard let i = key.lastIndex(of: separator) else { return nil }
        return String(key[..<i])
    }

    static func u64(_ v: UInt64, _ out: inout [UInt8]) {
        LittleEndian.append(UInt32(truncatingIfNeeded: v), to: &out); LittleEndian.append(UInt32(truncatingIfNeeded: v >> 32), to: &out)
    }

    /// Splits `state` into part payloads of at most `partBytes` state bytes and the manifest.
    public static func split(_ state: [UInt8], generation: UInt64, partBytes: Int) -> (parts: [[UInt8]], manifest: [UInt8]) {
        precondition(partBytes > 0)
        var parts: [[UInt8]] = []
        var k = 0
        for start in stride(from: 0, to: state.count, by: partBytes) {
            var p = partMagic
            u64(generation, &p)
            LittleEndian.append(UInt32(k), to: &p)
            p += state[start..<min(state.count, start + partBytes)]
            parts.append(p)
            k += 1
        }
        var m = manifestMagic
        u64(generation, &m)
        LittleEndian.append(UInt32(parts.count), to: &m)
        u64(UInt64(state.count), &m)
        return (parts, m)
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func reader(_ bytes: [UInt8]) -> LittleEndian.Reader<Malformed> {
        LittleEndian.Reader(bytes) { Malformed(description: "snapshot part truncated: needs \($0) bytes, has \($1)") }
    }

    /// The manifest in a snapshot's tracker state, or nil when the state is a whole one.
    public static func manifest(_ state: [UInt8]) throws -> Manifest? {
        guard state.count >= 4, Array(state.prefix(4)) == manifestMagic else { return nil }
        var r = reader(state)
        _ = try r.bytes(4)
        let gLo = UInt64(try r.u32()), gHi = UInt64(try r.u32())
        let g = gLo | gHi << 32
        let n = try r.u32()
        let tLo = try r.u32(), tHi = try r.u32()
        let total = tLo | tHi << 32
        guard n >= 1, n <= maxParts, total <= maxTotalBytes, r.remaining == 0 else {
            throw Malformed(description: "snapshot manifest: \(n) parts of \(total) bytes is out of bounds")
        }
        return Manifest(generation: g, parts: n, totalBytes: total)
    }

    /// (generation, part index, payload) of a part record's tracker state.
    public static func part(_ state: [UInt8]) throws -> (generation: UInt64, index: Int, payload: ArraySlice<UInt8>) {
        var r = reader(state)
        guard Array(try r.bytes(4)) == partMagic else { throw Malformed(description: "not a snapshot part (expected the SGPP header)") }
        let gLo = UInt64(try r.u32()), gHi = UInt64(try r.u32())
        let g = gLo | gHi << 32
        let k = try r.u32()
        return (g, k, state[r.position...])
    }
}
