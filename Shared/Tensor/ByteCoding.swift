/// Little-endian byte coding shared by Segflow's binary formats (embedding files, wire
/// tensors): float32/float16 arrays and a bounds-checked header reader.
public enum LittleEndian {
    /// float32 values → IEEE binary16 little-endian bytes (round to nearest even).
    public static func f16Bytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 2)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<v.count {
                    let h = Float16(v[i]).bitPattern
                    o[2 * i] = UInt8(h & 0xff); o[2 * i + 1] = UInt8(h >> 8)
                }
            }
        }
        return out
    }

    /// float32 values → their little-endian bytes.
    public static func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }  // every supported platform is little-endian
    }

    /// The first `count` binary16 values of `bytes` → float32.
    public static func floats(f16 bytes: some Collection<UInt8>, count: Int) -> [Float] {
        let b = Array(bytes)
        precondition(b.count >= 2 * count, "\(b.count) bytes cannot hold \(count) float16 values")
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count { out[i] = Float(Float16(bitPattern: UInt16(b[2 * i]) | UInt16(b[2 * i + 1]) << 8)) }
        return out
    }

    /// `count` float32 values from little-endian bytes.
    public static func floats(f32 bytes: some Collection<UInt8>, count: Int) -> [Float] {
        let b = Array(bytes)
        precondition(b.count >= 4 * count, "\(b.count) bytes cannot hold \(count) float32 values")
        var out = [Float](repeating: 0, count: count)
        b.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<(4 * count)])) }
        }
        return out
    }

    public static func append(_ v: UInt16, to out: inout [UInt8]) { out += [UInt8(v & 0xff), UInt8(v >> 8)] }

    public static func append(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]
    }

    /// Reads a header field by field; running out of bytes throws the caller's own error.
    public struct Reader<Failure: Error> {
        public let bytes: [UInt8]
        public private(set) var position = 0
        let truncated: (_ needed: Int, _ available: Int) -> Failure

        public init(_ bytes: [UInt8], truncated: @escaping (_ needed: Int, _ available: Int) -> Failure) {
            self.bytes = bytes
            self.truncated = truncated
        }

        public var remaining: Int { bytes.count - position }

        public func need(_ k: Int) throws(Failure) {
            if bytes.count - position < k { throw truncated(position + k, bytes.count) }
        }

        public mutating func bytes(_ k: Int) throws(Failure) -> ArraySlice<UInt8> {
            try need(k)
            defer { position += k }
            return bytes[position..<(position + k)]
        }

        public mutating func u8() throws(Failure) -> UInt8 { try need(1); defer { position += 1 }; return bytes[position] }

        public mutating func u16() throws(Failure) -> UInt16 {
            try need(2); defer { position += 2 }
            return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8
        }

        public mutating func u32() throws(Failure) -> Int {
            try need(4); defer { position += 4 }
            return Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16 | Int(bytes[position + 3]) << 24
        }
    }
}
