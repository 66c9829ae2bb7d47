import Synchronization

/// bfloat16 conversion: the top 16 bits of an IEEE-754 binary32 (8-bit exponent, 7 stored
/// + 1 implicit mantissa bits), rounded to nearest-even. Same rounding as oneDNN's and
/// PyTorch's `float → bfloat16` and as the AVX512_BF16 `vcvtneps2bf16` instruction.
public enum BF16 {
    /// Round-to-nearest-even; NaN stays a (quiet) NaN, ±Inf stays ±Inf.
    @inline(__always)
    public static func from(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if b & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: b >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    @inline(__always)
    public static func toFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// 8 lanes of `from` (same rounding and NaN handling).
    @inline(__always)
    static func from8(_ v: SIMD8<Float>) -> SIMD8<UInt16> {
        let b = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let rounded = (b &+ SIMD8(repeating: 0x7FFF) &+ ((b &>> 16) & SIMD8(repeating: 1))) &>> 16
        let r = select(rounded, nan: (b &>> 16) | SIMD8(repeating: 0x40), where: nanMask(b))
        return SIMD8<UInt16>(truncatingIfNeeded: r)
    }

    /// All ones in the lanes of `b` that hold a NaN, zeros elsewhere, by integer arithmetic:
    /// |b| > 0x7F800000 exactly for NaNs, and then 0x7F800000 − |b| wraps and has its top
    /// bit set (otherwise it is ≤ 0x7F800000, top bit clear); `signSpread` fills the lane. A lane comparison
    /// (`.>` then `replacing(with:where:)`) compiled to a per-lane store/reload loop here
    /// (store-forwarding stalls: 30 % of the SAM 2 bf16 encoder's time in perf).
    @inline(__always)
    static func nanMask<V: SIMD>(_ b: V) -> V where V.Scalar == UInt32 {
        signSpread(V(repeating: 0x7F80_0000) &- (b & V(repeating: 0x7FFF_FFFF)))
    }

    @inline(__always)
    static func signSpread<V: SIMD>(_ x: V) -> V where V.Scalar == UInt32 {
        // 0 − (x >> 31): 0x00000000 or 0xFFFFFFFF per lane.
        V(repeating: 0) &- (x &>> 31)
    }

    @inline(__always)
    static func select<V: SIMD>(_ a: V, nan: V, where mask: V) -> V where V.Scalar == UInt32 {
        (a & ~mask) | (nan & mask)
    }

    /// Converts `count` floats, 16 lanes at a time.
    static func convert(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<UInt16>, count: Int) {
        var i = 0
        let bias = SIMD16<UInt32>(repeating: 0x7FFF), one = SIMD16<UInt32>(repeating: 1)
        let quiet = SIMD16<UInt32>(repeating: 0x40)
        while i + 16 <= count {
            let b = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<UInt32>.self)
            let rounded = (b &+ bias &+ ((b &>> 16) & one)) &>> 16
            let r = select(rounded, nan: (b &>> 16) | quiet, where: nanMask(b))
            UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: r), as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < count { dst[i] = from(src[i]); i += 1 }
    }

    /// Converts a `rows × cols` block with row stride `ld` into a dense `rows × cols` buffer
    /// (row stride `cols`), in parallel for big blocks.
    static func convert(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, to dst: UnsafeMutablePointer<UInt16>) {
        if ld == cols {
            let total = rows * cols, chunk = 1 << 16
            let s = SendableConstPointer(src), d = SendablePointer(dst)
            Ops.parallelFor((total + chunk - 1) / chunk, costPerItem: chunk / 4) { c in
                let lo = c * chunk
                convert(s.base + lo, to: d.base + lo, count: min(chunk, total - lo))
            }
            return
        }
        let s = SendableConstPointer(src), d = SendablePointer(dst)
        Ops.parallelFor(rows, costPerItem: cols / 4) { r in convert(s.base + r * ld, to: d.base + r * cols, count: cols) }
    }

    /// Number of times a `GEMMWeight` made its bf16 copy since process start (tests check
    /// a model that loaded once converts each weight once).
    public static var weightConversions: Int { weightConversionCounter.load(ordering: .relaxed) }
    static let weightConversionCounter = Atomic<Int>(0)
}

/// A GEMM operand that never changes — a layer's weight — with a lazily made bf16 copy.
///
/// In bf16 precision the GEMM needs both operands in bf16. Activations are converted on
/// every call (they are new every call); a weight is converted the first time a bf16 GEMM
/// uses it and the copy is kept for the life of the layer, so a model that loaded once
/// pays the conversion once. In f32 precision no copy is ever made (no extra memory).
/// The cache is owned by the layer, never keyed by buffer address: a freed activation's
/// address can be reused by the allocator, a layer object cannot be confused with another.
public final class GEMMWeight: Sendable {
    public let tensor: Tensor
    private let bf16Copy = Mutex<[UInt16]?>(nil)

    public init(_ tensor: Tensor) { self.tensor = tensor }

    /// The weight in bf16, same shape and row-major layout; made once, on first use.
    public func bf16() -> [UInt16] {
        bf16Copy.withLock { copy in
            if let copy { return copy }
            let made = tensor.data.withUnsafeBufferPointer { src in
                [UInt16](unsafeUninitializedCapacity: src.count) { dst, n in
                    if let s = src.baseAddress, let d = dst.baseAddress { BF16.convert(s, rows: 1, cols: src.count, ld: src.count, to: d) }
                    n = src.count
                }
            }
            BF16.weightConversionCounter.add(1, ordering: .relaxed)
            copy = made
            return made
        }
    }

    /// Whether the bf16 copy exists (it is only made when a bf16 GEMM needs it).
    public var hasBF16Copy: Bool { bf16Copy.withLock { $0 != nil } }
}

/// A `GEMMWeight` seen as one GEMM operand: the matrix starting `offset` elements into it
/// (e.g. one group of a grouped convolution's weight). The leading dimension is the one
/// passed with the f32 pointer (the bf16 copy has the same layout).
struct PackedOperand {
    let weight: GEMMWeight
    let offset: Int
}
