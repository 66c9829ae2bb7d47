import Checkpoint
import Foundation
import NN
import Tensor

// The transformer blocks CLIP's two towers share (and CLIPSeg reuses), one type per
// upstream module, weights bound by the HF state-dict names.
// ref: transformers/models/clip/modeling_clip.py (5.x) CLIPAttention, CLIPMLP,
//      CLIPEncoderLayer, CLIPEncoder

/// `hidden_act` of a CLIP tower.
/// ref: transformers/activations.py QuickGELUActivation, GELUActivation, PytorchGELUTanh
public enum CLIPActivation: String, Sendable, Equatable {
    /// OpenAI CLIP's `x·σ(1.702x)` ("quick_gelu", every OpenAI checkpoint).
    case quickGELU = "quick_gelu"
    /// Exact erf GELU ("gelu"; e.g. LAION/open_clip-converted towers).
    case gelu = "gelu"
    /// tanh-approximated GELU ("gelu_new" / "gelu_pytorch_tanh").
    case geluTanh = "gelu_pytorch_tanh"

    /// From a transformers `hidden_act` string.
    public init(huggingFaceName name: String) throws(CLIPError) {
        switch name {
        case "quick_gelu": self = .quickGELU
        case "gelu": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh": self = .geluTanh
        default: throw .unsupportedActivation(name: name)
        }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .quickGELU: return Ops.quickGELU(x)
        case .gelu: return Ops.gelu(x)
        case .geluTanh: return Ops.gelu(x, approximate: .tanh)
        }
    }
}

/// What the shared blocks read from a tower's config. Upstream builds them from either
/// tower's config (`config: Union[CLIPTextConfig, CLIPVisionConfig]`); both conform.
public protocol CLIPEncoderConfiguration: Sendable {
    var hiddenSize: Int { get }
    var intermediateSize: Int { get }
    var numHiddenLayers: Int { get }
    var numAttentionHeads: Int { get }
    var hiddenAct: CLIPActivation { get }
    var layerNormEps: Float { get }
}

extension CLIPEncoderConfiguration {
    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// ref: modeling_clip.py CLIPAttention (+ eager_attention_forward)
public struct CLIPAttention: Sendable {
    public let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    public let numHeads: Int, headDim: Int
    /// ref: self.scale = self.head_dim**-0.5
    public var scale: Float { 1 / Float(headDim).squareRoot() }

    public init(_ vb: WeightLoader, config: some CLIPEncoderConfiguration) throws(CheckpointError) {
        try self.init(vb, embedDim: config.hiddenSize, numHeads: config.numAttentionHeads)
    }

    /// From explicit sizes (CLIPSeg's decoder layers use this attention at `reduce_dim`).
    public init(_ vb: WeightLoader, embedDim d: Int, numHeads: Int) throws(CheckpointError) {
        precondition(numHeads > 0 && d % numHeads == 0, "embed dim \(d) is not divisible by \(numHeads) heads")
        kProj = try Linear(vb.pp("k_proj"), in: d, out: d)
        vProj = try Linear(vb.pp("v_proj"), in: d, out: d)
        qProj = try Linear(vb.pp("q_proj"), in: d, out: d)
        outProj = try Linear(vb.pp("out_proj"), in: d, out: d)
        self.numHeads = numHeads
        headDim = d / numHeads
    }

    /// `x: [B, L, D]`, `mask`: additive bias broadcastable to `[B, H, L, L]` (the text
    /// tower's causal mask; nil for the vision tower) → `[B, L, D]`.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let b = x.shape[0], l = x.shape[1]
        // ref: queries.view(hidden_shape).transpose(1, 2)  → [B, H, L, hd]
        func heads(_ t: Tensor) -> Tensor { Ops.permute(t.reshaped([b, l, numHeads, headDim]), [0, 2, 1, 3]) }
        let out = Ops.attention(q: heads(qProj(x)), k: heads(kProj(x)), v: heads(vProj(x)), scale: scale, bias: mask)
        // ref: attn_output.reshape(*input_shape, -1) after transpose(1, 2)
        return outProj(Ops.permute(out, [0, 2, 1, 3]).reshaped([b, l, numHeads * headDim]))
    }
}

/// ref: modeling_clip.py CLIPMLP
public struct CLIPMLP: Sendable {
    public let fc1: Linear, fc2: Linear
    public let activation: CLIPActivation

    public init(_ vb: WeightLoader, config: some CLIPEncoderConfiguration) throws(CheckpointError) {
        fc1 = try Linear(vb.pp("fc1"), in: config.hiddenSize, out: config.intermediateSize)
        fc2 = try Linear(vb.pp("fc2"), in: config.intermediateSize, out: config.hiddenSize)
        activation = config.hiddenAct
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}

/// Pre-LN transformer block. ref: modeling_clip.py CLIPEncoderLayer.forward
public struct CLIPEncoderLayer: Sendable {
    public let selfAttn: CLIPAttention
    public let layerNorm1: LayerNorm
    public let mlp: CLIPMLP
    public let layerNorm2: LayerNorm

    public init(_ vb: WeightLoader, config: some CLIPEncoderConfiguration) throws(CheckpointError) {
        selfAttn = try CLIPAttention(vb.pp("self_attn"), config: config)
        layerNorm1 = try LayerNorm(vb.pp("layer_norm1"), dim: config.hiddenSize, eps: config.layerNormEps)
        mlp = try CLIPMLP(vb.pp("mlp"), config: config)
        layerNorm2 = try LayerNorm(vb.pp("layer_norm2"), dim: config.hiddenSize, eps: config.layerNormEps)
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let h = x + selfAttn(layerNorm1(x), mask: mask)
        return h + mlp(layerNorm2(h))
    }
}

/// ref: modeling_clip.py CLIPEncoder
public struct CLIPEncoder: Sendable {
    public let layers: [CLIPEncoderLayer]

    public init(_ vb: WeightLoader, config: some CLIPEncoderConfiguration) throws(CheckpointError) {
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<config.numHiddenLayers { layers.append(try CLIPEncoderLayer(vb.pp("layers").pp(i), config: config)) }
        self.layers = layers
    }

    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        layers.reduce(x) { h, layer in layer(h, mask: mask) }
    }
}
