import Checkpoint
import NN
import Tensor

/// Global multi-head self-attention with decomposed relative positions over the whole
/// canvas grid. q/k/v are read in place from the fused qkv projection (head views), the
/// rel-pos terms are fused into the softmax pass (`Ops.multiHeadAttention`).
/// Both layouts name the tensors alike (`qkv`, `proj`, `rel_pos_h`, `rel_pos_w`); only the
/// scope differs (`attention` / `attn`), which the layer decides.
/// ref: modeling_seggpt.py SegGptAttention; models_seggpt.py Attention (+ vitdet_utils
///      add_decomposed_rel_pos / get_rel_pos)
public struct SegGptAttention: Sendable {
    let qkv: Linear, proj: Linear
    let relPosH: Tensor?, relPosW: Tensor?
    let heads: Int, grid: (h: Int, w: Int)

    public init(_ vb: WeightLoader, config c: SegGptConfig) throws(CheckpointError) {
        let C = c.hiddenSize
        qkv = try Linear(vb.pp("qkv"), in: C, out: 3 * C, bias: c.qkvBias)
        proj = try Linear(vb.pp("proj"), in: C, out: C)
        grid = c.gridSize
        if c.useRelativePositionEmbeddings {
            relPosH = try vb.tensor("rel_pos_h", shape: [2 * grid.h - 1, c.headDim])
            relPosW = try vb.tensor("rel_pos_w", shape: [2 * grid.w - 1, c.headDim])
        } else {
            relPosH = nil; relPosW = nil
        }
        heads = c.numAttentionHeads
    }

    /// `x: [B, gh·gw, C]` (layer-normed) → `[B, gh·gw, C]` after the output projection.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let c = x.shape[2], hd = c / heads
        // qkv: [B, L, 3·C] laid out (3, heads, hd): upstream's reshape/permute/unbind are strides.
        let t = qkv(x)
        let q = HeadView(t, column: 0, headStride: hd, headDim: hd)
        let k = HeadView(t, column: c, headStride: hd, headDim: hd)
        let v = HeadView(t, column: 2 * c, headStride: hd, headDim: hd)
        var rel: DecomposedRelPos?
        if let relPosH, let relPosW {
            rel = Ops.decomposedRelPos(q: q, heads: heads, relPosH: relPosH, relPosW: relPosW,
                                       qSize: grid, kSize: grid)
        }
        let o = Ops.multiHeadAttention(q: q, k: k, v: v, heads: heads, scale: 1 / Float(hd).squareRoot(), relPos: rel)
        return proj(o)
    }
}
