import Foundation

// Elementwise arithmetic with NumPy/PyTorch broadcasting, scalar ops and reductions.

extension Ops {
    /// Broadcast result shape of two shapes (right-aligned; size-1 axes stretch).
    /// ref: torch.broadcast_shapes
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Element strides that read an operand of shape `own` as if it had shape `full`
    /// (stride 0 on broadcast axes).
    static func broadcastStrides(_ own: [Int], to full: [Int]) -> [Int] {
        let st = Tensor.strides(of: own)
        let lead = full.count - own.count
        var out = [Int](repeating: 0, count: full.count)
        for i in 0..<own.count where own[i] != 1 || full[i + lead] == 1 {
            out[i + lead] = own[i] == 1 ? 0 : st[i]
        }
        return out
    }

    /// Shared driver for broadcasting binary ops.
    ///
    /// Adjacent axes whose strides are contiguous for both operands are merged first, so
    /// e.g. `[N,C,H,W] + [C,1,1]` runs as `N·C` inner loops of length `H·W` and a
    /// same-shape op is a single flat loop.
    @inline(__always)
    static func broadcastBinary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            return Tensor.uninitialized(a.shape) { o in
                a.data.withUnsafeBufferPointer { ap in
                    b.data.withUnsafeBufferPointer { bp in
                        for i in 0..<o.count { o[i] = f(ap[i], bp[i]) }
                    }
                }
            }
        }
        let shape = broadcastShape(a.shape, b.shape)
        var sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        var dims = shape
        // Coalesce axis d into d+1 when both operands step contiguously across them.
        var d = dims.count - 2
        while d >= 0 {
            if sa[d] == sa[d + 1] * dims[d + 1] && sb[d] == sb[d + 1] * dims[d + 1] {
                dims[d + 1] *= dims[d]
                dims.remove(at: d); sa.remove(at: d); sb.remove(at: d)
            }
            d -= 1
        }
        if dims.isEmpty { dims = [1]; sa = [0]; sb = [0] }
        let r = dims.count
        let inner = dims[r - 1], ia = sa[r - 1], ib = sb[r - 1]
        let outer = dims.dropLast().reduce(1, *)
        return Tensor.uninitialized(shape) { o in
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    var idx = [Int](repeating: 0, count: r)
                    var oa = 0, ob = 0, oo = 0
                    for _ in 0..<outer {
                        if ia == 1 && ib == 0 {
                            let bv = bp[ob]
                            for j in 0..<inner { o[oo + j] = f(ap[oa + j], bv) }
                        } else if ia == 0 && ib == 1 {
                            let av = ap[oa]
                            for j in 0..<inner { o[oo + j] = f(av, bp[ob + j]) }
                        } else {
                            for j in 0..<inner { o[oo + j] = f(ap[oa + j * ia], bp[ob + j * ib]) }
                        }
                        oo += inner
                        // Odometer over the outer axes.
                        var d = r - 2
                        while d >= 0 {
                            idx[d] += 1; oa += sa[d]; ob += sb[d]
                            if idx[d] < dims[d] { break }
                            oa -= sa[d] * dims[d]; ob -= sb[d] * dims[d]; idx[d] = 0
                            d -= 1
                        }
                    }
                }
            }
        }
    }

    /// Applies `f` to every element.
    @inline(__always)
    static func unary(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
        Tensor.uninitialized(x.shape) { o in
            x.data.withUnsafeBufferPointer { xp in
                for i in 0..<o.count { o[i] = f(xp[i]) }
            }
        }
    }

    /// Same-shape fast path of the arithmetic ops: 8-wide, split across cores.
    @inline(__always)
    static func sameShapeBinary(_ a: Tensor, _ b: Tensor,
                                _ f: @Sendable (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        Tensor.uninitialized(a.shape) { o in
            guard let ob = o.baseAddress else { return }
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    zip8(ap.baseAddress!, bp.baseAddress!, ob, count: o.count, f)
                }
            }
        }
    }

    /// `a + b` with broadcasting. ref: torch.add
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.shape == b.shape { return sameShapeBinary(a, b) { $0 + $1 } }
        return broadcastBinary(a, b) { $0 + $1 }
    }
    /// `a - b` with broadcasting. ref: torch.sub
    public static func sub(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.shape == b.shape { return sameShapeBinary(a, b) { $0 - $1 } }
        return broadcastBinary(a, b) { $0 - $1 }
    }
    /// `a * b` with broadcasting. ref: torch.mul
    public static func mul(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.shape == b.shape { return sameShapeBinary(a, b) { $0 * $1 } }
        return broadcastBinary(a, b) { $0 * $1 }
    }

    /// `x += y` where `y` broadcasts to `x`'s shape (same shape, or a trailing-axes
    /// suffix such as a `[C]` bias on `[..., C]`); other broadcasts fall back to `x = x + y`.
    /// Writes into `x`'s storage (no new tensor when `x` is uniquely referenced).
    public static func addInPlace(_ x: inout Tensor, _ y: Tensor) {
        if x.shape == y.shape {
            x.data.withUnsafeMutableBufferPointer { xp in
                y.data.withUnsafeBufferPointer { yp in
                    guard let xb = xp.baseAddress, xp.count > 0 else { return }
                    zip8(UnsafePointer(xb), yp.baseAddress!, xb, count: xp.count) { $0 + $1 }
                }
            }
            return
        }
        var ys = y.shape
        while ys.count > 1 && ys[0] == 1 { ys.removeFirst() }  // leading 1s broadcast trivially
        if ys.count <= x.rank, Array(x.shape.suffix(ys.count)) == ys, y.count > 0 {
            let inner = y.count, rows = x.count / inner
            x.data.withUnsafeMutableBufferPointer { xp in
                y.data.withUnsafeBufferPointer { yp in
                    let xb = SendablePointer(xp.baseAddress!), yb = SendableConstPointer(yp.baseAddress!)
                    parallelFor(rows, costPerItem: inner) { r in
                        // Row r: disjoint writes.
                        let row = xb.base + r * inner
                        for j in 0..<inner { row[j] += yb.base[j] }
                    }
                }
            }
            return
        }
        x = add(x, y)
    }
    /// `a / b` with broadcasting (IEEE division: x/0 is ±inf or nan). ref: torch.div
    public static func div(_ a: Tensor, _ b: Tensor) -> Tensor { broadcastBinary(a, b) { $0 / $1 } }

    /// `x + s`.
    public static func add(_ x: Tensor, _ s: Float) -> Tensor { unary(x) { $0 + s } }
    /// `x * s`.
    public static func mul(_ x: Tensor, _ s: Float) -> Tensor { unary(x) { $0 * s } }
    /// `x ** p` elementwise. ref: torch.pow
    public static func pow(_ x: Tensor, _ p: Float) -> Tensor {
        if p == 2 { return unary(x) { $0 * $0 } }
        return unary(x) { Foundation.pow($0, p) }
    }
    /// `sqrt(x)` elementwise.
    public static func sqrt(_ x: Tensor) -> Tensor { unary(x) { $0.squareRoot() } }
    /// `exp(x)` elementwise.
    public static func exp(_ x: Tensor) -> Tensor { unary(x) { Foundation.exp($0) } }
    /// `-x` elementwise.
    public static func neg(_ x: Tensor) -> Tensor { unary(x) { -$0 } }

    /// Sum over `axis` (negative counts from the end). Accumulates in Double so the
    /// result does not depend on reduction length (mean over 4096 tokens stays exact to
    /// Float rounding). ref: torch.sum(dim=, keepdim=)
    public static func sum(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
        reduce(x, axis: axis, keepDims: keepDims, scale: 1)
    }

    /// Mean over `axis`. ref: torch.mean(dim=, keepdim=)
    public static func mean(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
        let a = Ops.axis(axis, rank: x.rank)
        return reduce(x, axis: a, keepDims: keepDims, scale: 1 / Double(max(x.shape[a], 1)))
    }

    static func reduce(_ x: Tensor, axis: Int, keepDims: Bool, scale: Double) -> Tensor {
        let a = Ops.axis(axis, rank: x.rank)
        let outer = x.shape[..<a].reduce(1, *), n = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        var shape = x.shape
        if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return Tensor.uninitialized(shape) { o in
            var acc = [Double](repeating: 0, count: inner)
            x.data.withUnsafeBufferPointer { xp in
                acc.withUnsafeMutableBufferPointer { ac in
                    for p in 0..<outer {
                        for j in 0..<inner { ac[j] = 0 }
                        for i in 0..<n {
                            let row = (p * n + i) * inner
                            for j in 0..<inner { ac[j] += Double(xp[row + j]) }
                        }
                        for j in 0..<inner { o[p * inner + j] = Float(ac[j] * scale) }
                    }
                }
            }
        }
    }
}

// Operator sugar for model code; all broadcast like PyTorch.
extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { Ops.add(a, b) }
    /// In-place `a = a + b` (`b` broadcast to `a`'s shape); see `Ops.addInPlace`.
    public static func += (a: inout Tensor, b: Tensor) { Ops.addInPlace(&a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { Ops.sub(a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { Ops.mul(a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { Ops.div(a, b) }
    public static func + (a: Tensor, s: Float) -> Tensor { Ops.add(a, s) }
    public static func - (a: Tensor, s: Float) -> Tensor { Ops.add(a, -s) }
    public static func * (a: Tensor, s: Float) -> Tensor { Ops.mul(a, s) }
    public static func / (a: Tensor, s: Float) -> Tensor { Ops.unary(a) { $0 / s } }
    public static func + (s: Float, a: Tensor) -> Tensor { Ops.add(a, s) }
    public static func - (s: Float, a: Tensor) -> Tensor { Ops.unary(a) { s - $0 } }
    public static func * (s: Float, a: Tensor) -> Tensor { Ops.mul(a, s) }
    public static prefix func - (a: Tensor) -> Tensor { Ops.neg(a) }
}
