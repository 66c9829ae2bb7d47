import Checkpoint
import NN
import Tensor

/// Multi-head self-attention with separate q/k/v/out projections.
/// ref: modeling_clipseg.py CLIPSegAttention.forward, eager_attention_forward
struct CLIPSegAttention: Sendable {
    let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    let numHeads: Int, headDim: Int

    init(_ vb: WeightLoader, embedDim: Int, numHeads: Int) throws {
        precondition(embedDim % numHeads == 0, "embed dim \(embedDim) not divisible by \(numHeads) heads")
        kProj = try Linear(vb.pp("k_proj"), in: embedDim, out: embedDim)
        vProj = try Linear(vb.pp("v_proj"), in: embedDim, out: embedDim)
        qProj = try Linear(vb.pp("q_proj"), in: embedDim, out: embedDim)
        outProj = try Linear(vb.pp("out_proj"), in: embedDim, out: embedDim)
        self.numHeads = numHeads
        self.headDim = embedDim / numHeads
    }

    /// `x: [B, L, D]`; `mask` is an additive bias broadcastable to `[B, H, L, L]`.
    func callAsFunction(_ x: Tensor, mask: Tensor? = nil) -> Tensor {
        let (b, l) = (x.shape[0], x.shape[1])
        // [B, L, D] → [B, L, H, hd] → [B, H, L, hd]   ref: CLIPSegAttention.forward (view + transpose(1, 2))
        func heads(_ t: Tensor) -> Tensor { Ops.permute(t.reshaped([b, l, numHeads, headDim]), [0, 2, 1, 3]) }
        // scale = head_dim ** -0.5, applied to q·kᵀ   ref: CLIPSegAttention.__init__ (self.scale)
        let scale = 1 / Float(headDim).squareRoot()
        let o = Ops.attention(q: heads(qProj(x)), k: heads(kProj(x)), v: heads(vProj(x)), scale: scale, bias: mask)
        return outProj(Ops.permute(o, [0, 2, 1, 3]).reshaped([b, l, numHeads * headDim]))
    }
}

/// fc1 → activation → fc2. ref: modeling_clipseg.py CLIPSegMLP
struct CLIPSegMLP: Sendable {
    enum Activation: Sendable { case quickGELU, relu }
    let fc1: Linear, fc2: Linear
    let activation: Activation

    init(_ vb: WeightLoader, hidden: Int, intermediate: Int, activation: Activation) throws {
        fc1 = try Linear(vb.pp("fc1"), in: hidden, out: intermediate)
        fc2 = try Linear(vb.pp("fc2"), in: intermediate, out: hidden)
        self.activation = activation
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = fc1(x)
        return fc2(activation == .quickGELU ? Ops.quickGELU(h) : Ops.relu(h))
    }
}

/// Pre-norm transformer layer (CLIP's): `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
/// ref: modeling_clipseg.py CLIPSegEncoderLayer.forward
struct CLIPSegEncoderLayer: Sendable {
    let selfAttn: CLIPSegAttention
    let layerNorm1: LayerNorm, layerNorm2: LayerNorm
    let mlp: CLIPSegMLP

    init(_ vb: WeightLoader, hidden: Int, intermediate: Int, heads: Int, eps: Float) throws {
        selfAttn = try CLIPSegAttention(vb.pp("self_attn"), embedDim: hidden, numHeads: heads)
        layerNorm1 = try LayerNorm(vb.pp("layer_norm1"), dim: hidden, eps: eps)
        // Both CLIPSeg towers use quick_gelu (configuration_clipseg.py hidden_act defaults; the
        // rd64-refined config does not override them).
        mlp = try CLIPSegMLP(vb.pp("mlp"), hidden: hidden, intermediate: intermediate, activation: .quickGELU)
        layerNorm2 = try LayerNorm(vb.pp("layer_norm2"), dim: hidden, eps: eps)
    }

    func callAsFunction(_ x: Tensor, mask: Tensor? = nil) -> Tensor {
        let h = x + selfAttn(layerNorm1(x), mask: mask)
        return h + mlp(layerNorm2(h))
    }
}

/// Post-norm variant used by the decoder: `ln1(x + attn(x))`, then `ln2(h + mlp(h))`,
/// with a ReLU MLP: CLIPSegDecoder builds its layers from a copy of the vision config with
/// `hidden_act = "relu"` (the top-level `decoder_hidden_act` is never read).
/// ref: modeling_clipseg.py CLIPSegDecoderLayer.forward; CLIPSegDecoder.__init__ (decoder_config)
struct CLIPSegDecoderLayer: Sendable {
    let selfAttn: CLIPSegAttention
    let layerNorm1: LayerNorm, layerNorm2: LayerNorm
    let mlp: CLIPSegMLP

    init(_ vb: WeightLoader, hidden: Int, intermediate: Int, heads: Int, eps: Float) throws {
        selfAttn = try CLIPSegAttention(vb.pp("self_attn"), embedDim: hidden, numHeads: heads)
        layerNorm1 = try LayerNorm(vb.pp("layer_norm1"), dim: hidden, eps: eps)
        mlp = try CLIPSegMLP(vb.pp("mlp"), hidden: hidden, intermediate: intermediate, activation: .relu)
        layerNorm2 = try LayerNorm(vb.pp("layer_norm2"), dim: hidden, eps: eps)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = layerNorm1(x + selfAttn(x))
        return layerNorm2(h + mlp(h))
    }
}

/// A stack of pre-norm layers. ref: modeling_clipseg.py CLIPSegEncoder
struct CLIPSegEncoder: Sendable {
    let layers: [CLIPSegEncoderLayer]

    init(_ vb: WeightLoader, hidden: Int, intermediate: Int, heads: Int, layers n: Int, eps: Float) throws {
        layers = try (0..<n).map {
            try CLIPSegEncoderLayer(vb.pp("layers").pp($0), hidden: hidden, intermediate: intermediate, heads: heads, eps: eps)
        }
    }
}
