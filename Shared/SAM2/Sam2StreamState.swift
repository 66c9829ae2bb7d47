import Foundation
import Tensor

/// A SAM 2 stream's tracking state as versioned bytes (the stream-state topic's payload):
/// per object its id, whether it was present on the last frame, and its memory bank. Spatial
/// memories travel as the bfloat16 values upstream stores; their position encoding (the same
/// sine grid for every frame) and the low-res masks of non-conditioning frames are not kept.
public struct Sam2StreamState: Sendable, Equatable {
    public struct Object: Sendable, Equatable {
        public var id: UInt32
        public var present: Bool
        public var memory: Sam2ObjectState
        public init(id: UInt32, present: Bool = true, memory: Sam2ObjectState = Sam2ObjectState()) {
            self.id = id; self.present = present; self.memory = memory
        }
    }
    public var objects: [Object] = []
    public var lastFrame: Int?
    public init() {}

    static let magic: [UInt8] = Array("S2T1".utf8)
    /// Bounds checked before any allocation (a forged state names the field).
    static let maxObjects = 64, maxFrames = 4096, maxValues = 1 << 24

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case truncated(needed: Int, available: Int)
        case badMagic
        case bound(field: String, value: Int, limit: Int)
        public var description: String {
            switch self {
            case let .truncated(n, a): "SAM 2 stream state is truncated: needs \(n) bytes, has \(a)"
            case .badMagic: "not a SAM 2 stream state (expected the S2T1 header)"
            case let .bound(f, v, l): "SAM 2 stream state: \(f) = \(v) is over its bound \(l)"
            }
        }
    }

    public func serialized() -> [UInt8] {
        var out = Self.magic
        func u32(_ v: Int) { LittleEndian.append(UInt32(truncatingIfNeeded: v), to: &out) }
        func u64(_ v: Int) { u32(v & 0xffff_ffff); u32(v >> 32) }
        func f32(_ v: Float) { LittleEndian.append(v.bitPattern, to: &out) }
        func memory(_ m: Sam2FrameMemory, keepMask: Bool) {
            out.append((m.features != nil ? 1 : 0) | (keepMask ? 2 : 0))
            f32(m.objectScore)
            u32(m.objectPointer.count); for v in m.objectPointer { f32(v) }
            if keepMask { u32(m.lowResMask.shape.last ?? 0); for v in m.lowResMask.data { f32(v) } }
            if let f = m.features {
                u32(f.shape[0]); u32(f.shape[1])
                for v in f.data { LittleEndian.append(BF16.from(v), to: &out) }
            }
        }
        u64((lastFrame ?? -1) + 1)
        u32(objects.count)
        for o in objects {
            u32(Int(o.id)); out.append(o.present ? 1 : 0)
            u32(o.memory.conditioning.count)
            for (f, m) in o.memory.conditioning { u64(f); memory(m, keepMask: true) }
            let recent = o.memory.recent.sorted { $0.key < $1.key }
            u32(recent.count)
            for (f, m) in recent { u64(f); memory(m, keepMask: false) }
            let tracked = o.memory.tracked.sorted()
            u32(tracked.count); for f in tracked { u64(f) }
        }
        return out
    }

    /// - Parameter position: the memory position encoding ([g·g, memDim]) restored on every memory.
    public init(serialized bytes: [UInt8], position: Tensor) throws(DecodeError) {
        var r = LittleEndian.Reader<DecodeError>(bytes) { .truncated(needed: $0, available: $1) }
        guard Array(try r.bytes(4)) == Self.magic else { throw .badMagic }
        func count(_ field: String, _ limit: Int) throws(DecodeError) -> Int {
            let v = try r.u32()
            guard v <= limit else { throw .bound(field: field, value: v, limit: limit) }
            return v
        }
        func u64() throws(DecodeError) -> Int { let lo = try r.u32(), hi = try r.u32(); return lo | hi << 32 }
        func f32() throws(DecodeError) -> Float { Float(bitPattern: UInt32(try r.u32())) }
        func memory() throws(DecodeError) -> Sam2FrameMemory {
            let flags = try r.u8()
            let score = try f32()
            let c = try count("pointer width", 4096)
            var pointer = [Float](); pointer.reserveCapacity(c)
            for _ in 0..<c { pointer.append(try f32()) }
            var mask = Tensor(shape: [0], data: [])
            if flags & 2 != 0 {
                let side = try count("mask side", 1024)
                try r.need(side * side * 4)
                var v = [Float](); v.reserveCapacity(side * side)
                for _ in 0..<(side * side) { v.append(try f32()) }
                mask = Tensor(shape: [1, side, side], data: v)
            }
            var m = Sam2FrameMemory(lowResMask: mask, objectPointer: pointer, objectScore: score)
            if flags & 1 != 0 {
                let rows = try count("memory rows", Self.maxValues), cols = try count("memory width", 4096)
                guard rows * cols <= Self.maxValues else { throw .bound(field: "memory values", value: rows * cols, limit: Self.maxValues) }
                try r.need(rows * cols * 2)
                var v = [Float](); v.reserveCapacity(rows * cols)
                for _ in 0..<(rows * cols) { v.append(BF16.toFloat(try r.u16())) }
                m.features = Tensor(shape: [rows, cols], data: v)
                m.position = position
            }
            return m
        }
        let last = try u64()
        lastFrame = last == 0 ? nil : last - 1
        let n = try count("objects", Self.maxObjects)
        for _ in 0..<n {
            var o = Object(id: UInt32(try r.u32()), present: try r.u8() != 0)
            for _ in 0..<(try count("conditioning frames", Self.maxFrames)) { o.memory.conditioning.append((try u64(), try memory())) }
            for _ in 0..<(try count("recent frames", Self.maxFrames)) { let f = try u64(); o.memory.recent[f] = try memory() }
            for _ in 0..<(try count("tracked frames", Self.maxFrames)) { o.memory.tracked.insert(try u64()) }
            objects.append(o)
        }
        guard r.remaining == 0 else { throw .bound(field: "trailing bytes", value: r.remaining, limit: 0) }
    }
}
