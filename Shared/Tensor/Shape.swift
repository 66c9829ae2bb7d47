import Foundation

// Data-movement ops: permute, pad, concat, slice, reshape. All produce contiguous
// row-major tensors (Tensor has no strided views), so each is one pass of copies.

extension Ops {
    /// Same data viewed with a new shape (one axis may be -1). ref: torch.reshape
    public static func reshape(_ x: Tensor, _ shape: [Int]) -> Tensor { x.reshaped(shape) }

    /// Reorders axes: output axis `i` is input axis `perm[i]`. ref: torch.permute
    ///
    /// Axes that stay adjacent and in order are merged before copying, so e.g. the
    /// window permute `(0,1,3,2,4,5)` moves whole `C`-long rows with `memcpy`-like loops.
    public static func permute(_ x: Tensor, _ perm: [Int]) -> Tensor {
        precondition(perm.count == x.rank && Set(perm).count == perm.count,
                     "permute: \(perm) is not a permutation of \(x.rank) axes")
        let p = perm.map { axis($0, rank: x.rank) }
        let xs = x.strides
        let outShape = p.map { x.shape[$0] }
        if p == Array(0..<x.rank) { return x }
        var dims = outShape, st = p.map { xs[$0] }
        var d = dims.count - 2
        while d >= 0 {
            if st[d] == st[d + 1] * dims[d + 1] {
                dims[d + 1] *= dims[d]
                dims.remove(at: d); st.remove(at: d)
            }
            d -= 1
        }
        let r = dims.count
        let inner = dims[r - 1], si = st[r - 1]
        let outer = x.count / max(inner, 1)
        return Tensor.uninitialized(outShape) { o in
            guard o.count > 0 else { return }
            x.data.withUnsafeBufferPointer { xp in
                var idx = [Int](repeating: 0, count: r)
                var src = 0, dst = 0
                for _ in 0..<outer {
                    if si == 1 {
                        (o.baseAddress! + dst).update(from: xp.baseAddress! + src, count: inner)
                    } else {
                        for j in 0..<inner { o[dst + j] = xp[src + j * si] }
                    }
                    dst += inner
                    var d = r - 2
                    while d >= 0 {
                        idx[d] += 1; src += st[d]
                        if idx[d] < dims[d] { break }
                        src -= st[d] * dims[d]; idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }

    /// Swaps two axes. ref: torch.transpose
    public static func transpose(_ x: Tensor, _ a: Int, _ b: Int) -> Tensor {
        var p = Array(0..<x.rank)
        p.swapAt(axis(a, rank: x.rank), axis(b, rank: x.rank))
        return permute(x, p)
    }

    /// Constant padding with explicit `(before, after)` amounts for EVERY axis, first
    /// axis first. (torch's F.pad lists pairs last-axis-first; spelling all axes out
    /// avoids that classic off-by-order bug.) Amounts must be ≥ 0.
    /// ref: torch.nn.functional.pad(mode="constant")
    public static func pad(_ x: Tensor, _ amounts: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        precondition(amounts.count == x.rank, "pad: need \(x.rank) (before, after) pairs, got \(amounts.count)")
        precondition(amounts.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad: negative padding \(amounts)")
        let outShape = zip(x.shape, amounts).map { $0 + $1.before + $1.after }
        var out = Tensor(repeating: value, shape: outShape)
        let r = x.rank
        if x.count == 0 { return out }
        if r == 0 { return x }
        let os = Tensor.strides(of: outShape)
        let inner = x.shape[r - 1]
        let outer = x.count / inner
        var base = 0
        for d in 0..<r { base += amounts[d].before * os[d] }
        out.data.withUnsafeMutableBufferPointer { o in
            x.data.withUnsafeBufferPointer { xp in
                var idx = [Int](repeating: 0, count: r)
                var dst = base
                for row in 0..<outer {
                    (o.baseAddress! + dst).update(from: xp.baseAddress! + row * inner, count: inner)
                    var d = r - 2
                    while d >= 0 {
                        idx[d] += 1; dst += os[d]
                        if idx[d] < x.shape[d] { break }
                        dst -= os[d] * x.shape[d]; idx[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return out
    }

    /// Concatenates tensors along `axis`; all other axes must match. ref: torch.cat
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        precondition(!xs.isEmpty, "concat of nothing")
        let a = Ops.axis(axis, rank: xs[0].rank)
        for t in xs {
            precondition(t.rank == xs[0].rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == xs[0].shape[$0] },
                         "concat along \(a): shapes \(xs.map(\.shape)) differ off-axis")
        }
        var outShape = xs[0].shape
        outShape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        let outer = outShape[..<a].reduce(1, *), inner = outShape[(a + 1)...].reduce(1, *)
        let outRow = outShape[a] * inner
        var out = Tensor(zeros: outShape)
        out.data.withUnsafeMutableBufferPointer { o in
            var offset = 0
            for t in xs {
                let chunk = t.shape[a] * inner
                if chunk > 0 {
                    t.data.withUnsafeBufferPointer { tp in
                        for p in 0..<outer {
                            (o.baseAddress! + p * outRow + offset).update(from: tp.baseAddress! + p * chunk, count: chunk)
                        }
                    }
                }
                offset += chunk
            }
        }
        return out
    }

    /// Python-style slice `start..<end` by `step` along `axis`; negative `start`/`end`
    /// count from the end and both clamp to the axis, as in `x[..., start:end:step]`.
    /// ref: torch.Tensor.__getitem__ with a slice (step > 0)
    public static func slice(_ x: Tensor, axis: Int, start: Int = 0, end: Int = Int.max, step: Int = 1) -> Tensor {
        precondition(step > 0, "slice: step must be positive, got \(step)")
        let a = Ops.axis(axis, rank: x.rank)
        let n = x.shape[a]
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + n : v, 0), n) }
        let s = clamp(start), e = clamp(end)
        let len = e > s ? (e - s + step - 1) / step : 0
        var outShape = x.shape
        outShape[a] = len
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        return Tensor.uninitialized(outShape) { o in
            guard o.count > 0 else { return }
            x.data.withUnsafeBufferPointer { xp in
                var dst = 0
                for p in 0..<outer {
                    for i in 0..<len {
                        (o.baseAddress! + dst).update(from: xp.baseAddress! + (p * n + s + i * step) * inner, count: inner)
                        dst += inner
                    }
                }
            }
        }
    }
}
