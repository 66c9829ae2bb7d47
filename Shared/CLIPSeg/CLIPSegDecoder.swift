import CLIP
import Checkpoint
import Foundation
import NN
import Tensor

/// The prompt-dependent part of CLIPSeg: reduces each extracted activation to
/// `reduce_dim`, adds them deepest first through post-norm transformer layers, applies
/// FiLM with the conditional embedding at `conditional_layer`, drops the class token and
/// upsamples the token grid to pixel logits with the transposed-convolution head.
/// ref: modeling_clipseg.py CLIPSegDecoder
public struct CLIPSegDecoderHead: Sendable {
    enum Upsampler: Sendable {
        /// ConvTranspose2d(reduce_dim, 1, patch, stride=patch)
        case simple(ConvTranspose2d)
        /// Conv2d(3×3, pad 1) → ReLU → ConvTranspose2d(k=s=patch/4) → ReLU → ConvTranspose2d(k=s=patch/4)
        case complex(Conv2d, ConvTranspose2d, ConvTranspose2d)
    }

    let filmMul: Linear, filmAdd: Linear
    let reduces: [Linear]
    let layers: [CLIPSegDecoderLayer]
    let upsampler: Upsampler
    public let config: CLIPSegConfig

    /// `vb` is scoped at `decoder`.
    public init(_ vb: WeightLoader, config c: CLIPSegConfig) throws {
        precondition(!c.extractLayers.isEmpty, "CLIPSeg needs at least one extract layer")
        precondition(c.reduceDim % c.decoderNumAttentionHeads == 0 && c.reduceDim % 2 == 0,
                     "reduce_dim \(c.reduceDim) must split into \(c.decoderNumAttentionHeads) heads and halve")
        config = c
        let r = c.reduceDim, p = c.vision.patchSize
        filmMul = try Linear(vb.pp("film_mul"), in: c.projectionDim, out: r)
        filmAdd = try Linear(vb.pp("film_add"), in: c.projectionDim, out: r)
        let tc = vb.pp("transposed_convolution")
        if c.useComplexTransposedConvolution {
            // ref: CLIPSegDecoder.__init__: transposed_kernels = (patch_size // 4, patch_size // 4);
            // nn.Sequential indices 0 (conv), 2 and 4 (transposed convs); 1 and 3 are ReLUs.
            let k = p / 4
            upsampler = .complex(try Conv2d(tc.pp(0), in: r, out: r, kernel: 3, padding: 1),
                                 try ConvTranspose2d(tc.pp(2), in: r, out: r / 2, kernel: k, stride: k),
                                 try ConvTranspose2d(tc.pp(4), in: r / 2, out: 1, kernel: k, stride: k))
        } else {
            upsampler = .simple(try ConvTranspose2d(tc, in: r, out: 1, kernel: p, stride: p))
        }
        reduces = try c.extractLayers.indices.map {
            try Linear(vb.pp("reduces").pp($0), in: c.vision.hiddenSize, out: r)
        }
        // decoder_config = vision_config with hidden_size = reduce_dim, heads/intermediate from
        // the top-level config, hidden_act = "relu"; layer_norm_eps stays the vision one.
        layers = try c.extractLayers.indices.map {
            try CLIPSegDecoderLayer(vb.pp("layers").pp($0), hidden: r, intermediate: c.decoderIntermediateSize,
                                    heads: c.decoderNumAttentionHeads, eps: c.vision.layerNormEps)
        }
    }

    /// Mask logits `[B, gh·patch, gw·patch]`.
    ///
    /// - `activations`: one `[Ba, 1 + gh·gw, Dv]` tensor per extract layer, in
    ///   `extract_layers` order (shallowest first, as the vision encoder returns them).
    /// - `conditionalEmbeddings`: `[B, projection_dim]`.
    /// `Ba` is `B` or 1; a single image's activations are shared by all B prompts (the
    /// encode-once, decode-many case) without copying them B times.
    /// ref: CLIPSegDecoder.forward
    public func callAsFunction(activations: [Tensor], conditionalEmbeddings cond: Tensor,
                               gridHeight gh: Int, gridWidth gw: Int) throws(CLIPSegError) -> Tensor {
        let c = config
        guard cond.rank == 2, cond.shape[0] > 0, cond.shape[1] == c.projectionDim else {
            throw .shapeMismatch(what: "conditional embeddings", expected: [max(cond.shape.first ?? 1, 1), c.projectionDim], actual: cond.shape)
        }
        let b = cond.shape[0]
        guard activations.count == c.extractLayers.count else {
            throw .shapeMismatch(what: "number of activations", expected: [c.extractLayers.count], actual: [activations.count])
        }
        for a in activations {
            let ba = a.shape.first ?? 0
            guard a.shape == [ba, 1 + gh * gw, c.vision.hiddenSize], ba == b || ba == 1 else {
                throw .shapeMismatch(what: "activation", expected: [b, 1 + gh * gw, c.vision.hiddenSize], actual: a.shape)
            }
        }
        // activations = hidden_states[::-1]: deepest first, zipped with layers and reduces.
        var output: Tensor?
        for (i, activation) in activations.reversed().enumerated() {
            let reduced = reduces[i](activation)
            var o = output.map { reduced + $0 } ?? reduced        // reduce(activation) + output
            if i == c.conditionalLayer {
                // film_mul(cond) * output.permute(1, 0, 2) + film_add(cond), permuted back:
                // the same products and sums on [B, L, R] with cond broadcast over L.
                let mul = filmMul(cond).reshaped([b, 1, c.reduceDim])
                let add = filmAdd(cond).reshaped([b, 1, c.reduceDim])
                o = mul * o + add
            }
            output = layers[i](o)
        }
        var out = output!
        if out.shape[0] != b {  // conditional_layer beyond the layers: FiLM never broadcast
            out = Ops.concat(Array(repeating: out, count: b), axis: 0)
        }
        // output[:, 1:, :].transpose(1, 2).view(B, R, size, size)
        let grid = Ops.transpose(Ops.slice(out, axis: 1, start: 1), 1, 2).reshaped([b, c.reduceDim, gh, gw])
        let logits: Tensor
        switch upsampler {
        case let .simple(ct):
            logits = ct(grid)
        case let .complex(conv, ct1, ct2):
            logits = ct2(Ops.relu(ct1(Ops.relu(conv(grid)))))
        }
        return logits.reshaped([b, logits.shape[2], logits.shape[3]])  // squeeze(1)
    }

    /// Logits for a stored image embedding and `[B, projection_dim]` conditional embeddings.
    public func callAsFunction(_ embedding: CLIPSegImageEmbedding, conditionalEmbeddings: Tensor) throws(CLIPSegError) -> Tensor {
        guard embedding.extractLayers == config.extractLayers else {
            throw .shapeMismatch(what: "embedding extract layers", expected: config.extractLayers, actual: embedding.extractLayers)
        }
        return try self(activations: embedding.activations, conditionalEmbeddings: conditionalEmbeddings,
                        gridHeight: embedding.gridHeight, gridWidth: embedding.gridWidth)
    }
}

/// Post-norm variant of CLIP's encoder layer: `ln1(x + attn(x))`, then `ln2(h + mlp(h))`,
/// with CLIP's attention and a ReLU MLP: CLIPSegDecoder builds its layers from a copy of
/// the vision config with `hidden_act = "relu"` (the top-level `decoder_hidden_act` is
/// never read).
/// ref: modeling_clipseg.py CLIPSegDecoderLayer.forward; CLIPSegDecoder.__init__ (decoder_config)
struct CLIPSegDecoderLayer: Sendable {
    let selfAttn: CLIPAttention
    let layerNorm1: LayerNorm, layerNorm2: LayerNorm
    let mlp: MLPBlock

    init(_ vb: WeightLoader, hidden: Int, intermediate: Int, heads: Int, eps: Float) throws {
        selfAttn = try CLIPAttention(vb.pp("self_attn"), embedDim: hidden, numHeads: heads)
        layerNorm1 = try LayerNorm(vb.pp("layer_norm1"), dim: hidden, eps: eps)
        mlp = try MLPBlock(vb.pp("mlp"), dim: hidden, hidden: intermediate, activation: .relu, names: ("fc1", "fc2"))
        layerNorm2 = try LayerNorm(vb.pp("layer_norm2"), dim: hidden, eps: eps)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = layerNorm1(x + selfAttn(x, mask: nil))
        return layerNorm2(h + mlp(h))
    }
}
