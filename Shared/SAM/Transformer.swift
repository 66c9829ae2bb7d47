import Checkpoint
import Tensor

/// Two-way transformer between prompt tokens and image embedding tokens.
/// ref: segment_anything/modeling/transformer.py TwoWayTransformer
public struct TwoWayTransformer: Sendable {
    let layers: [TwoWayAttentionBlock]
    let finalAttnTokenToImage: Attention
    let normFinalAttn: LayerNorm
    /// nn.LayerNorm default inside the transformer.
    static let layerNormEps: Float = 1e-5

    public init(_ vb: WeightLoader, depth: Int, embeddingDim: Int, numHeads: Int, mlpDim: Int) throws {
        layers = try (0..<depth).map {
            try TwoWayAttentionBlock(vb.pp("layers").pp($0), dim: embeddingDim, heads: numHeads, mlpDim: mlpDim,
                                     skipFirstLayerPE: $0 == 0)
        }
        finalAttnTokenToImage = try Attention(vb.pp("final_attn_token_to_image"), dim: embeddingDim, heads: numHeads, downsampleRate: 2)
        normFinalAttn = try LayerNorm(vb.pp("norm_final_attn"), dim: embeddingDim, eps: Self.layerNormEps)
    }

    /// image: [B, C, H, W], imagePE: [B, C, H, W], tokens: [B, N, C] → (queries [B, N, C], keys [B, HW, C])
    public func callAsFunction(image: Tensor, imagePE: Tensor, tokens: Tensor) -> (Tensor, Tensor) {
        let (b, c, h, w) = (image.shape[0], image.shape[1], image.shape[2], image.shape[3])
        let keys0 = Ops.permute(image.reshaped([b, c, h * w]), [0, 2, 1])
        let keyPE = Ops.permute(imagePE.reshaped([imagePE.shape[0], c, h * w]), [0, 2, 1])
        var queries = tokens, keys = keys0
        for layer in layers { (queries, keys) = layer(queries: queries, keys: keys, queryPE: tokens, keyPE: keyPE) }
        let attnOut = finalAttnTokenToImage(q: queries + tokens, k: keys + keyPE, v: keys)
        queries = normFinalAttn(queries + attnOut)
        return (queries, keys)
    }

    /// ref: transformer.py TwoWayAttentionBlock
    struct TwoWayAttentionBlock: Sendable {
        let selfAttn: Attention, crossTokenToImage: Attention, crossImageToToken: Attention
        let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm, norm4: LayerNorm
        let mlp: MLPBlock
        let skipFirstLayerPE: Bool

        init(_ vb: WeightLoader, dim: Int, heads: Int, mlpDim: Int, skipFirstLayerPE: Bool) throws {
            selfAttn = try Attention(vb.pp("self_attn"), dim: dim, heads: heads, downsampleRate: 1)
            crossTokenToImage = try Attention(vb.pp("cross_attn_token_to_image"), dim: dim, heads: heads, downsampleRate: 2)
            crossImageToToken = try Attention(vb.pp("cross_attn_image_to_token"), dim: dim, heads: heads, downsampleRate: 2)
            let eps = TwoWayTransformer.layerNormEps
            norm1 = try LayerNorm(vb.pp("norm1"), dim: dim, eps: eps)
            norm2 = try LayerNorm(vb.pp("norm2"), dim: dim, eps: eps)
            norm3 = try LayerNorm(vb.pp("norm3"), dim: dim, eps: eps)
            norm4 = try LayerNorm(vb.pp("norm4"), dim: dim, eps: eps)
            mlp = try MLPBlock(vb.pp("mlp"), dim: dim, hidden: mlpDim, activation: .relu)
            self.skipFirstLayerPE = skipFirstLayerPE
        }

        func callAsFunction(queries q0: Tensor, keys k0: Tensor, queryPE: Tensor, keyPE: Tensor) -> (Tensor, Tensor) {
            var queries: Tensor
            if skipFirstLayerPE {
                queries = selfAttn(q: q0, k: q0, v: q0)
            } else {
                let q = q0 + queryPE
                queries = q0 + selfAttn(q: q, k: q, v: q0)
            }
            queries = norm1(queries)
            let kWithPE = k0 + keyPE
            queries = norm2(queries + crossTokenToImage(q: queries + queryPE, k: kWithPE, v: k0))
            queries = norm3(queries + mlp(queries))
            let keys = norm4(k0 + crossImageToToken(q: kWithPE, k: queries + queryPE, v: queries))
            return (queries, keys)
        }
    }

    /// Attention with projections to an optionally downsampled internal width.
    /// ref: transformer.py Attention
    struct Attention: Sendable {
        let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
        let heads: Int, internalDim: Int

        init(_ vb: WeightLoader, dim: Int, heads: Int, downsampleRate: Int) throws {
            internalDim = dim / downsampleRate
            self.heads = heads
            qProj = try Linear(vb.pp("q_proj"), in: dim, out: internalDim)
            kProj = try Linear(vb.pp("k_proj"), in: dim, out: internalDim)
            vProj = try Linear(vb.pp("v_proj"), in: dim, out: internalDim)
            outProj = try Linear(vb.pp("out_proj"), in: internalDim, out: dim)
        }

        func separate(_ x: Tensor) -> Tensor {
            let (b, n) = (x.shape[0], x.shape[1])
            return Ops.permute(x.reshaped([b, n, heads, internalDim / heads]), [0, 2, 1, 3])
        }

        func callAsFunction(q: Tensor, k: Tensor, v: Tensor) -> Tensor {
            let qh = separate(qProj(q)), kh = separate(kProj(k)), vh = separate(vProj(v))
            let o = Ops.attention(q: qh, k: kh, v: vh, scale: 1 / Float(internalDim / heads).squareRoot())
            let (b, n) = (o.shape[0], o.shape[2])
            return outProj(Ops.permute(o, [0, 2, 1, 3]).reshaped([b, n, internalDim]))
        }
    }
}
