import Checkpoint
import Foundation
import NN
import Tensor

/// Memory attention: the current frame's coarsest features attend to themselves and to the
/// object's memory (spatial memories of past frames + object pointers), with 2-D axial RoPE on
/// queries and on the spatial memory keys (the pointer tokens at the end are not rotated).
/// ref: modeling_sam2_video.py Sam2VideoMemoryAttention, Sam2VideoMemoryAttentionLayer,
///      Sam2VideoRoPEAttention, Sam2VideoVisionRotaryEmbedding, apply_rotary_pos_emb_2d
public struct Sam2MemoryAttention: Sendable {
    struct RoPEAttention: Sendable {
        let q: Linear, k: Linear, v: Linear, o: Linear
        let heads: Int
    }
    struct Layer: Sendable {
        let selfAttn: RoPEAttention, crossAttn: RoPEAttention
        let linear1: Linear, linear2: Linear
        let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    }
    let layers: [Layer]
    let norm: LayerNorm
    /// cos / sin per (token, head-dim) of the feature grid: [N · d].
    let cos: [Float], sin: [Float]
    let headDim: Int, tokens: Int
    /// nn.LayerNorm default.
    static let normEps: Float = 1e-5

    /// `names`: transformers (`o_proj`, `layer_norm1…3`, `layer_norm`) or the sam2 package's
    /// (`out_proj`, `norm1…3`, `norm`).
    public init(_ vb: WeightLoader, config c: Sam2VideoConfig, memoryDim: Int, names: Sam2WeightNames = .transformers) throws {
        let t = names == .transformers
        let hidden = c.memoryAttentionHiddenSize, inner = hidden / c.memoryAttentionDownsampleRate
        let heads = c.memoryAttentionHeads
        func attn(_ s: WeightLoader, kvIn: Int) throws -> RoPEAttention {
            RoPEAttention(q: try Linear(s.pp("q_proj"), in: hidden, out: inner), k: try Linear(s.pp("k_proj"), in: kvIn, out: inner),
                          v: try Linear(s.pp("v_proj"), in: kvIn, out: inner),
                          o: try Linear(s.pp(t ? "o_proj" : "out_proj"), in: inner, out: hidden), heads: heads)
        }
        let ln = t ? "layer_norm" : "norm"
        layers = try (0..<c.memoryAttentionLayers).map { i in
            let l = vb.pp("layers").pp(i)
            return Layer(selfAttn: try attn(l.pp("self_attn"), kvIn: hidden), crossAttn: try attn(l.pp("cross_attn_image"), kvIn: memoryDim),
                         linear1: try Linear(l.pp("linear1"), in: hidden, out: c.memoryAttentionFeedForward),
                         linear2: try Linear(l.pp("linear2"), in: c.memoryAttentionFeedForward, out: hidden),
                         norm1: try LayerNorm(l.pp(ln + "1"), dim: hidden, eps: Self.normEps),
                         norm2: try LayerNorm(l.pp(ln + "2"), dim: hidden, eps: Self.normEps),
                         norm3: try LayerNorm(l.pp(ln + "3"), dim: hidden, eps: Self.normEps))
        }
        norm = try LayerNorm(vb.pp(ln), dim: hidden, eps: Self.normEps)
        // Axial RoPE: the first half of each head's pairs turn with x, the second half with y.
        let d = inner / heads, q = d / 4
        let invFreq = (0..<q).map { j -> Float in 1 / powf(c.ropeTheta, Float(2 * j) / Float(d / 2)) }
        let (fw, fh) = (c.ropeFeatSizes[0], c.ropeFeatSizes[1])
        var cs = [Float](repeating: 0, count: fw * fh * d), sn = cs
        for n in 0..<(fw * fh) {
            let x = Float(n % fw), y = Float(n / fw)
            for j in 0..<(2 * q) {
                let angle = (j < q ? x : y) * invFreq[j % q]
                for k in 0..<2 { cs[n * d + 2 * j + k] = cosf(angle); sn[n * d + 2 * j + k] = sinf(angle) }
            }
        }
        cos = cs; sin = sn; headDim = d; tokens = fw * fh
    }

    /// Rotates rows [0, rows) of `x` ([rows, heads·d]) in place; row r uses grid token r mod N.
    func rotate(_ x: inout Tensor, rows: Int, heads: Int) {
        let d = headDim, w = heads * d
        x.data.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let t = (r % tokens) * d
                for h in 0..<heads {
                    let base = r * w + h * d
                    for i in stride(from: 0, to: d, by: 2) {
                        let a = p[base + i], b = p[base + i + 1]
                        p[base + i] = a * cos[t + i] - b * sin[t + i]
                        p[base + i + 1] = b * cos[t + i + 1] + a * sin[t + i + 1]
                    }
                }
            }
        }
    }

    /// With one head and values narrower than the attention width (the cross-attention:
    /// 64-dim memories, 256-dim attention), the value projection is applied after the
    /// weighted sum instead of before: `P·(M·Wᵀ + 1·bᵀ) = (P·M)·Wᵀ + bᵀ` since every row
    /// of P sums to 1. Same result up to f32 rounding; the P·V product over up to 28,700
    /// memory tokens then costs a quarter (64 instead of 256 columns). RoPE touches only q
    /// and k, so the values are free to move.
    func attend(_ a: RoPEAttention, query: Tensor, key: Tensor, value: Tensor, excludeFromRoPE: Int) -> Tensor {
        var q = a.q(query), k = a.k(key)
        let projectAfter = a.heads == 1 && value.shape[1] < q.shape[1]
        let v = projectAfter ? value : a.v(value)
        precondition(q.shape[0] == tokens, "memory attention: \(q.shape[0]) query tokens for a \(tokens)-token RoPE grid")
        rotate(&q, rows: q.shape[0], heads: a.heads)
        rotate(&k, rows: k.shape[0] - excludeFromRoPE, heads: a.heads)
        let o = Ops.multiHeadAttention(q: .contiguous(q.reshaped([1] + q.shape), heads: a.heads),
                                       k: .contiguous(k.reshaped([1] + k.shape), heads: a.heads),
                                       v: .contiguous(v.reshaped([1] + v.shape), heads: a.heads), heads: a.heads,
                                       scale: 1 / Float(headDim).squareRoot())
        let weighted = o.reshaped([q.shape[0], v.shape[1]])
        return a.o(projectAfter ? a.v(weighted) : weighted)
    }

    /// current [N, C] (coarsest features as tokens), currentPos [N, C], memory / memoryPos
    /// [M, memDim] with the last `pointerTokens` rows object pointers → [N, C].
    public func callAsFunction(current: Tensor, currentPos: Tensor, memory: Tensor, memoryPos: Tensor, pointerTokens: Int) -> Tensor {
        var out = Ops.add(current, Ops.mul(currentPos, 0.1))
        let keys = Ops.add(memory, memoryPos)
        for l in layers {
            let q1 = l.norm1(out)
            out += attend(l.selfAttn, query: q1, key: q1, value: q1, excludeFromRoPE: 0)
            out += attend(l.crossAttn, query: l.norm2(out), key: keys, value: memory, excludeFromRoPE: pointerTokens)
            var m = l.linear1(l.norm3(out))
            Ops.reluInPlace(&m)
            out += l.linear2(m)
        }
        return norm(out)
    }
}
