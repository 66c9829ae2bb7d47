import Checkpoint
import NN
import Tensor

/// Two-way transformer between prompt tokens and image embedding tokens.
/// ref: segment_anything/modeling/transformer.py TwoWayTransformer
public struct TwoWayTransformer: Sendable {
    let layers: [TwoWayAttentionBlock]
    let finalAttnTokenToImage: Attention
    let normFinalAttn: LayerNorm
    /// nn.LayerNorm default inside the transformer.
    static let layerNormEps: Float = 1e-5

    /// The state-dict spelling of the transformer's modules. segment_anything and the official
    /// sam2 package share one; transformers' `Sam2TwoWayTransformer` renames a few.
    public struct Names: Sendable {
        public var outProj: String, norm: String, finalNorm: String, mlp: (String, String)
        /// segment_anything: `out_proj`, `norm1…4`, `norm_final_attn`, `mlp.lin1/lin2`.
        public static let segmentAnything = Names(outProj: "out_proj", norm: "norm", finalNorm: "norm_final_attn",
                                                  mlp: ("lin1", "lin2"))
        /// facebookresearch/sam2: as segment_anything but the MLP is `mlp.layers.0/1`.
        public static let sam2Original = Names(outProj: "out_proj", norm: "norm", finalNorm: "norm_final_attn",
                                               mlp: ("layers.0", "layers.1"))
        /// transformers `Sam2TwoWayTransformer`: `o_proj`, `layer_norm1…4`, `layer_norm_final_attn`, `mlp.proj_in/proj_out`.
        public static let transformersSam2 = Names(outProj: "o_proj", norm: "layer_norm", finalNorm: "layer_norm_final_attn",
                                                   mlp: ("proj_in", "proj_out"))
    }

    public init(_ vb: WeightLoader, depth: Int, embeddingDim: Int, numHeads: Int, mlpDim: Int,
                downsampleRate: Int = 2, names: Names = .segmentAnything) throws {
        layers = try (0..<depth).map {
            try TwoWayAttentionBlock(vb.pp("layers").pp($0), dim: embeddingDim, heads: numHeads, mlpDim: mlpDim,
                                     skipFirstLayerPE: $0 == 0, downsampleRate: downsampleRate, names: names)
        }
        finalAttnTokenToImage = try Attention(vb.pp("final_attn_token_to_image"), dim: embeddingDim, heads: numHeads,
                                              downsampleRate: downsampleRate, outProj: names.outProj)
        normFinalAttn = try LayerNorm(vb.pp(names.finalNorm), dim: embeddingDim, eps: Self.layerNormEps)
    }

    /// image: [B or 1, C, H, W], imagePE: [B or 1, C, H, W], tokens: [B, N, C]
    /// → (queries [B, N, C], keys [B, HW, C]). A batch-1 image/PE is shared by all B
    /// prompts (never replicated): the image side of layer 0 is computed once.
    public func callAsFunction(image: Tensor, imagePE: Tensor, tokens: Tensor) -> (Tensor, Tensor) {
        let (bi, c, h, w) = (image.shape[0], image.shape[1], image.shape[2], image.shape[3])
        let keys0 = Ops.permute(image.reshaped([bi, c, h * w]), [0, 2, 1])
        let keyPE = Ops.permute(imagePE.reshaped([imagePE.shape[0], c, h * w]), [0, 2, 1])
        var queries = tokens, keys = keys0
        for layer in layers { (queries, keys) = layer(queries: queries, keys: keys, queryPE: tokens, keyPE: keyPE) }
        var kWithPE = keys
        kWithPE += keyPE
        var out = finalAttnTokenToImage.tokenToImage(q: queries + tokens, kIn: kWithPE, vIn: keys)
        out += queries
        queries = normFinalAttn(out)
        return (queries, keys)
    }

    /// ref: transformer.py TwoWayAttentionBlock
    struct TwoWayAttentionBlock: Sendable {
        let selfAttn: Attention, crossTokenToImage: Attention, crossImageToToken: Attention
        let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm, norm4: LayerNorm
        let mlp: MLPBlock
        let skipFirstLayerPE: Bool

        init(_ vb: WeightLoader, dim: Int, heads: Int, mlpDim: Int, skipFirstLayerPE: Bool, downsampleRate: Int,
             names: Names) throws {
            selfAttn = try Attention(vb.pp("self_attn"), dim: dim, heads: heads, downsampleRate: 1, outProj: names.outProj)
            crossTokenToImage = try Attention(vb.pp("cross_attn_token_to_image"), dim: dim, heads: heads,
                                              downsampleRate: downsampleRate, outProj: names.outProj)
            crossImageToToken = try Attention(vb.pp("cross_attn_image_to_token"), dim: dim, heads: heads,
                                              downsampleRate: downsampleRate, outProj: names.outProj)
            let eps = TwoWayTransformer.layerNormEps
            norm1 = try LayerNorm(vb.pp(names.norm + "1"), dim: dim, eps: eps)
            norm2 = try LayerNorm(vb.pp(names.norm + "2"), dim: dim, eps: eps)
            norm3 = try LayerNorm(vb.pp(names.norm + "3"), dim: dim, eps: eps)
            norm4 = try LayerNorm(vb.pp(names.norm + "4"), dim: dim, eps: eps)
            mlp = try MLPBlock(vb.pp("mlp"), dim: dim, hidden: mlpDim, activation: .relu, names: names.mlp)
            self.skipFirstLayerPE = skipFirstLayerPE
        }

        func callAsFunction(queries q0: Tensor, keys k0: Tensor, queryPE: Tensor, keyPE: Tensor) -> (Tensor, Tensor) {
            var queries: Tensor
            if skipFirstLayerPE {
                queries = selfAttn(q: q0, k: q0, v: q0)
            } else {
                let q = q0 + queryPE
                queries = selfAttn(q: q, k: q, v: q0)
                queries += q0
            }
            queries = norm1(queries)
            var kWithPE = k0
            kWithPE += keyPE
            var t = crossTokenToImage.tokenToImage(q: queries + queryPE, kIn: kWithPE, vIn: k0)
            t += queries
            queries = norm2(t)
            var m = mlp(queries)
            m += queries
            queries = norm3(m)
            var keys = crossImageToToken.imageToToken(qIn: kWithPE, kTok: queries + queryPE, vTok: queries)
            keys += k0
            return (queries, norm4(keys))
        }
    }

    /// Attention with projections to an optionally downsampled internal width.
    /// ref: transformer.py Attention
    struct Attention: Sendable {
        let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
        let heads: Int, internalDim: Int

        init(_ vb: WeightLoader, dim: Int, heads: Int, downsampleRate: Int, outProj outName: String) throws {
            internalDim = dim / downsampleRate
            self.heads = heads
            qProj = try Linear(vb.pp("q_proj"), in: dim, out: internalDim)
            kProj = try Linear(vb.pp("k_proj"), in: dim, out: internalDim)
            vProj = try Linear(vb.pp("v_proj"), in: dim, out: internalDim)
            outProj = try Linear(vb.pp(outName), in: internalDim, out: dim)
        }

        /// Small attention on token sets (prompt self-attention): heads read in place.
        func callAsFunction(q: Tensor, k: Tensor, v: Tensor) -> Tensor {
            let o = Ops.multiHeadAttention(q: .contiguous(qProj(q), heads: heads), k: .contiguous(kProj(k), heads: heads),
                                           v: .contiguous(vProj(v), heads: heads), heads: heads,
                                           scale: 1 / Float(internalDim / heads).squareRoot())
            return outProj(o)
        }

        /// Prompt tokens attend to image tokens: `q: [B, N, C]`, `kIn`/`vIn`: `[Bk, HW, C]`
        /// (`Bk` = 1 shared by all prompts, or B) → `[B, N, C]`.
        ///
        /// Same function as `callAsFunction`, reassociated so the 4096-row image tokens
        /// are never projected (N ≈ 7 ≪ HW): per head, `q_h·k_hᵀ = (q_h·W_k,h)·kInᵀ + q_h·b_k,h`
        /// — the last term is constant along each softmax row and drops out — and
        /// `P·v_h = (P·vIn)·W_v,hᵀ + b_v,h` because softmax rows sum to 1. Heads (and, for a
        /// shared image, all prompts) are stacked so each product is one GEMM.
        /// ~4× fewer FLOPs than projecting k and v; equal up to Float rounding.
        func tokenToImage(q: Tensor, kIn: Tensor, vIn: Tensor) -> Tensor {
            let (b, n, c) = (q.shape[0], q.shape[1], q.shape[2])
            let (bk, hw) = (kIn.shape[0], kIn.shape[1])
            precondition(vIn.shape == kIn.shape && (bk == 1 || bk == b) && kIn.shape[2] == c,
                         "tokenToImage: q \(q.shape), k \(kIn.shape), v \(vIn.shape)")
            let hd = internalDim / heads, di = internalDim
            let scale = 1 / Float(hd).squareRoot()
            let qp = qProj(q)  // [B, N, di]
            let groups = bk == 1 ? 1 : b, per = bk == 1 ? b : 1
            let rows = heads * per * n
            var merged = Tensor.uninitialized([b, n, di]) { o in
                vProj.bias!.data.withUnsafeBufferPointer { bp in
                    for r in 0..<(b * n) { (o.baseAddress! + r * di).update(from: bp.baseAddress!, count: di) }
                }
            }
            let a = UnsafeMutablePointer<Float>.allocate(capacity: rows * c)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * hw)
            let ctx = UnsafeMutablePointer<Float>.allocate(capacity: rows * c)
            defer { a.deallocate(); scores.deallocate(); ctx.deallocate() }
            qp.data.withUnsafeBufferPointer { qb in
            kIn.data.withUnsafeBufferPointer { kb in
            vIn.data.withUnsafeBufferPointer { vb in
            kProj.weight.data.withUnsafeBufferPointer { wk in
            vProj.weight.data.withUnsafeBufferPointer { wv in
            merged.data.withUnsafeMutableBufferPointer { ob in
                for g in 0..<groups {
                    let q0 = qb.baseAddress! + g * per * n * di
                    // A rows (h, prompt, token) = q_h · W_k,h  ([per·N, hd]·[hd, C])
                    for h in 0..<heads {
                        Ops.gemm(m: per * n, n: c, k: hd, a: UnsafePointer(q0 + h * hd), lda: di, b: wk.baseAddress! + h * hd * c, ldb: c,
                                 c: a + h * per * n * c, ldc: c)
                    }
                    Ops.gemm(transB: true, m: rows, n: hw, k: c, alpha: scale, a: a, lda: c,
                             b: kb.baseAddress! + g * hw * c, ldb: c, c: scores, ldc: hw)
                    Ops.softmaxRows(scores, rows: rows, cols: hw)
                    Ops.gemm(m: rows, n: c, k: hw, a: scores, lda: hw, b: vb.baseAddress! + g * hw * c, ldb: c, c: ctx, ldc: c)
                    // out_h = ctx_h · W_v,hᵀ + b_v,h, written into the merged-head layout.
                    for h in 0..<heads {
                        Ops.gemm(transB: true, m: per * n, n: hd, k: c, a: ctx + h * per * n * c, lda: c,
                                 b: wv.baseAddress! + h * hd * c, ldb: c, beta: 1,
                                 c: ob.baseAddress! + g * per * n * di + h * hd, ldc: di)
                    }
                }
            }}}}}}
            return outProj(merged)
        }

        /// Image tokens attend to prompt tokens: `qIn: [Bq, HW, C]` (`Bq` = 1 shared, or B),
        /// `kTok`/`vTok`: `[B, N, C]` → `outProj(attention)`: `[B, HW, C]`.
        ///
        /// Reassociated so neither the 4096 queries nor the 4096 outputs are projected:
        /// `q_h·k_hᵀ = qIn·(W_q,hᵀ·k_hᵀ) + b_q,h·k_hᵀ` (a per-column bias) and
        /// `outProj(concat_h P_h·v_h) = Σ_h P_h·(v_h·W_o,hᵀ) + b_o`; all heads are stacked
        /// into the columns of one GEMM each way. ~2.3× fewer FLOPs; equal up to rounding.
        func imageToToken(qIn: Tensor, kTok: Tensor, vTok: Tensor) -> Tensor {
            let (b, n, c) = (kTok.shape[0], kTok.shape[1], kTok.shape[2])
            let (bq, hw) = (qIn.shape[0], qIn.shape[1])
            precondition(vTok.shape == kTok.shape && (bq == 1 || bq == b) && qIn.shape[2] == c,
                         "imageToToken: q \(qIn.shape), k \(kTok.shape), v \(vTok.shape)")
            let hd = internalDim / heads, di = internalDim, hn = heads * n
            let scale = 1 / Float(hd).squareRoot()
            let kp = kProj(kTok), vp = vProj(vTok)  // [B, N, di]
            var out = Tensor.uninitialized([b, hw, c]) { _ in }
            let bmat = UnsafeMutablePointer<Float>.allocate(capacity: c * hn)
            let u = UnsafeMutablePointer<Float>.allocate(capacity: hn * c)
            var cvec = [Float](repeating: 0, count: hn)
            defer { bmat.deallocate(); u.deallocate() }
            let wq = qProj.weight.data, bqv = qProj.bias!.data, wo = outProj.weight.data, bo = outProj.bias!.data
            kp.data.withUnsafeBufferPointer { kb in
            vp.data.withUnsafeBufferPointer { vb in
            qIn.data.withUnsafeBufferPointer { qb in
            wq.withUnsafeBufferPointer { wqp in
            wo.withUnsafeBufferPointer { wop in
            out.data.withUnsafeMutableBufferPointer { ob in
                for bi in 0..<b {
                    let k0 = kb.baseAddress! + bi * n * di, v0 = vb.baseAddress! + bi * n * di
                    for h in 0..<heads {
                        // bmat[:, h·N ..< (h+1)·N] = scale · W_q,hᵀ · k_hᵀ   ([C, hd]·[hd, N])
                        Ops.gemm(transA: true, transB: true, m: c, n: n, k: hd, alpha: scale,
                                 a: wqp.baseAddress! + h * hd * c, lda: c, b: k0 + h * hd, ldb: di,
                                 c: bmat + h * n, ldc: hn)
                        for t in 0..<n {
                            var acc: Float = 0
                            for j in 0..<hd { acc += bqv[h * hd + j] * k0[t * di + h * hd + j] }
                            cvec[h * n + t] = scale * acc
                        }
                        // u[h·N ..< (h+1)·N, :] = v_h · W_o,hᵀ   ([N, hd]·[hd, C])
                        Ops.gemm(transB: true, m: n, n: c, k: hd, a: v0 + h * hd, lda: di,
                                 b: wop.baseAddress! + h * hd, ldb: di, c: u + h * n * c, ldc: c)
                    }
                    // scores [HW, heads·N] = qIn · bmat + cvec, softmax per (pixel, head) group of N.
                    let s = UnsafeMutablePointer<Float>.allocate(capacity: hw * hn)
                    defer { s.deallocate() }
                    cvec.withUnsafeBufferPointer { cv in
                        for r in 0..<hw { (s + r * hn).update(from: cv.baseAddress!, count: hn) }
                    }
                    Ops.gemm(m: hw, n: hn, k: c, a: qb.baseAddress! + (bq == 1 ? 0 : bi) * hw * c, lda: c,
                             b: bmat, ldb: hn, beta: 1, c: s, ldc: hn)
                    Ops.softmaxRows(s, rows: hw * heads, cols: n)
                    let o = ob.baseAddress! + bi * hw * c
                    bo.withUnsafeBufferPointer { bp in
                        for r in 0..<hw { (o + r * c).update(from: bp.baseAddress!, count: c) }
                    }
                    Ops.gemm(m: hw, n: c, k: hn, a: s, lda: hn, b: u, ldb: c, beta: 1, c: o, ldc: c)
                }
            }}}}}}
            return out
        }
    }
}
