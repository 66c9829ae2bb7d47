import Foundation
import Tensor

/// Plain, obviously-correct reference kernels: naive loops straight from each op's
/// mathematical definition, Double accumulation, no BLAS, no pointer tricks, and no
/// calls into `Ops`. They are slow and only meant for tiny test shapes.
enum Ref {
    // MARK: helpers

    /// Row-major multi-index of flat index `i` in `shape`.
    static func unravel(_ i: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count)
        var r = i
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            idx[d] = r % shape[d]
            r /= shape[d]
        }
        return idx
    }

    static func ravel(_ idx: [Int], _ shape: [Int]) -> Int {
        var f = 0
        for (i, n) in zip(idx, shape) { f = f * n + i }
        return f
    }

    static func make(_ shape: [Int], _ value: (Int) -> Double) -> Tensor {
        Tensor(shape: shape) { Float(value($0)) }
    }

    static func d(_ t: Tensor, _ idx: Int...) -> Double { Double(t.data[ravel(idx, t.shape)]) }

    // MARK: linear algebra

    static func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
        let inF = w.shape[1], outF = w.shape[0], rows = x.count / inF
        return make(Array(x.shape.dropLast()) + [outF]) { i in
            let r = i / outF, o = i % outF
            var s = b.map { Double($0.data[o]) } ?? 0
            for k in 0..<inF { s += Double(x.data[r * inF + k]) * Double(w.data[o * inF + k]) }
            _ = rows
            return s
        }
    }

    /// Batched matmul with explicit broadcasting of batch indices.
    static func matmul(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool) -> Tensor {
        let aB = Array(a.shape.dropLast(2)), bB = Array(b.shape.dropLast(2))
        let r = max(aB.count, bB.count)
        let aP = [Int](repeating: 1, count: r - aB.count) + aB, bP = [Int](repeating: 1, count: r - bB.count) + bB
        let batch = zip(aP, bP).map { max($0, $1) }
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let m = transA ? ac : ar, k = transA ? ar : ac, n = transB ? br : bc
        return make(batch + [m, n]) { flat in
            let idx = unravel(flat, batch + [m, n])
            let bi = Array(idx.prefix(r)), i = idx[r], j = idx[r + 1]
            let ai = zip(bi, aP).map { $1 == 1 ? 0 : $0 }, bj = zip(bi, bP).map { $1 == 1 ? 0 : $0 }
            let aBase = ravel(ai, aP) * ar * ac, bBase = ravel(bj, bP) * br * bc
            var s = 0.0
            for p in 0..<k {
                let av = transA ? a.data[aBase + p * ac + i] : a.data[aBase + i * ac + p]
                let bv = transB ? b.data[bBase + j * bc + p] : b.data[bBase + p * bc + j]
                s += Double(av) * Double(bv)
            }
            return s
        }
    }

    // MARK: convolution

    static func conv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                       dilation: (Int, Int), groups: Int) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        let coutG = cout / groups
        _ = cin
        return make([n, cout, ho, wo]) { flat in
            let idx = unravel(flat, [n, cout, ho, wo])
            let (bi, oc, oy, ox) = (idx[0], idx[1], idx[2], idx[3])
            let g = oc / coutG
            var s = b.map { Double($0.data[oc]) } ?? 0
            for c in 0..<cinG {
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let iy = oy * stride.0 - padding.0 + ki * dilation.0
                        let ix = ox * stride.1 - padding.1 + kj * dilation.1
                        guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                        s += d(x, bi, g * cinG + c, iy, ix) * d(w, oc, c, ki, kj)
                    }
                }
            }
            return s
        }
    }

    /// Transposed conv by its definition: every input pixel scatters `x·w` into the output.
    static func convTranspose2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                                outputPadding: (Int, Int), dilation: (Int, Int), groups: Int) -> Tensor {
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (coutG, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
        let cout = coutG * groups, cinG = cin / groups
        let ho = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
        let wo = (wd - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
        var acc = [Double](repeating: 0, count: n * cout * ho * wo)
        for bi in 0..<n { for ic in 0..<cin { for iy in 0..<h { for ix in 0..<wd {
            let g = ic / cinG
            for o in 0..<coutG { for ki in 0..<kh { for kj in 0..<kw {
                let oy = iy * stride.0 - padding.0 + ki * dilation.0
                let ox = ix * stride.1 - padding.1 + kj * dilation.1
                guard oy >= 0, oy < ho, ox >= 0, ox < wo else { continue }
                acc[ravel([bi, g * coutG + o, oy, ox], [n, cout, ho, wo])] += d(x, bi, ic, iy, ix) * d(w, ic, o, ki, kj)
            } } }
        } } } }
        return make([n, cout, ho, wo]) { flat in
            acc[flat] + (b.map { Double($0.data[unravel(flat, [n, cout, ho, wo])[1]]) } ?? 0)
        }
    }

    // MARK: normalisation

    static func layerNorm(_ x: Tensor, _ w: Tensor?, _ b: Tensor?, eps: Double) -> Tensor {
        let c = x.shape.last!
        return make(x.shape) { flat in
            let r = flat / c, j = flat % c
            let row = (0..<c).map { Double(x.data[r * c + $0]) }
            let mean = row.reduce(0, +) / Double(c)
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            let y = (row[j] - mean) / (v + eps).squareRoot()
            return y * (w.map { Double($0.data[j]) } ?? 1) + (b.map { Double($0.data[j]) } ?? 0)
        }
    }

    static func layerNorm2d(_ x: Tensor, _ w: Tensor, _ b: Tensor, eps: Double) -> Tensor {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return make(x.shape) { flat in
            let i = unravel(flat, x.shape)
            let vals = (0..<c).map { d(x, i[0], $0, i[2], i[3]) }
            let mean = vals.reduce(0, +) / Double(c)
            let v = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            _ = (n, h, wd)
            return Double(w.data[i[1]]) * (vals[i[1]] - mean) / (v + eps).squareRoot() + Double(b.data[i[1]])
        }
    }

    static func batchNorm(_ x: Tensor, mean: Tensor, variance: Tensor, _ w: Tensor?, _ b: Tensor?, eps: Double) -> Tensor {
        make(x.shape) { flat in
            let c = unravel(flat, x.shape)[1]
            let y = (Double(x.data[flat]) - Double(mean.data[c])) / (Double(variance.data[c]) + eps).squareRoot()
            return y * (w.map { Double($0.data[c]) } ?? 1) + (b.map { Double($0.data[c]) } ?? 0)
        }
    }

    // MARK: activations

    static func map(_ x: Tensor, _ f: (Double) -> Double) -> Tensor { make(x.shape) { f(Double(x.data[$0])) } }
    static func gelu(_ x: Tensor) -> Tensor { map(x) { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) } }
    static func geluTanh(_ x: Tensor) -> Tensor {
        map(x) { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
    }
    static func quickGELU(_ x: Tensor) -> Tensor { map(x) { $0 / (1 + exp(-1.702 * $0)) } }
    static func relu(_ x: Tensor) -> Tensor { map(x) { max($0, 0) } }
    static func sigmoid(_ x: Tensor) -> Tensor { map(x) { 1 / (1 + exp(-$0)) } }

    static func softmax(_ x: Tensor) -> Tensor {
        let c = x.shape.last!
        return make(x.shape) { flat in
            let r = flat / c
            let row = (0..<c).map { Double(x.data[r * c + $0]) }
            let m = row.max()!
            return exp(row[flat % c] - m) / row.map { exp($0 - m) }.reduce(0, +)
        }
    }

    // MARK: attention

    /// `softmax(scale·q·kᵀ + bias + relH + relW)·v` for `[B, H, L, d]`, one (b, h, i) row at a time.
    /// `bias` is given already expanded to `[B, H, Lq, Lk]`; rel terms `[B·H, Lq, kh]`/`[B·H, Lq, kw]`.
    static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Double, bias: Tensor?,
                          relH: Tensor? = nil, relW: Tensor? = nil, kSize: (Int, Int) = (0, 0)) -> Tensor {
        let r = q.rank
        let nb = q.shape.dropLast(2).reduce(1, *)
        let (lq, dd, lk, dv) = (q.shape[r - 2], q.shape[r - 1], k.shape[r - 2], v.shape[r - 1])
        var out = [Double](repeating: 0, count: nb * lq * dv)
        for b in 0..<nb {
            for i in 0..<lq {
                var logits = [Double](repeating: 0, count: lk)
                for j in 0..<lk {
                    var s = 0.0
                    for p in 0..<dd { s += Double(q.data[(b * lq + i) * dd + p]) * Double(k.data[(b * lk + j) * dd + p]) }
                    s *= scale
                    if let bias { s += Double(bias.data[(b * lq + i) * lk + j]) }
                    if let relH, let relW {
                        s += Double(relH.data[(b * lq + i) * kSize.0 + j / kSize.1])
                        s += Double(relW.data[(b * lq + i) * kSize.1 + j % kSize.1])
                    }
                    logits[j] = s
                }
                let m = logits.max()!
                let e = logits.map { exp($0 - m) }
                let z = e.reduce(0, +)
                for c in 0..<dv {
                    var s = 0.0
                    for j in 0..<lk { s += e[j] / z * Double(v.data[(b * lk + j) * dv + c]) }
                    out[(b * lq + i) * dv + c] = s
                }
            }
        }
        return make(Array(q.shape.dropLast()) + [dv]) { out[$0] }
    }

    /// Half-pixel source coordinate for align_corners=False, clamped at 0. Upstream
    /// defines it in float32 (`scale = (float)in/out; src = scale·(o+0.5) − 0.5`), and
    /// that rounding moves the sample by up to ½ulp(in) — visible at 1e-5 on long
    /// tables — so the reference reproduces the float32 coordinate, then blends in Double.
    /// ref: aten/src/ATen/native/UpSample.h area_pixel_compute_source_index
    static func halfPixelSource(_ o: Int, inSize: Int, outSize: Int) -> Double {
        let scale = Float(inSize) / Float(outSize)
        return Double(max(scale * (Float(o) + 0.5) - 0.5, 0))
    }

    /// align_corners=True source coordinate, float32 like upstream.
    static func cornerSource(_ o: Int, inSize: Int, outSize: Int) -> Double {
        let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        return Double(scale * Float(o))
    }

    /// 1-D linear interpolation with align_corners=False.
    static func linearResize(_ row: [Double], to size: Int) -> [Double] {
        let n = row.count
        return (0..<size).map { o in
            let src = halfPixelSource(o, inSize: n, outSize: size)
            let i0 = min(Int(src.rounded(.down)), n - 1), i1 = min(i0 + 1, n - 1)
            let l = src - Double(i0)
            return (1 - l) * row[i0] + l * row[i1]
        }
    }

    static func getRelPos(qSize: Int, kSize: Int, table: Tensor) -> Tensor {
        let (l, c) = (table.shape[0], table.shape[1])
        let maxRel = 2 * max(qSize, kSize) - 1
        var cols = (0..<c).map { ch in (0..<l).map { Double(table.data[$0 * c + ch]) } }
        if l != maxRel { cols = cols.map { linearResize($0, to: maxRel) } }
        let qs = max(Double(kSize) / Double(qSize), 1), ks = max(Double(qSize) / Double(kSize), 1)
        return make([qSize, kSize, c]) { flat in
            let i = flat / (kSize * c), j = (flat / c) % kSize, ch = flat % c
            // Upstream evaluates this in float32; mirror that rounding before truncating.
            let coord = (Float(Float(i) * Float(qs)) - Float(Float(j) * Float(ks))) + Float(Double(kSize - 1) * ks)
            return cols[ch][Int(coord)]
        }
    }

    /// rel_h[b,y,x,ky] = Σ_c q[b,y,x,c]·Rh[y,ky,c]; rel_w[b,y,x,kx] = Σ_c q[b,y,x,c]·Rw[x,kx,c].
    static func relTerms(q: Tensor, rh: Tensor, rw: Tensor, qSize: (Int, Int), kSize: (Int, Int)) -> (Tensor, Tensor) {
        let (b, c) = (q.shape[0], q.shape[2])
        let (qh, qw, kh, kw) = (qSize.0, qSize.1, kSize.0, kSize.1)
        let relH = make([b, qh, qw, kh]) { f in
            let i = unravel(f, [b, qh, qw, kh])
            return (0..<c).reduce(0.0) { $0 + d(q, i[0], i[1] * qw + i[2], $1) * d(rh, i[1], i[3], $1) }
        }
        let relW = make([b, qh, qw, kw]) { f in
            let i = unravel(f, [b, qh, qw, kw])
            return (0..<c).reduce(0.0) { $0 + d(q, i[0], i[1] * qw + i[2], $1) * d(rw, i[2], i[3], $1) }
        }
        return (relH, relW)
    }

    static func addDecomposedRelPos(attn: Tensor, q: Tensor, tableH: Tensor, tableW: Tensor,
                                    qSize: (Int, Int), kSize: (Int, Int)) -> Tensor {
        let rh = getRelPos(qSize: qSize.0, kSize: kSize.0, table: tableH)
        let rw = getRelPos(qSize: qSize.1, kSize: kSize.1, table: tableW)
        let (relH, relW) = relTerms(q: q, rh: rh, rw: rw, qSize: qSize, kSize: kSize)
        let lk = kSize.0 * kSize.1
        return make(attn.shape) { f in
            let row = f / lk, j = f % lk
            return Double(attn.data[f]) + Double(relH.data[row * kSize.0 + j / kSize.1]) + Double(relW.data[row * kSize.1 + j % kSize.1])
        }
    }

    // MARK: windows

    static func windowPartition(_ x: Tensor, ws: Int) -> Tensor {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let nh = (h + ws - 1) / ws, nw = (w + ws - 1) / ws
        return make([b * nh * nw, ws, ws, c]) { f in
            let i = unravel(f, [b * nh * nw, ws, ws, c])
            let bi = i[0] / (nh * nw), wy = (i[0] / nw) % nh, wx = i[0] % nw
            let y = wy * ws + i[1], xx = wx * ws + i[2]
            return y < h && xx < w ? d(x, bi, y, xx, i[3]) : 0
        }
    }

    // MARK: resize

    /// Bilinear from the per-axis half-pixel formula, one output pixel at a time.
    static func bilinear(_ x: Tensor, size: (Int, Int), alignCorners: Bool) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        func taps(_ o: Int, _ n: Int, _ out: Int) -> (Int, Int, Double) {
            let s = alignCorners ? cornerSource(o, inSize: n, outSize: out) : halfPixelSource(o, inSize: n, outSize: out)
            let i0 = min(Int(s.rounded(.down)), n - 1)
            return (i0, min(i0 + 1, n - 1), s - Double(i0))
        }
        return make([x.shape[0], x.shape[1], size.0, size.1]) { f in
            let i = unravel(f, [x.shape[0], x.shape[1], size.0, size.1])
            let (y0, y1, ly) = taps(i[2], h, size.0), (x0, x1, lx) = taps(i[3], w, size.1)
            return (1 - ly) * ((1 - lx) * d(x, i[0], i[1], y0, x0) + lx * d(x, i[0], i[1], y0, x1))
                 + ly * ((1 - lx) * d(x, i[0], i[1], y1, x0) + lx * d(x, i[0], i[1], y1, x1))
        }
    }

    /// Antialiased bilinear as PIL defines it: a triangle filter stretched by the
    /// downscale factor, centred at (o + 0.5)·scale, weights renormalised to sum to 1
    /// over the in-image support. Evaluated as a direct 2-D sum.
    static func bilinearAntialias(_ x: Tensor, size: (Int, Int)) -> Tensor {
        func weights(_ o: Int, _ n: Int, _ out: Int) -> [(Int, Double)] {
            let scale = Double(n) / Double(out), support = max(scale, 1)
            let center = (Double(o) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0), hi = min(Int(center + support + 0.5), n)
            var taps: [(Int, Double)] = []
            for j in lo..<max(lo, hi) { taps.append((j, max(0, 1 - abs((Double(j) + 0.5 - center) / support)))) }
            let total = taps.reduce(0) { $0 + $1.1 }
            return taps.map { ($0.0, $0.1 / total) }
        }
        return make([x.shape[0], x.shape[1], size.0, size.1]) { f in
            let i = unravel(f, [x.shape[0], x.shape[1], size.0, size.1])
            var s = 0.0
            for (yy, wy) in weights(i[2], x.shape[2], size.0) {
                for (xx, wx) in weights(i[3], x.shape[3], size.1) { s += wy * wx * d(x, i[0], i[1], yy, xx) }
            }
            return s
        }
    }

    static func nearest(_ x: Tensor, size: (Int, Int)) -> Tensor {
        make([x.shape[0], x.shape[1], size.0, size.1]) { f in
            let i = unravel(f, [x.shape[0], x.shape[1], size.0, size.1])
            let y = min(i[2] * x.shape[2] / size.0, x.shape[2] - 1), xx = min(i[3] * x.shape[3] / size.1, x.shape[3] - 1)
            return d(x, i[0], i[1], y, xx)
        }
    }

    // MARK: shape

    static func permute(_ x: Tensor, _ perm: [Int]) -> Tensor {
        let outShape = perm.map { x.shape[$0] }
        return make(outShape) { f in
            let o = unravel(f, outShape)
            var src = [Int](repeating: 0, count: x.rank)
            for (i, p) in perm.enumerated() { src[p] = o[i] }
            return Double(x.data[ravel(src, x.shape)])
        }
    }

    static func pad(_ x: Tensor, _ amounts: [(Int, Int)], value: Double) -> Tensor {
        let outShape = zip(x.shape, amounts).map { $0 + $1.0 + $1.1 }
        return make(outShape) { f in
            let o = unravel(f, outShape)
            let src = zip(o, amounts).map { $0 - $1.0 }
            for (s, n) in zip(src, x.shape) where s < 0 || s >= n { return value }
            return Double(x.data[ravel(src, x.shape)])
        }
    }

    static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        var outShape = xs[0].shape
        outShape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        return make(outShape) { f in
            var o = unravel(f, outShape)
            for t in xs {
                if o[axis] < t.shape[axis] { return Double(t.data[ravel(o, t.shape)]) }
                o[axis] -= t.shape[axis]
            }
            fatalError("unreachable")
        }
    }

    static func slice(_ x: Tensor, axis: Int, start: Int, end: Int, step: Int) -> Tensor {
        let picks = Array(stride(from: start, to: end, by: step))
        var outShape = x.shape
        outShape[axis] = picks.count
        return make(outShape) { f in
            var o = unravel(f, outShape)
            o[axis] = picks[o[axis]]
            return Double(x.data[ravel(o, x.shape)])
        }
    }

    static func broadcast(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> Tensor {
        let r = max(a.rank, b.rank)
        let ap = [Int](repeating: 1, count: r - a.rank) + a.shape, bp = [Int](repeating: 1, count: r - b.rank) + b.shape
        let shape = zip(ap, bp).map { max($0, $1) }
        return make(shape) { flat in
            let i = unravel(flat, shape)
            let ia = zip(i, ap).map { $1 == 1 ? 0 : $0 }, ib = zip(i, bp).map { $1 == 1 ? 0 : $0 }
            return f(Double(a.data[ravel(ia, ap)]), Double(b.data[ravel(ib, bp)]))
        }
    }

    static func sum(_ x: Tensor, axis: Int, mean: Bool) -> Tensor {
        var outShape = x.shape
        let n = outShape.remove(at: axis)
        return make(outShape) { f in
            var i = unravel(f, outShape)
            i.insert(0, at: axis)
            var s = 0.0
            for k in 0..<n { i[axis] = k; s += Double(x.data[ravel(i, x.shape)]) }
            return mean ? s / Double(n) : s
        }
    }
}
