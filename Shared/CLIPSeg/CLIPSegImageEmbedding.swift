import Foundation
import Tensor

/// What the image-encoder service computes once per image for CLIPSeg: the vision
/// encoder's outputs at the `extract_layers` (class token included), which is all the
/// prompt decoder reads. The pooled output is not part of it — the decoder never uses it,
/// and leaving it out lets the encoder stop after the deepest extract layer.
public struct CLIPSegImageEmbedding: Sendable, Equatable {
    /// One `[1, 1 + gridHeight·gridWidth, hidden]` tensor per extract layer, shallowest first.
    public var activations: [Tensor]
    /// The 0-based encoder layers the activations come from.
    public var extractLayers: [Int]
    public var gridHeight: Int, gridWidth: Int
    /// Size of the photo before preprocessing (for resizing the mask back).
    public var originalHeight: Int, originalWidth: Int
    /// Size of the preprocessed model input.
    public var inputHeight: Int, inputWidth: Int

    public init(activations: [Tensor], extractLayers: [Int], gridHeight: Int, gridWidth: Int,
                originalHeight: Int, originalWidth: Int, inputHeight: Int, inputWidth: Int) {
        self.activations = activations; self.extractLayers = extractLayers
        self.gridHeight = gridHeight; self.gridWidth = gridWidth
        self.originalHeight = originalHeight; self.originalWidth = originalWidth
        self.inputHeight = inputHeight; self.inputWidth = inputWidth
    }

    // MARK: Binary form
    //
    // Little-endian throughout; one image per record:
    //
    // offset  size  field
    // 0       4     magic "SGCS"
    // 4       2     format version (1)
    // 6       1     dtype: 0 = float32, 1 = float16 (IEEE binary16)
    // 7       1     k = number of activations (1…64)
    // 8       16    original height, original width, input height, input width (UInt32 each)
    // 24      8     grid height, grid width (UInt32 each)
    // 32      4     hidden size D (UInt32)
    // 36      4k    extract layer indices (UInt32 each)
    // 36+4k   *     k × (1 + gh·gw) × D elements, activation after activation, row-major
    //
    // rd64-refined at 352²: 3 × 485 × 768 values = 4.47 MB f32, 2.2 MB f16.

    public enum DType: UInt8, Sendable, CaseIterable { case f32 = 0, f16 = 1 }
    public static let magic: [UInt8] = Array("SGCS".utf8)
    public static let formatVersion: UInt16 = 1
    /// A corrupt header must not make the decoder allocate gigabytes: 64 Mi values at most.
    public static let maxElements = 64 << 20

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case truncated(needed: Int, available: Int)
        case badMagic
        case unsupportedVersion(UInt16)
        case unknownDType(UInt8)
        case badHeader(String)
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case let .truncated(n, a): "CLIPSeg embedding is truncated: needs \(n) bytes, has \(a)"
            case .badMagic: "not a CLIPSeg embedding (magic \"SGCS\" missing)"
            case let .unsupportedVersion(v): "CLIPSeg embedding format version \(v) is not supported (this build reads 1)"
            case let .unknownDType(d): "CLIPSeg embedding dtype \(d) is unknown (0 = f32, 1 = f16)"
            case let .badHeader(why): "CLIPSeg embedding header is invalid: \(why)"
            case let .trailingBytes(n): "CLIPSeg embedding has \(n) unexpected trailing bytes"
            }
        }
    }

    public func encoded(dtype: DType = .f32) -> [UInt8] {
        precondition(!activations.isEmpty && activations.count == extractLayers.count && activations.count <= 64,
                     "embedding needs 1…64 activations, one per extract layer")
        let tokens = 1 + gridHeight * gridWidth, hidden = activations[0].shape.last ?? 0
        for a in activations { precondition(a.shape == [1, tokens, hidden], "activation \(a.shape) is not [1, \(tokens), \(hidden)]") }
        var out = Self.magic
        func u16(_ v: UInt16) { out += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func u32(_ v: Int) { let x = UInt32(v); out += [UInt8(x & 0xff), UInt8((x >> 8) & 0xff), UInt8((x >> 16) & 0xff), UInt8(x >> 24)] }
        u16(Self.formatVersion)
        out.append(dtype.rawValue)
        out.append(UInt8(activations.count))
        u32(originalHeight); u32(originalWidth); u32(inputHeight); u32(inputWidth)
        u32(gridHeight); u32(gridWidth); u32(hidden)
        for l in extractLayers { u32(l) }
        let n = tokens * hidden
        out.reserveCapacity(out.count + activations.count * n * (dtype == .f32 ? 4 : 2))
        for a in activations {
            switch dtype {
            case .f32:
                for v in a.data { u32Bits(v.bitPattern, into: &out) }
            case .f16:
                for v in a.data { let h = Float16(v).bitPattern; out += [UInt8(h & 0xff), UInt8(h >> 8)] }
            }
        }
        return out
    }

    @inline(__always)
    private func u32Bits(_ x: UInt32, into out: inout [UInt8]) {
        out += [UInt8(x & 0xff), UInt8((x >> 8) & 0xff), UInt8((x >> 16) & 0xff), UInt8(x >> 24)]
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> (embedding: CLIPSegImageEmbedding, dtype: DType) {
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
        guard v == formatVersion else { throw .unsupportedVersion(v) }
        let rawType = try u8()
        guard let dtype = DType(rawValue: rawType) else { throw .unknownDType(rawType) }
        let k = Int(try u8())
        guard (1...64).contains(k) else { throw .badHeader("\(k) activations (1…64 allowed)") }
        let oh = try u32(), ow = try u32(), ih = try u32(), iw = try u32()
        let gh = try u32(), gw = try u32(), hidden = try u32()
        guard oh > 0, ow > 0, ih > 0, iw > 0, gh > 0, gw > 0, hidden > 0 else {
            throw .badHeader("zero size (original \(oh)x\(ow), input \(ih)x\(iw), grid \(gh)x\(gw), hidden \(hidden))")
        }
        var layers: [Int] = []
        for _ in 0..<k { layers.append(try u32()) }
        // Each factor ≤ 2¹⁶ first, so the products below cannot overflow.
        guard gh <= 1 << 16, gw <= 1 << 16, hidden <= 1 << 16, k * (1 + gh * gw) * hidden <= maxElements else {
            throw .badHeader("\(k) × (1 + \(gh)·\(gw)) × \(hidden) values exceed the \(maxElements) limit")
        }
        let tokens = 1 + gh * gw
        let perActivation = tokens * hidden
        let width = dtype == .f32 ? 4 : 2
        try need(perActivation * k * width)
        if bytes.count - p > perActivation * k * width { throw .trailingBytes(bytes.count - p - perActivation * k * width) }
        var activations: [Tensor] = []
        for _ in 0..<k {
            var data = [Float](repeating: 0, count: perActivation)
            for i in 0..<perActivation {
                let q = p + i * width
                if dtype == .f32 {
                    let bits = UInt32(bytes[q]) | UInt32(bytes[q + 1]) << 8 | UInt32(bytes[q + 2]) << 16 | UInt32(bytes[q + 3]) << 24
                    data[i] = Float(bitPattern: bits)
                } else {
                    data[i] = Float(Float16(bitPattern: UInt16(bytes[q]) | UInt16(bytes[q + 1]) << 8))
                }
            }
            p += perActivation * width
            activations.append(Tensor(shape: [1, tokens, hidden], data: data))
        }
        let e = CLIPSegImageEmbedding(activations: activations, extractLayers: layers, gridHeight: gh, gridWidth: gw,
                                      originalHeight: oh, originalWidth: ow, inputHeight: ih, inputWidth: iw)
        return (e, dtype)
    }
}
