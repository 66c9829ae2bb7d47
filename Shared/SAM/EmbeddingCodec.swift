import Foundation
import Tensor

/// The binary form of an `ImageEmbedding`, used on the wire (Kafka) and in files
/// (`segflow embed --out`). Little-endian throughout:
///
/// ```
/// offset size  field
/// 0      4     magic "SGFE"
/// 4      2     format version (1)
/// 6      1     dtype: 0 = float32, 1 = float16 (IEEE binary16)
/// 7      1     model name length n (≤ 64, ASCII, e.g. "litemedsam")
/// 8      n     model name
/// 8+n    16    original height, original width, input height, input width (UInt32 each)
/// 24+n   1     rank r (4)
/// 25+n   4r    shape (UInt32 each), e.g. 1, 256, 64, 64
/// …      *     element data, row-major, count = product(shape) × (4 or 2) bytes
/// ```
/// f16 halves the size (SAM: 4 MiB → 2 MiB) at ~1e-3 relative precision per value.
public enum EmbeddingCodec {
    public enum DType: UInt8, Sendable, CaseIterable { case f32 = 0, f16 = 1 }
    public static let magic: [UInt8] = Array("SGFE".utf8)
    public static let version: UInt16 = 1
    /// Decoding rejects shapes with more elements than this (a 1024-channel 128×128 grid):
    /// a corrupt header must not make us allocate gigabytes.
    public static let maxElements = 1024 * 128 * 128

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case truncated(needed: Int, available: Int)
        case badMagic
        case unsupportedVersion(UInt16)
        case unknownDType(UInt8)
        case unknownModel(String)
        case badShape([Int])
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case let .truncated(n, a): "embedding is truncated: needs \(n) bytes, has \(a)"
            case .badMagic: "not a Segflow embedding (magic \"SGFE\" missing)"
            case let .unsupportedVersion(v): "embedding format version \(v) is not supported (this build reads 1)"
            case let .unknownDType(d): "embedding dtype \(d) is unknown (0 = f32, 1 = f16)"
            case let .unknownModel(m): "embedding is for unknown model '\(m)'"
            case let .badShape(s): "embedding shape \(s) is invalid"
            case let .trailingBytes(n): "embedding has \(n) unexpected trailing bytes"
            }
        }
    }

    public static func encode(_ e: ImageEmbedding, dtype: DType = .f32) -> [UInt8] {
        var out: [UInt8] = magic
        func u16(_ v: UInt16) { out += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: Int) { let x = UInt32(v); out += [UInt8(x & 0xff), UInt8((x >> 8) & 0xff), UInt8((x >> 16) & 0xff), UInt8(x >> 24)] }
        u16(version)
        out.append(dtype.rawValue)
        let name = Array(e.model.rawValue.utf8)
        out.append(UInt8(name.count))
        out += name
        u32(e.originalSize.height); u32(e.originalSize.width); u32(e.inputSize.height); u32(e.inputSize.width)
        out.append(UInt8(e.embedding.rank))
        for d in e.embedding.shape { u32(d) }
        let n = e.embedding.count
        switch dtype {
        case .f32:
            out.reserveCapacity(out.count + 4 * n)
            e.embedding.data.withUnsafeBytes { out += $0 }  // x86-64 and arm64 are little-endian
        case .f16:
            var halves = [UInt16](repeating: 0, count: n)
            for i in 0..<n { halves[i] = Float16(e.embedding.data[i]).bitPattern }
            halves.withUnsafeBytes { out += $0 }
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> (embedding: ImageEmbedding, dtype: DType) {
        var p = 0
        func need(_ k: Int) throws(DecodeError) { if bytes.count - p < k { throw .truncated(needed: p + k, available: bytes.count) } }
        func u8() throws(DecodeError) -> UInt8 { try need(1); defer { p += 1 }; return bytes[p] }
        func u16() throws(DecodeError) -> UInt16 { try need(2); defer { p += 2 }; return UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8 }
        func u32() throws(DecodeError) -> Int {
            try need(4); defer { p += 4 }
            return Int(bytes[p]) | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2]) << 16 | Int(bytes[p + 3]) << 24
        }
        try need(4)
        guard Array(bytes[0..<4]) == magic else { throw .badMagic }
        p = 4
        let v = try u16()
        guard v == version else { throw .unsupportedVersion(v) }
        let rawType = try u8()
        guard let dtype = DType(rawValue: rawType) else { throw .unknownDType(rawType) }
        let n = Int(try u8())
        try need(n)
        let name = String(decoding: bytes[p..<(p + n)], as: UTF8.self)
        p += n
        guard let model = SamModelKind(rawValue: name) else { throw .unknownModel(name) }
        let oh = try u32(), ow = try u32(), ih = try u32(), iw = try u32()
        let rank = Int(try u8())
        var shape: [Int] = []
        for _ in 0..<rank { shape.append(try u32()) }
        var count = 1
        for d in shape {
            let (m, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, d > 0, m <= maxElements else { throw .badShape(shape) }
            count = m
        }
        guard rank == 4, shape[0] == 1, oh > 0, ow > 0, ih > 0, iw > 0 else { throw .badShape(shape) }
        let width = dtype == .f32 ? 4 : 2
        try need(count * width)
        if bytes.count - p > count * width { throw .trailingBytes(bytes.count - p - count * width) }
        var data = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + p
            if dtype == .f32 {
                data.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: count * 4)) }
            } else {
                for i in 0..<count {
                    let bitsLE = UInt16(raw[p + 2 * i]) | UInt16(raw[p + 2 * i + 1]) << 8
                    data[i] = Float(Float16(bitPattern: bitsLE))
                }
            }
        }
        let emb = ImageEmbedding(model: model, embedding: Tensor(shape: shape, data: data),
                                 originalSize: (oh, ow), inputSize: (ih, iw))
        return (emb, dtype)
    }
}
