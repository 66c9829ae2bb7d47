import Checkpoint
import NN
import Tensor

/// Hiera, SAM 2's hierarchical image backbone: a 7×7 stride-4 patch embedding, windowed
/// position embeddings (a bicubic-resized background plus a tiled window pattern), and
/// stages of multi-scale blocks that halve the grid (max-pooled queries) and double the
/// width at each stage change. Returns every stage's output (channels last).
/// ref: transformers/models/sam2/modeling_sam2.py Sam2HieraDetModel; sam2/modeling/backbones/hieradet.py Hiera
public struct Sam2HieraDet: Sendable {
    public let config: Sam2Config.Hiera
    let patchEmbed: Conv2d
    /// `_get_pos_embed` at the configured image size, computed once: [1, H, W, C].
    let posEmbed: Tensor
    let blocks: [MultiScaleBlock]
    let stageEnds: Set<Int>

    public init(_ vb: WeightLoader, config c: Sam2Config.Hiera, names: Sam2WeightNames) throws {
        config = c
        let t = names == .transformers
        patchEmbed = try Conv2d(vb.pp("patch_embed").pp(t ? "projection" : "proj"), in: 3, out: c.hiddenSize,
                                kernel: c.patchKernel, stride: c.patchStride, padding: c.patchPadding)
        let bg = try vb.tensor("pos_embed", shape: [1, c.hiddenSize, c.backgroundSize[0], c.backgroundSize[1]])
        let w0 = c.windowPerStage[0]
        let win = try vb.tensor("pos_embed_window", shape: [1, c.hiddenSize, w0, w0])
        let grid = (c.imageSize + 2 * c.patchPadding - c.patchKernel) / c.patchStride + 1
        posEmbed = Self.positionEmbedding(background: bg, window: win, grid: grid)
        var built: [MultiScaleBlock] = []
        var ends: Set<Int> = []
        var total = 0
        for (stage, count) in c.blocksPerStage.enumerated() {
            for block in 0..<count {
                built.append(try MultiScaleBlock(vb.pp("blocks").pp(total), config: c, stage: stage, block: block,
                                                 total: total, names: names))
                total += 1
            }
            ends.insert(total - 1)
        }
        blocks = built
        stageEnds = ends
    }

    /// ref: modeling_sam2.py Sam2HieraDetModel._get_pos_embed (bicubic, align_corners=False;
    /// the window pattern tiled over the grid)
    static func positionEmbedding(background: Tensor, window: Tensor, grid: Int) -> Tensor {
        let c = background.shape[1], ws = window.shape[2]
        var pe = Ops.interpolateBicubic(background, size: Size2(grid, grid))  // [1, C, g, g]
        pe.data.withUnsafeMutableBufferPointer { p in
            window.data.withUnsafeBufferPointer { w in
                for ch in 0..<c { for y in 0..<grid { for x in 0..<grid {
                    p[(ch * grid + y) * grid + x] += w[(ch * ws + y % ws) * ws + x % ws]
                } } }
            }
        }
        return Ops.permute(pe, [0, 2, 3, 1])
    }

    /// pixels [B, 3, S, S] (normalised) → every stage's output, [B, H_s, W_s, C_s], stage 0 first.
    public func callAsFunction(_ pixels: Tensor) -> [Tensor] {
        var h = Ops.permute(patchEmbed(pixels), [0, 2, 3, 1])
        h += posEmbed
        var stages: [Tensor] = []
        for (i, blk) in blocks.enumerated() {
            h = blk(h)
            if stageEnds.contains(i) { stages.append(h) }
        }
        return stages
    }

    /// ref: modeling_sam2.py Sam2MultiScaleBlock; hieradet.py MultiScaleBlock
    struct MultiScaleBlock: Sendable {
        let dim: Int, dimOut: Int, heads: Int
        let windowSize: Int
        let queryStride: Int?
        let norm1: LayerNorm, norm2: LayerNorm
        let qkv: Linear, attnProj: Linear
        let mlpIn: Linear, mlpOut: Linear
        let proj: Linear?

        init(_ vb: WeightLoader, config c: Sam2Config.Hiera, stage: Int, block: Int, total: Int, names: Sam2WeightNames) throws {
            let first = stage > 0 && block == 0
            dim = first ? c.embedDimPerStage[stage - 1] : c.embedDimPerStage[stage]
            dimOut = c.embedDimPerStage[stage]
            heads = c.headsPerStage[stage]
            let ws = first ? c.windowPerStage[stage - 1] : c.windowPerStage[stage]
            windowSize = c.globalAttentionBlocks.contains(total) ? 0 : ws
            queryStride = (stage > 0 && stage <= c.numQueryPoolStages && block == 0) ? c.queryStride : nil
            let t = names == .transformers
            norm1 = try LayerNorm(vb.pp(t ? "layer_norm1" : "norm1"), dim: dim, eps: c.layerNormEps)
            norm2 = try LayerNorm(vb.pp(t ? "layer_norm2" : "norm2"), dim: dimOut, eps: c.layerNormEps)
            qkv = try Linear(vb.pp("attn").pp("qkv"), in: dim, out: 3 * dimOut)
            attnProj = try Linear(vb.pp("attn").pp("proj"), in: dimOut, out: dimOut)
            let hidden = Int(Double(dimOut) * c.mlpRatio)
            mlpIn = try Linear(vb.pp("mlp").pp(t ? "proj_in" : "layers.0"), in: dimOut, out: hidden)
            mlpOut = try Linear(vb.pp("mlp").pp(t ? "proj_out" : "layers.1"), in: hidden, out: dimOut)
            proj = dim != dimOut ? try Linear(vb.pp("proj"), in: dim, out: dimOut) : nil
        }

        func pool(_ x: Tensor) -> Tensor {
            guard let s = queryStride else { return x }
            return Ops.maxPool2dNHWC(x, kernel: s)
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            let (hh, ww) = (x.shape[1], x.shape[2])
            let normed = norm1(x)
            var residual = x
            if let proj { residual = pool(proj(normed)) }
            var h = normed
            var padHW = (h: hh, w: ww)
            if windowSize > 0 { (h, padHW) = Ops.windowPartition(normed, windowSize: windowSize) }
            var a = attention(h)
            if windowSize > 0 {
                var ws = windowSize
                if let s = queryStride {
                    // Shapes changed with the pooled queries.
                    ws = windowSize / s
                    let (rh, rw) = (residual.shape[1], residual.shape[2])
                    padHW = (rh + (ws - rh % ws) % ws, rw + (ws - rw % ws) % ws)
                }
                a = Ops.windowUnpartition(a, windowSize: ws, padHW: padHW, hw: (residual.shape[1], residual.shape[2]))
            }
            a += residual
            var out = mlpIn(norm2(a), then: .gelu, into: mlpOut)
            out += a
            return out
        }

        /// Multi-head attention over the tokens of each window (or the whole grid), with the
        /// queries max-pooled at a stage change. [B, H, W, dim] → [B, H', W', dimOut].
        /// ref: modeling_sam2.py Sam2MultiScaleAttention.forward
        func attention(_ x: Tensor) -> Tensor {
            let (b, h, w) = (x.shape[0], x.shape[1], x.shape[2])
            let hd = dimOut / heads
            // qkv rows laid out (3, heads, hd): heads are read in place.
            let t = qkv(x.reshaped([b, h * w, dim]))
            let k = HeadView(t, column: dimOut, headStride: hd, headDim: hd)
            let v = HeadView(t, column: 2 * dimOut, headStride: hd, headDim: hd)
            let q: HeadView
            var (oh, ow) = (h, w)
            if let s = queryStride {
                let pooled = Ops.maxPool2dNHWC(Ops.slice(t, axis: 2, start: 0, end: dimOut).reshaped([b, h, w, dimOut]), kernel: s)
                (oh, ow) = (pooled.shape[1], pooled.shape[2])
                q = HeadView(pooled.reshaped([b, oh * ow, dimOut]), column: 0, headStride: hd, headDim: hd)
            } else {
                q = HeadView(t, column: 0, headStride: hd, headDim: hd)
            }
            let o = Ops.multiHeadAttention(q: q, k: k, v: v, heads: heads, scale: 1 / Float(hd).squareRoot())
            return attnProj(o).reshaped([b, oh, ow, dimOut])
        }
    }
}
