import Checkpoint
import NN
import Tensor

/// The decoder head: a 3×3 conv, a channels-first layer norm, GELU and a 1×1 conv to RGB.
/// Names: transformers `conv` / `layernorm` / `head`; the original `nn.Sequential` indices
/// `0` / `1` / `3` (index 2 is the parameterless GELU).
/// ref: modeling_seggpt.py SegGptDecoderHead; models_seggpt.py SegGPT.decoder_pred
public struct SegGptDecoderHead: Sendable {
    /// The 3×3 kernel as 9 `[Cin, Cout]` matrices, tap-major (ky, kx), packed at load.
    let convTaps: [Float]
    let convBias: Tensor
    let layernorm: LayerNorm
    let head: Linear  // the 1×1 conv
    let channels: Int

    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        let d = c.decoderHiddenSize
        let (convScope, normScope, headScope) = names == .transformers
            ? (vb.pp("conv"), vb.pp("layernorm"), vb.pp("head")) : (vb.pp("0"), vb.pp("1"), vb.pp("3"))
        let w = try convScope.tensor("weight", shape: [d, d, 3, 3])
        convBias = try convScope.tensor("bias", shape: [d])
        // transformers: SegGptLayerNorm(eps=config.layer_norm_eps); original: LayerNorm2D(eps=1e-6).
        layernorm = try LayerNorm(normScope, dim: d, eps: names == .transformers ? c.layerNormEps : 1e-6)
        let hw = try headScope.tensor("weight", shape: [3, d, 1, 1])
        head = Linear(weight: hw.reshaped([3, d]), bias: try headScope.tensor("bias", shape: [3]))
        var taps = [Float](repeating: 0, count: 9 * d * d)
        for co in 0..<d { for ci in 0..<d { for t in 0..<9 { taps[(t * d + ci) * d + co] = w.data[(co * d + ci) * 9 + t] } } }
        convTaps = taps
        channels = d
    }

    /// `padded`: NHWC rows of one image with a zero border, `[(H + 2)·(W + 2) + 2, d]`
    /// (two spare zero rows so the last taps stay in bounds) → RGB `[3, H, W]`.
    ///
    /// The 3×3 conv runs as 9 GEMMs on the padded grid: output pixel `i = y·(W+2) + x` reads
    /// input `i + ky·(W+2) + kx`, so every tap is one `[H·(W+2), d] · [d, d]` product over
    /// contiguous rows; the 2 extra columns per row are computed and dropped. The layer norm
    /// and GELU run on tokens (channels last), the 1×1 conv is a linear.
    func callAsFunction(padded: Tensor, height h: Int, width w: Int) -> Tensor {
        let d = channels, wp = w + 2, m = h * wp
        var out = Tensor.uninitialized([m, d]) { o in
            convBias.data.withUnsafeBufferPointer { b in
                for r in 0..<m { (o.baseAddress! + r * d).update(from: b.baseAddress!, count: d) }
            }
        }
        padded.data.withUnsafeBufferPointer { pp in
            convTaps.withUnsafeBufferPointer { tp in
                out.data.withUnsafeMutableBufferPointer { op in
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            Ops.gemm(m: m, n: d, k: d, a: pp.baseAddress! + (ky * wp + kx) * d, lda: d,
                                     b: tp.baseAddress! + (ky * 3 + kx) * d * d, ldb: d, beta: 1,
                                     c: op.baseAddress!, ldc: d)
                        }
                    }
                }
            }
        }
        var normed = layernorm(out)
        Ops.geluInPlace(&normed)
        let rgb = head(normed)  // [m, 3]
        return Tensor.uninitialized([3, h, w]) { o in
            rgb.data.withUnsafeBufferPointer { r in
                for y in 0..<h {
                    for x in 0..<w {
                        let src = r.baseAddress! + (y * wp + x) * 3
                        for c in 0..<3 { o[(c * h + y) * w + x] = src[c] }
                    }
                }
            }
        }
    }
}

/// `decoder_embed` (concatenated features → p²·d per token), the un-patchify to pixels and
/// the head.
/// ref: modeling_seggpt.py SegGptDecoder; models_seggpt.py SegGPT.forward_decoder
public struct SegGptDecoder: Sendable {
    public let config: SegGptConfig
    let decoderEmbed: Linear
    let decoderPred: SegGptDecoderHead

    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames) throws(CheckpointError) {
        config = c
        let p = c.patchSize
        decoderEmbed = try Linear(vb.pp("decoder_embed"), in: c.hiddenSize * c.intermediateHiddenStateIndices.count,
                                  out: p * p * c.decoderHiddenSize)
        decoderPred = try SegGptDecoderHead(vb.pp("decoder_pred"), config: c, names: names)
    }

    /// Decodes patch rows `rows` of batch entry `entry`: features (each `[N, gh·gw, C]`) →
    /// RGB `[3, rows.count·p, gw·p]` in the network's normalised space.
    ///
    /// The head's 3×3 conv needs one pixel row beyond the range, so one extra patch row is
    /// decoded on each side that has one and cropped afterwards: the result is exactly the
    /// same pixels as decoding the whole canvas (upstream) and slicing.
    public func callAsFunction(_ features: [Tensor], entry: Int = 0, rows: Range<Int>) -> Tensor {
        let (gh, gw) = config.gridSize, p = config.patchSize, d = config.decoderHiddenSize, C = config.hiddenSize
        precondition(rows.lowerBound >= 0 && rows.upperBound <= gh && !rows.isEmpty, "decoder rows \(rows) outside 0..<\(gh)")
        let lo = max(0, rows.lowerBound - 1), hi = min(gh, rows.upperBound + 1)
        let tokens = (hi - lo) * gw, k = features.count
        // torch.cat(features, -1) for the needed tokens only.
        let cat = Tensor.uninitialized([tokens, k * C]) { o in
            for (f, feat) in features.enumerated() {
                feat.data.withUnsafeBufferPointer { fp in
                    let base = fp.baseAddress! + (entry * gh * gw + lo * gw) * C
                    for t in 0..<tokens { (o.baseAddress! + t * k * C + f * C).update(from: base + t * C, count: C) }
                }
            }
        }
        let embedded = decoderEmbed(cat)  // [tokens, p·p·d] laid out (py, px, c)
        // Un-patchify into a zero-bordered NHWC grid: pixel (yy·p + py, xx·p + px) ← token
        // (yy, xx) entry (py, px, :); each (token, py) is p·d contiguous floats.
        // ref: SegGptDecoder._reshape_hidden_states (permute 0,5,1,3,2,4), here channels last.
        let h = (hi - lo) * p, w = gw * p, wp = w + 2
        var padded = Tensor(zeros: [(h + 2) * wp + 2, d])
        padded.data.withUnsafeMutableBufferPointer { op in
            embedded.data.withUnsafeBufferPointer { ep in
                for yy in 0..<(hi - lo) {
                    for xx in 0..<gw {
                        let src = ep.baseAddress! + (yy * gw + xx) * p * p * d
                        for py in 0..<p {
                            let dst = op.baseAddress! + ((yy * p + py + 1) * wp + xx * p + 1) * d
                            dst.update(from: src + py * p * d, count: p * d)
                        }
                    }
                }
            }
        }
        let rgb = decoderPred(padded: padded, height: h, width: w)
        let top = (rows.lowerBound - lo) * p
        if top == 0 && rows.count * p == h { return rgb }
        return Ops.slice(rgb, axis: 1, start: top, end: top + rows.count * p)
    }
}
