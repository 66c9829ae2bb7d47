import Foundation
import NN
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
        LittleEndian.append(version, to: &out)
        out.append(dtype.rawValue)
        let name = Array(e.model.rawValue.utf8)
        out.append(UInt8(name.count))
        out += name
        for v in [e.originalSize.height, e.originalSize.width, e.inputSize.height, e.inputSize.width] {
            LittleEndian.append(UInt32(v), to: &out)
        }
        out.append(UInt8(e.embedding.rank))
        for d in e.embedding.shape { LittleEndian.append(UInt32(d), to: &out) }
        out += dtype == .f32 ? LittleEndian.f32Bytes(e.embedding.data) : LittleEndian.f16Bytes(e.embedding.data)
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> (embedding: ImageEmbedding, dtype: DType) {
        var r = LittleEndian.Reader(bytes) { DecodeError.truncated(needed: $0, available: $1) }
        guard Array(try r.bytes(4)) == magic else { throw .badMagic }
        let v = try r.u16()
        guard v == version else { throw .unsupportedVersion(v) }
        let rawType = try r.u8()
        guard let dtype = DType(rawValue: rawType) else { throw .unknownDType(rawType) }
        let name = String(decoding: try r.bytes(Int(try r.u8())), as: UTF8.self)
        guard let model = SamModelKind(rawValue: name) else { throw .unknownModel(name) }
        let oh = try r.u32(), ow = try r.u32(), ih = try r.u32(), iw = try r.u32()
        let rank = Int(try r.u8())
        var shape: [Int] = []
        for _ in 0..<rank { shape.append(try r.u32()) }
        var count = 1
        for d in shape {
            let (m, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, d > 0, m <= maxElements else { throw .badShape(shape) }
            count = m
        }
        guard rank == 4, shape[0] == 1, oh > 0, ow > 0, ih > 0, iw > 0 else { throw .badShape(shape) }
        let width = dtype == .f32 ? 4 : 2
        try r.need(count * width)
        if r.remaining > count * width { throw .trailingBytes(r.remaining - count * width) }
        let raw = try r.bytes(count * width)
        let data = dtype == .f32 ? LittleEndian.floats(f32: raw, count: count) : LittleEndian.floats(f16: raw, count: count)
        let emb = ImageEmbedding(model: model, embedding: Tensor(shape: shape, data: data),
                                 originalSize: (oh, ow), inputSize: (ih, iw))
        return (emb, dtype)
    }
}
