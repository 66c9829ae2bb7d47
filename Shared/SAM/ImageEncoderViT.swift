import Checkpoint
import NN
import Tensor

/// SAM's ViT image encoder: patch embedding, absolute positions, windowed and global
/// attention blocks with decomposed relative positions, and a neck to `outChans`.
/// ref: segment_anything/modeling/image_encoder.py ImageEncoderViT
public struct ImageEncoderViT: Sendable {
    public struct Config: Sendable, Equatable {
        public var imgSize = 1024, patchSize = 16, inChans = 3
        public var embedDim: Int, depth: Int, numHeads: Int
        public var mlpRatio: Double = 4
        public var outChans = 256
        public var windowSize = 14
        public var globalAttnIndexes: [Int]
        /// build_sam.py: norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)
        public var layerNormEps: Float = 1e-6

        public init(embedDim: Int, depth: Int, numHeads: Int, globalAttnIndexes: [Int]) {
            self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads
            self.globalAttnIndexes = globalAttnIndexes
        }

        // ref: segment_anything/build_sam.py build_sam_vit_{b,l,h}
        public static let vitB = Config(embedDim: 768, depth: 12, numHeads: 12, globalAttnIndexes: [2, 5, 8, 11])
        public static let vitL = Config(embedDim: 1024, depth: 24, numHeads: 16, globalAttnIndexes: [5, 11, 17, 23])
        public static let vitH = Config(embedDim: 1280, depth: 32, numHeads: 16, globalAttnIndexes: [7, 15, 23, 31])

        public var gridSize: Int { imgSize / patchSize }
    }

    public let config: Config
    let patchEmbed: Conv2d
    let posEmbed: Tensor  // [1, grid, grid, dim]
    let blocks: [Block]
    let neck0: Conv2d, neck1: LayerNorm2d, neck2: Conv2d, neck3: LayerNorm2d

    public init(_ vb: WeightLoader, config c: Config) throws {
        config = c
        patchEmbed = try Conv2d(vb.pp("patch_embed").pp("proj"), in: c.inChans, out: c.embedDim,
                                kernel: c.patchSize, stride: c.patchSize)
        posEmbed = try vb.tensor("pos_embed", shape: [1, c.gridSize, c.gridSize, c.embedDim])
        blocks = try (0..<c.depth).map { i in
            let window = c.globalAttnIndexes.contains(i) ? 0 : c.windowSize
            return try Block(vb.pp("blocks").pp(i), config: c, windowSize: window)
        }
        let n = vb.pp("neck")
        neck0 = try Conv2d(n.pp(0), in: c.embedDim, out: c.outChans, kernel: 1, bias: false)
        neck1 = try LayerNorm2d(n.pp(1), channels: c.outChans)
        neck2 = try Conv2d(n.pp(2), in: c.outChans, out: c.outChans, kernel: 3, padding: 1, bias: false)
        neck3 = try LayerNorm2d(n.pp(3), channels: c.outChans)
    }

    /// x: [B, 3, imgSize, imgSize] (normalised, padded) → [B, outChans, grid, grid]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = Ops.permute(patchEmbed(x), [0, 2, 3, 1])  // B, H, W, C
        h += posEmbed
        for blk in blocks { h = blk(h) }
        h = Ops.permute(h, [0, 3, 1, 2])
        return neck3(neck2(neck1(neck0(h))))
    }

    struct Block: Sendable {
        let norm1: LayerNorm, norm2: LayerNorm
        let attn: Attention
        let mlp: MLPBlock
        let windowSize: Int

        init(_ vb: WeightLoader, config c: Config, windowSize: Int) throws {
            norm1 = try LayerNorm(vb.pp("norm1"), dim: c.embedDim, eps: c.layerNormEps)
            norm2 = try LayerNorm(vb.pp("norm2"), dim: c.embedDim, eps: c.layerNormEps)
            let inputSize = windowSize == 0 ? c.gridSize : windowSize
            attn = try Attention(vb.pp("attn"), dim: c.embedDim, heads: c.numHeads, inputSize: inputSize)
            mlp = try MLPBlock(vb.pp("mlp"), dim: c.embedDim, hidden: Int(Double(c.embedDim) * c.mlpRatio), activation: .gelu)
            self.windowSize = windowSize
        }

        // ref: image_encoder.py Block.forward
        func callAsFunction(_ x: Tensor) -> Tensor {
            var h = norm1(x)
            if windowSize > 0 {
                let (hh, ww) = (x.shape[1], x.shape[2])
                let (windows, padHW) = Ops.windowPartition(h, windowSize: windowSize)
                h = Ops.windowUnpartition(attn(windows), windowSize: windowSize, padHW: padHW, hw: (hh, ww))
            } else {
                h = attn(h)
            }
            h += x
            var m = mlp.lin1(norm2(h), then: .gelu, into: mlp.lin2)
            m += h
            return m
        }
    }

    /// Multi-head attention with decomposed relative positions.
    /// ref: image_encoder.py Attention.forward
    struct Attention: Sendable {
        let qkv: Linear, proj: Linear
        let relPosH: Tensor, relPosW: Tensor
        let heads: Int

        init(_ vb: WeightLoader, dim: Int, heads: Int, inputSize: Int) throws {
            qkv = try Linear(vb.pp("qkv"), in: dim, out: 3 * dim)
            proj = try Linear(vb.pp("proj"), in: dim, out: dim)
            let headDim = dim / heads
            relPosH = try vb.tensor("rel_pos_h", shape: [2 * inputSize - 1, headDim])
            relPosW = try vb.tensor("rel_pos_w", shape: [2 * inputSize - 1, headDim])
            self.heads = heads
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let hd = c / heads
            // qkv: [B, HW, 3·C] laid out (3, heads, hd); attention reads each head in place
            // and writes heads merged, i.e. upstream's reshape/permute/unbind and the final
            // permute/reshape are strides, not copies.
            let t = qkv(x.reshaped([b, h * w, c]))
            let q = HeadView(t, column: 0, headStride: hd, headDim: hd)
            let k = HeadView(t, column: c, headStride: hd, headDim: hd)
            let v = HeadView(t, column: 2 * c, headStride: hd, headDim: hd)
            let rel = Ops.decomposedRelPos(q: q, heads: heads, relPosH: relPosH, relPosW: relPosW, qSize: (h, w), kSize: (h, w))
            let o = Ops.multiHeadAttention(q: q, k: k, v: v, heads: heads, scale: 1 / Float(hd).squareRoot(), relPos: rel)
            return proj(o).reshaped([b, h, w, c])
        }
    }
}
