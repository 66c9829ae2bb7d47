import Foundation

/// SAM's decomposed relative-position terms for one attention call, as produced by
/// `Ops.decomposedRelPos`: `relH[b, qy, qx, ky]` and `relW[b, qy, qx, kx]`, where `b`
/// runs over the flattened (batch · heads) axis. Added to the logits as
/// `attn[b, qy·qw+qx, ky·kw+kx] += relH[b,qy,qx,ky] + relW[b,qy,qx,kx]`; passing them to
/// `Ops.attention` avoids materialising the full biased attention map.
public struct DecomposedRelPos: Sendable {
    public var relH: Tensor
    public var relW: Tensor
    public var qSize: (h: Int, w: Int)
    public var kSize: (h: Int, w: Int)
}

extension Ops {
    /// Attention core: `softmax(scale · q·kᵀ + bias [+ rel-pos]) · v`.
    ///
    /// `q: [..., Lq, d]`, `k: [..., Lk, d]`, `v: [..., Lk, dv]` with identical leading
    /// (batch, heads) axes → `[..., Lq, dv]`. `bias` is an additive mask/bias broadcastable
    /// to `[..., Lq, Lk]` (use `-inf` to mask). `scale` defaults to `1/√d`.
    /// One `[Lq, Lk]` scratch map is reused across batch entries, so SAM ViT-B global
    /// attention (12 heads × 4096²) needs 64 MiB instead of PyTorch's 768 MiB.
    /// Bias, rel-pos and softmax are fused into one parallel pass over each map.
    /// ref: torch.nn.functional.scaled_dot_product_attention (attn_mask as float bias);
    ///      segment_anything/modeling/image_encoder.py Attention.forward
    public static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float? = nil,
                                 bias: Tensor? = nil, relPos: DecomposedRelPos? = nil) -> Tensor {
        precondition(q.rank >= 2 && k.rank == q.rank && v.rank == q.rank,
                     "attention: ranks of q \(q.shape), k \(k.shape), v \(v.shape) differ")
        let r = q.rank
        let batch = Array(q.shape.dropLast(2))
        precondition(Array(k.shape.dropLast(2)) == batch && Array(v.shape.dropLast(2)) == batch,
                     "attention: batch axes of q \(q.shape), k \(k.shape), v \(v.shape) differ")
        let lq = q.shape[r - 2], d = q.shape[r - 1], lk = k.shape[r - 2], dv = v.shape[r - 1]
        precondition(k.shape[r - 1] == d && v.shape[r - 2] == lk,
                     "attention: q \(q.shape), k \(k.shape), v \(v.shape) do not line up")
        let nb = batch.reduce(1, *)
        let alpha = scale ?? 1 / Float(d).squareRoot()
        // Bias offsets per batch entry + row/col strides (0 where broadcast).
        var biasOffsets: [Int] = []
        var biasRowStride = 0, biasColStride = 0
        if let bias {
            let full = batch + [lq, lk]
            precondition(bias.rank <= full.count, "attention: bias \(bias.shape) has more axes than \(full)")
            let st = broadcastStrides(bias.shape, to: full)
            precondition(broadcastShape(bias.shape, full) == full, "attention: bias \(bias.shape) does not broadcast to \(full)")
            biasOffsets = odometerOffsets(shape: batch, strides: Array(st.prefix(batch.count)))
            biasRowStride = st[full.count - 2]; biasColStride = st[full.count - 1]
        }
        if let relPos {
            precondition(relPos.qSize.h * relPos.qSize.w == lq && relPos.kSize.h * relPos.kSize.w == lk,
                         "attention: rel-pos sizes \(relPos.qSize)/\(relPos.kSize) vs Lq=\(lq) Lk=\(lk)")
            precondition(relPos.relH.shape == [nb, relPos.qSize.h, relPos.qSize.w, relPos.kSize.h]
                         && relPos.relW.shape == [nb, relPos.qSize.h, relPos.qSize.w, relPos.kSize.w],
                         "attention: rel-pos terms \(relPos.relH.shape)/\(relPos.relW.shape) for batch \(nb)")
        }
        var out = Tensor.uninitialized(batch + [lq, dv]) { _ in }
        let biasData = bias?.data ?? [], relHData = relPos?.relH.data ?? [], relWData = relPos?.relW.data ?? []
        q.data.withUnsafeBufferPointer { qp in
        k.data.withUnsafeBufferPointer { kp in
        v.data.withUnsafeBufferPointer { vp in
        biasData.withUnsafeBufferPointer { bsp in
        relHData.withUnsafeBufferPointer { rhp in
        relWData.withUnsafeBufferPointer { rwp in
        out.data.withUnsafeMutableBufferPointer { op in
            guard let qb = qp.baseAddress, let kb = kp.baseAddress, let vb = vp.baseAddress, let ob = op.baseAddress else { return }
            let ab = bias != nil ? AttentionBias(base: bsp.baseAddress!, offsets: biasOffsets, rowStride: biasRowStride,
                                                 colStride: biasColStride) : nil
            let ar = relPos.map { AttentionRelPos(relH: rhp.baseAddress!, relW: rwp.baseAddress!, kh: $0.kSize.h, kw: $0.kSize.w) }
            attentionCore(count: nb, heads: 1, lq: lq, lk: lk, d: d, dv: dv, alpha: alpha,
                          q: MatrixBatch(UnsafeMutablePointer(mutating: qb), outerStride: lq * d, headStride: 0, ld: d),
                          k: MatrixBatch(UnsafeMutablePointer(mutating: kb), outerStride: lk * d, headStride: 0, ld: d),
                          v: MatrixBatch(UnsafeMutablePointer(mutating: vb), outerStride: lk * dv, headStride: 0, ld: dv),
                          out: MatrixBatch(ob, outerStride: lq * dv, headStride: 0, ld: dv), bias: ab, relPos: ar)
        }}}}}}}
        return out
    }

    /// Relative-position embeddings for every (query, key) pair along one axis:
    /// `[qSize, kSize, C]` from a table `[L, C]`. If `L ≠ 2·max(q,k)−1` the table is first
    /// resized with 1-D linear interpolation (align_corners=False). When q and k sizes
    /// differ, coordinates are scaled to the longer side and truncated, computed in
    /// Float32 in the same order as upstream so the truncation picks the same rows.
    /// ref: segment_anything/modeling/image_encoder.py get_rel_pos
    public static func getRelPos(qSize: Int, kSize: Int, relPos: Tensor) -> Tensor {
        precondition(relPos.rank == 2, "getRelPos: table must be [L, C], got \(relPos.shape)")
        let maxRel = 2 * max(qSize, kSize) - 1
        let c = relPos.shape[1]
        var table = relPos
        if relPos.shape[0] != maxRel {
            // [L, C] → [1, C, L] → linear resize → [maxRel, C]
            let ncl = permute(relPos, [1, 0]).reshaped([1, c, relPos.shape[0]])
            table = permute(interpolateLinear(ncl, size: maxRel).reshaped([c, maxRel]), [1, 0])
        }
        let qScale = Float(max(Double(kSize) / Double(qSize), 1.0))
        let kScale = Float(max(Double(qSize) / Double(kSize), 1.0))
        let offset = Float(Double(kSize - 1) * max(Double(qSize) / Double(kSize), 1.0))
        return Tensor.uninitialized([qSize, kSize, c]) { o in
            table.data.withUnsafeBufferPointer { tp in
                for i in 0..<qSize {
                    for j in 0..<kSize {
                        let coord = (Float(i) * qScale - Float(j) * kScale) + offset
                        let idx = Int(coord) // .long() truncates toward zero; coord ≥ 0
                        precondition(idx >= 0 && idx < maxRel, "getRelPos: index \(idx) outside table of \(maxRel)")
                        (o.baseAddress! + (i * kSize + j) * c).update(from: tp.baseAddress! + idx * c, count: c)
                    }
                }
            }
        }
    }

    /// The two einsum terms of SAM's decomposed rel-pos, for fusing into `attention`.
    /// `q: [B, qh·qw, C]` (unscaled, B = batch·heads); tables `[Lh, C]`, `[Lw, C]`.
    /// `relH[b,y,x,:] = q[b,y,x,:] · Rh[y]ᵀ` is one GEMM per (b, y) over the contiguous
    /// `[qw, C]` rows; `relW[b,:,x,:] = q[b,:,x,:] · Rw[x]ᵀ` is one GEMM per (b, x) using a
    /// row stride of `qw·C` — no gathers.
    /// ref: segment_anything/modeling/image_encoder.py add_decomposed_rel_pos (the einsums)
    public static func decomposedRelPos(q: Tensor, relPosH: Tensor, relPosW: Tensor,
                                        qSize: (h: Int, w: Int), kSize: (h: Int, w: Int)) -> DecomposedRelPos {
        precondition(q.rank == 3 && q.shape[1] == qSize.h * qSize.w,
                     "decomposedRelPos: q \(q.shape) vs q size \(qSize)")
        let (b, c) = (q.shape[0], q.shape[2])
        let rh = getRelPos(qSize: qSize.h, kSize: kSize.h, relPos: relPosH)
        let rw = getRelPos(qSize: qSize.w, kSize: kSize.w, relPos: relPosW)
        precondition(rh.shape[2] == c && rw.shape[2] == c, "decomposedRelPos: table width differs from q's \(c)")
        let (qh, qw, kh, kw) = (qSize.h, qSize.w, kSize.h, kSize.w)
        var relH = Tensor(zeros: [b, qh, qw, kh]), relW = Tensor(zeros: [b, qh, qw, kw])
        q.data.withUnsafeBufferPointer { qp in
        rh.data.withUnsafeBufferPointer { hp in
        rw.data.withUnsafeBufferPointer { wp in
        relH.data.withUnsafeMutableBufferPointer { oh in
        relW.data.withUnsafeMutableBufferPointer { ow in
            for bi in 0..<b {
                let qb = qp.baseAddress! + bi * qh * qw * c
                for y in 0..<qh {
                    sgemm(transA: false, transB: true, m: qw, n: kh, k: c,
                          a: qb + y * qw * c, lda: c, b: hp.baseAddress! + y * kh * c, ldb: c,
                          c: oh.baseAddress! + ((bi * qh + y) * qw) * kh, ldc: kh)
                }
                for x in 0..<qw {
                    sgemm(transA: false, transB: true, m: qh, n: kw, k: c,
                          a: qb + x * c, lda: qw * c, b: wp.baseAddress! + x * kw * c, ldb: c,
                          c: ow.baseAddress! + (bi * qh * qw + x) * kw, ldc: qw * kw)
                }
            }
        }}}}}
        return DecomposedRelPos(relH: relH, relW: relW, qSize: qSize, kSize: kSize)
    }

    /// Upstream-shaped version: returns `attn + rel_h + rel_w` for `attn: [B, qh·qw, kh·kw]`.
    /// Model code should prefer passing `decomposedRelPos(...)` to `attention(relPos:)`.
    /// ref: segment_anything/modeling/image_encoder.py add_decomposed_rel_pos
    public static func addDecomposedRelPos(attn: Tensor, q: Tensor, relPosH: Tensor, relPosW: Tensor,
                                           qSize: (h: Int, w: Int), kSize: (h: Int, w: Int)) -> Tensor {
        let rp = decomposedRelPos(q: q, relPosH: relPosH, relPosW: relPosW, qSize: qSize, kSize: kSize)
        let (b, lq, lk) = (q.shape[0], qSize.h * qSize.w, kSize.h * kSize.w)
        precondition(attn.shape == [b, lq, lk], "addDecomposedRelPos: attn \(attn.shape), expected \([b, lq, lk])")
        var out = attn
        let (kh, kw) = (kSize.h, kSize.w)
        out.data.withUnsafeMutableBufferPointer { o in
        rp.relH.data.withUnsafeBufferPointer { hp in
        rp.relW.data.withUnsafeBufferPointer { wp in
            for i in 0..<(b * lq) {
                let row = o.baseAddress! + i * lk
                for ky in 0..<kh {
                    let hv = hp[i * kh + ky]
                    for kx in 0..<kw { row[ky * kw + kx] += hv + wp[i * kw + kx] }
                }
            }
        }}}
        return out
    }

    /// Splits `[B, H, W, C]` into `[B·nWin, ws, ws, C]` windows after zero-padding H and W
    /// up to multiples of `windowSize` (bottom/right). Returns the padded size too.
    /// Copies whole `ws·C` row segments; no intermediate padded tensor.
    /// ref: segment_anything/modeling/image_encoder.py window_partition
    public static func windowPartition(_ x: Tensor, windowSize ws: Int) -> (windows: Tensor, padHW: (h: Int, w: Int)) {
        precondition(x.rank == 4 && ws > 0, "windowPartition: x \(x.shape) must be [B, H, W, C], ws \(ws)")
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hp = (h + ws - 1) / ws * ws, wp = (w + ws - 1) / ws * ws
        let nh = hp / ws, nw = wp / ws
        var out = Tensor(zeros: [b * nh * nw, ws, ws, c])
        out.data.withUnsafeMutableBufferPointer { o in
            x.data.withUnsafeBufferPointer { xp in
                for bi in 0..<b { for wy in 0..<nh { for wx in 0..<nw {
                    let win = o.baseAddress! + ((bi * nh + wy) * nw + wx) * ws * ws * c
                    let x0 = wx * ws, cols = max(0, min(ws, w - x0))
                    for r in 0..<ws {
                        let y = wy * ws + r
                        guard y < h, cols > 0 else { continue } // padding rows stay zero
                        (win + r * ws * c).update(from: xp.baseAddress! + ((bi * h + y) * w + x0) * c, count: cols * c)
                    }
                } } }
            }
        }
        return (out, (hp, wp))
    }

    /// Inverse of `windowPartition`: `[B·nWin, ws, ws, C]` → `[B, H, W, C]`, dropping padding.
    /// ref: segment_anything/modeling/image_encoder.py window_unpartition
    public static func windowUnpartition(_ windows: Tensor, windowSize ws: Int,
                                         padHW: (h: Int, w: Int), hw: (h: Int, w: Int)) -> Tensor {
        let (hp, wp) = padHW, (h, w) = hw
        precondition(windows.rank == 4 && windows.shape[1] == ws && windows.shape[2] == ws
                     && hp % ws == 0 && wp % ws == 0 && h <= hp && w <= wp,
                     "windowUnpartition: windows \(windows.shape), ws \(ws), pad \(padHW), hw \(hw)")
        let nh = hp / ws, nw = wp / ws
        precondition(windows.shape[0] % (nh * nw) == 0, "windowUnpartition: \(windows.shape[0]) windows for a \(nh)x\(nw) grid")
        let b = windows.shape[0] / (nh * nw), c = windows.shape[3]
        var out = Tensor(zeros: [b, h, w, c])
        out.data.withUnsafeMutableBufferPointer { o in
            windows.data.withUnsafeBufferPointer { wpz in
                for bi in 0..<b { for wy in 0..<nh { for wx in 0..<nw {
                    let win = wpz.baseAddress! + ((bi * nh + wy) * nw + wx) * ws * ws * c
                    let x0 = wx * ws, cols = max(0, min(ws, w - x0))
                    for r in 0..<ws {
                        let y = wy * ws + r
                        guard y < h, cols > 0 else { continue }
                        (o.baseAddress! + ((bi * h + y) * w + x0) * c).update(from: win + r * ws * c, count: cols * c)
                    }
                } } }
            }
        }
        return out
    }
}
