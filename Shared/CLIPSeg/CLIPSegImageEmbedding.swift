import Foundation
import NN
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
        LittleEndian.append(Self.formatVersion, to: &out)
        out.append(dtype.rawValue)
        out.append(UInt8(activations.count))
        for v in [originalHeight, originalWidth, inputHeight, inputWidth, gridHeight, gridWidth, hidden] + extractLayers {
            LittleEndian.append(UInt32(v), to: &out)
        }
        for a in activations { out += dtype == .f32 ? LittleEndian.f32Bytes(a.data) : LittleEndian.f16Bytes(a.data) }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> (embedding: CLIPSegImageEmbedding, dtype: DType) {
        var r = LittleEndian.Reader(bytes) { DecodeError.truncated(needed: $0, available: $1) }
        guard Array(try r.bytes(4)) == magic else { throw .badMagic }
        let v = try r.u16()
        guard v == formatVersion else { throw .unsupportedVersion(v) }
        let rawType = try r.u8()
        guard let dtype = DType(rawValue: rawType) else { throw .unknownDType(rawType) }
        let k = Int(try r.u8())
        guard (1...64).contains(k) else { throw .badHeader("\(k) activations (1…64 allowed)") }
        let oh = try r.u32(), ow = try r.u32(), ih = try r.u32(), iw = try r.u32()
        let gh = try r.u32(), gw = try r.u32(), hidden = try r.u32()
        guard oh > 0, ow > 0, ih > 0, iw > 0, gh > 0, gw > 0, hidden > 0 else {
            throw .badHeader("zero size (original \(oh)x\(ow), input \(ih)x\(iw), grid \(gh)x\(gw), hidden \(hidden))")
        }
        var layers: [Int] = []
        for _ in 0..<k { layers.append(try r.u32()) }
        // Each factor ≤ 2¹⁶ first, so the products below cannot overflow.
        guard gh <= 1 << 16, gw <= 1 << 16, hidden <= 1 << 16, k * (1 + gh * gw) * hidden <= maxElements else {
            throw .badHeader("\(k) × (1 + \(gh)·\(gw)) × \(hidden) values exceed the \(maxElements) limit")
        }
        let tokens = 1 + gh * gw
        let perActivation = tokens * hidden
        let width = dtype == .f32 ? 4 : 2
        try r.need(perActivation * k * width)
        if r.remaining > perActivation * k * width { throw .trailingBytes(r.remaining - perActivation * k * width) }
        var activations: [Tensor] = []
        for _ in 0..<k {
            let raw = try r.bytes(perActivation * width)
            let data = dtype == .f32 ? LittleEndian.floats(f32: raw, count: perActivation) : LittleEndian.floats(f16: raw, count: perActivation)
            activations.append(Tensor(shape: [1, tokens, hidden], data: data))
        }
        let e = CLIPSegImageEmbedding(activations: activations, extractLayers: layers, gridHeight: gh, gridWidth: gw,
                                      originalHeight: oh, originalWidth: ow, inputHeight: ih, inputWidth: iw)
        return (e, dtype)
    }
}
