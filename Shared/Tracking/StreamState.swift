/// One good sighting of an object: where it was, on which frame, how big its mask was.
public struct Observation: Sendable, Equatable {
    public var frameIndex: UInt64
    public var box: TrackBox
    public var area: UInt32
    public init(frameIndex: UInt64, box: TrackBox, area: UInt32) { self.frameIndex = frameIndex; self.box = box; self.area = area }
}

/// One object's memory. Its size is fixed by the config (history, shape memory,
/// appearance points, embedding channels), never by the number of frames seen.
public struct ObjectState: Sendable, Equatable {
    public var id: UInt32
    /// True after the object was judged lost and until it is re-acquired or corrected.
    public var isLost: Bool
    /// The last frame with an accepted mask.
    public var lastGoodFrame: UInt64
    /// Most recent good observations, oldest first (at most `motionHistory`).
    public var history: [Observation]
    /// Shape at the anchor (the user's prompt or correction), `shapeSide`² bits, packed.
    public var anchorShape: [UInt8]
    /// Recent unclipped shapes, oldest first (at most `shapeMemory`), packed.
    public var shapes: [[UInt8]]
    /// Appearance at the anchor and its running average: `appearancePoints`² × channels, int8.
    public var anchorAppearance: [Int8]
    public var recentAppearance: [Int8]
    /// How the user's box sat around the anchor mask's box (left, top, right, bottom
    /// outsets as fractions of that box's width/height): every later prompt box is the
    /// matched box with these outsets, so a loose user box stays as loose as drawn.
    public var promptOutsets: [Float] = [0, 0, 0, 0]

    /// Outsets are kept within these bounds (a box drawn far around its object says little more).
    static let outsetRange: ClosedRange<Float> = -0.45...2
}

/// Everything the tracker remembers about one stream: the frame size, the last frame
/// index and each object's state (sorted by id). `serialized()` is what a decoder
/// snapshots to the compacted stream-state topic.
public struct StreamState: Sendable, Equatable {
    public static let formatVersion: UInt16 = 1
    static let magic: [UInt8] = Array("SGTS".utf8)
    /// Hard caps checked when reading untrusted bytes (no allocation from a bad count).
    /// Boxes may extend past the frame, but not absurdly (a few frame sizes at most).
    static let maxCoordinate: Float = 4_194_304
    static let maxReadObjects = 4096, maxReadSide = 256, maxReadChannels = 4096, maxReadHistory = 256

    /// Frame size of the stream (0×0 before the first frame).
    public internal(set) var width: Int = 0
    public internal(set) var height: Int = 0
    public internal(set) var lastFrameIndex: UInt64?
    /// Layout the state was made with (from the config and the embedding).
    public internal(set) var shapeSide: Int = 0
    public internal(set) var appearancePoints: Int = 0
    public internal(set) var channels: Int = 0
    public internal(set) var objects: [ObjectState] = []

    public init() {}

    public var objectIDs: [UInt32] { objects.map(\.id) }
    public func object(_ id: UInt32) -> ObjectState? { objects.first { $0.id == id } }

    /// Removes an object (the stream's user is done with it); true if it existed.
    @discardableResult
    public mutating func removeObject(_ id: UInt32) -> Bool {
        guard let i = objects.firstIndex(where: { $0.id == id }) else { return false }
        objects.remove(at: i); return true
    }

    /// Size of `serialized()` in bytes: a header plus a per-object part bounded by the
    /// config — independent of how many frames the stream has seen.
    public var byteCount: Int {
        33 + objects.reduce(0) { $0 + Self.objectByteCount($1, shapeBytes: (shapeSide * shapeSide + 7) / 8) }
    }

    static func objectByteCount(_ o: ObjectState, shapeBytes: Int) -> Int {
        4 + 1 + 8 + 1 + o.history.count * 28 + shapeBytes + 1 + o.shapes.count * shapeBytes
            + 4 + o.anchorAppearance.count + o.recentAppearance.count + 16
    }

    /// Versioned little-endian binary: "SGTS", version, frame size, last frame, layout,
    /// then each object. Deterministic: equal states give equal bytes.
    public func serialized() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Self.magic); w.u16(Self.formatVersion)
        w.u32(UInt32(width)); w.u32(UInt32(height))
        w.u8(lastFrameIndex == nil ? 0 : 1); w.u64(lastFrameIndex ?? 0)
        w.u16(UInt16(shapeSide)); w.u16(UInt16(appearancePoints)); w.u16(UInt16(channels))
        w.u32(UInt32(objects.count))
        for o in objects {
            w.u32(o.id); w.u8(o.isLost ? 1 : 0); w.u64(o.lastGoodFrame)
            w.u8(UInt8(o.history.count))
            for h in o.history { w.u64(h.frameIndex); w.f32(h.box.x0); w.f32(h.box.y0); w.f32(h.box.x1); w.f32(h.box.y1); w.u32(h.area) }
            w.bytes(o.anchorShape)
            w.u8(UInt8(o.shapes.count)); for s in o.shapes { w.bytes(s) }
            w.u32(UInt32(o.anchorAppearance.count))
            w.bytes(o.anchorAppearance.map { UInt8(bitPattern: $0) }); w.bytes(o.recentAppearance.map { UInt8(bitPattern: $0) })
            for v in o.promptOutsets { w.f32(v) }
        }
        return w.out
    }

    /// Reads `serialized()` output. Any malformed input throws a TrackerStateError naming
    /// the field; nothing traps and nothing is allocated from an unchecked count.
    public init(serialized bytes: [UInt8]) throws(TrackerStateError) {
        var r = ByteReader(bytes)
        guard try r.bytes(4, "magic") == Self.magic else { throw .badMagic }
        let version = try r.u16("version")
        guard version == Self.formatVersion else { throw .unsupportedVersion(version) }
        width = Int(try r.u32("width")); height = Int(try r.u32("height"))
        guard width <= 1 << 20, height <= 1 << 20, (width == 0) == (height == 0) else { throw .invalidValue(field: "frame size") }
        let hasLast = try r.u8("last frame flag")
        guard hasLast <= 1 else { throw .invalidValue(field: "last frame flag") }
        let last = try r.u64("last frame index")
        guard hasLast == 1 || last == 0 else { throw .invalidValue(field: "last frame index") }
        lastFrameIndex = hasLast == 1 ? last : nil
        shapeSide = Int(try r.u16("shape side")); appearancePoints = Int(try r.u16("appearance points"))
        channels = Int(try r.u16("channels"))
        guard shapeSide <= Self.maxReadSide, appearancePoints <= Self.maxReadSide, channels <= Self.maxReadChannels else {
            throw .invalidValue(field: "layout")
        }
        let count = Int(try r.u32("object count"))
        guard count <= Self.maxReadObjects else { throw .invalidValue(field: "object count") }
        if count > 0 { guard shapeSide > 0, appearancePoints > 0, channels > 0 else { throw .invalidValue(field: "layout") } }
        let shapeBytes = (shapeSide * shapeSide + 7) / 8
        let appearanceCount = appearancePoints * appearancePoints * channels
        var previousID: UInt32?
        for _ in 0..<count {
            let id = try r.u32("object id")
            if let p = previousID, id <= p { throw .invalidValue(field: "object order (ids must increase)") }
            previousID = id
            let lost = try r.u8("object lost flag")
            guard lost <= 1 else { throw .invalidValue(field: "object lost flag") }
            let lastGood = try r.u64("object last good frame")
            let hc = Int(try r.u8("history count"))
            guard hc >= 1, hc <= Self.maxReadHistory else { throw .invalidValue(field: "history count") }
            var history: [Observation] = []
            for _ in 0..<hc {
                let f = try r.u64("observation frame")
                let b = TrackBox(x0: try r.f32("box"), y0: try r.f32("box"), x1: try r.f32("box"), y1: try r.f32("box"))
                let limit = Self.maxCoordinate
                guard [b.x0, b.y0, b.x1, b.y1].allSatisfy({ $0.isFinite && abs($0) <= limit }), b.x0 < b.x1, b.y0 < b.y1 else {
                    throw .invalidValue(field: "observation box")
                }
                history.append(Observation(frameIndex: f, box: b, area: try r.u32("observation area")))
            }
            guard zip(history, history.dropFirst()).allSatisfy({ $0.frameIndex < $1.frameIndex }) else {
                throw .invalidValue(field: "observation frame order")
            }
            let anchorShape = try r.bytes(shapeBytes, "anchor shape")
            let sc = Int(try r.u8("shape count"))
            guard sc <= Self.maxReadHistory else { throw .invalidValue(field: "shape count") }
            var shapes: [[UInt8]] = []
            for _ in 0..<sc { shapes.append(try r.bytes(shapeBytes, "shape")) }
            let ac = Int(try r.u32("appearance length"))
            guard ac == appearanceCount else { throw .invalidValue(field: "appearance length") }
            let anchorApp = try r.bytes(ac, "anchor appearance").map { Int8(bitPattern: $0) }
            let recentApp = try r.bytes(ac, "recent appearance").map { Int8(bitPattern: $0) }
            var outsets: [Float] = []
            for _ in 0..<4 {
                let v = try r.f32("prompt outset")
                guard ObjectState.outsetRange.contains(v) else { throw .invalidValue(field: "prompt outset") }
                outsets.append(v)
            }
            objects.append(ObjectState(id: id, isLost: lost == 1, lastGoodFrame: lastGood, history: history, anchorShape: anchorShape,
                                       shapes: shapes, anchorAppearance: anchorApp, recentAppearance: recentApp, promptOutsets: outsets))
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
    }
}

struct ByteWriter {
    var out: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { out += b }
    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
}

struct ByteReader {
    let data: [UInt8]
    var offset = 0
    init(_ data: [UInt8]) { self.data = data }
    var remaining: Int { data.count - offset }

    mutating func bytes(_ n: Int, _ field: String) throws(TrackerStateError) -> [UInt8] {
        guard n >= 0, n <= remaining else { throw .truncated(field: field, offset: offset) }
        defer { offset += n }
        return Array(data[offset..<(offset + n)])
    }
    mutating func uint(_ n: Int, _ field: String) throws(TrackerStateError) -> UInt64 {
        guard n <= remaining else { throw .truncated(field: field, offset: offset) }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(data[offset + i]) << (8 * UInt64(i)) }
        offset += n
        return v
    }
    mutating func u8(_ f: String) throws(TrackerStateError) -> UInt8 { UInt8(try uint(1, f)) }
    mutating func u16(_ f: String) throws(TrackerStateError) -> UInt16 { UInt16(try uint(2, f)) }
    mutating func u32(_ f: String) throws(TrackerStateError) -> UInt32 { UInt32(try uint(4, f)) }
    mutating func u64(_ f: String) throws(TrackerStateError) -> UInt64 { try uint(8, f) }
    mutating func f32(_ f: String) throws(TrackerStateError) -> Float { Float(bitPattern: try u32(f)) }
}
