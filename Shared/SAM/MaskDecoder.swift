import Checkpoint
import NN
import Tensor

/// Predicts masks and their IoU from image and prompt embeddings.
/// ref: segment_anything/modeling/mask_decoder.py MaskDecoder
public struct MaskDecoder: Sendable {
    public let transformerDim: Int
    public let numMaskTokens: Int
    let transformer: TwoWayTransformer
    let iouToken: Tensor      // [1, C]
    let maskTokens: Tensor    // [numMaskTokens, C]
    let upscale0: ConvTranspose2d, upscale1: LayerNorm2d, upscale3: ConvTranspose2d
    let hypernetworks: [MLP]
    let iouHead: MLP
    /// Upscaling weights reordered for the fused channels-last path (see `upscaleMasks`):
    /// Linear weights `[(i, j, Cout), Cin]` so each 2×2 sub-pixel's channels are contiguous.
    let up0W: Tensor, up0B: Tensor, up3W: Tensor, up3B: Tensor

    public init(_ vb: WeightLoader, transformerDim c: Int, transformer: TwoWayTransformer,
                numMultimaskOutputs: Int = 3, iouHeadDepth: Int = 3, iouHeadHiddenDim: Int = 256) throws {
        transformerDim = c
        numMaskTokens = numMultimaskOutputs + 1
        self.transformer = transformer
        iouToken = try vb.pp("iou_token").tensor("weight", shape: [1, c])
        maskTokens = try vb.pp("mask_tokens").tensor("weight", shape: [numMaskTokens, c])
        let up = vb.pp("output_upscaling")
        upscale0 = try ConvTranspose2d(up.pp(0), in: c, out: c / 4, kernel: 2, stride: 2)
        upscale1 = try LayerNorm2d(up.pp(1), channels: c / 4)
        upscale3 = try ConvTranspose2d(up.pp(3), in: c / 4, out: c / 8, kernel: 2, stride: 2)
        hypernetworks = try (0..<numMaskTokens).map {
            try MLP(vb.pp("output_hypernetworks_mlps").pp($0), in: c, hidden: c, out: c / 8, layers: 3)
        }
        iouHead = try MLP(vb.pp("iou_prediction_head"), in: c, hidden: iouHeadHiddenDim, out: numMaskTokens, layers: iouHeadDepth)
        func reorder(_ t: ConvTranspose2d) -> (Tensor, Tensor) {
            let (cin, cout, kh, kw) = (t.weight.shape[0], t.weight.shape[1], t.weight.shape[2], t.weight.shape[3])
            var w = [Float](repeating: 0, count: t.weight.count), b = [Float](repeating: 0, count: cout * kh * kw)
            for ic in 0..<cin { for oc in 0..<cout { for i in 0..<kh { for j in 0..<kw {
                w[ic * cout * kh * kw + (i * kw + j) * cout + oc] = t.weight.data[((ic * cout + oc) * kh + i) * kw + j]
            } } } }
            for ij in 0..<(kh * kw) { for oc in 0..<cout { b[ij * cout + oc] = t.bias.data[oc] } }
            // As a Linear weight: [(i, j, Cout), Cin].
            return (Ops.transpose(Tensor(shape: [cin, cout * kh * kw], data: w), 0, 1), Tensor(shape: [cout * kh * kw], data: b))
        }
        precondition(upscale0.stride == 2 && upscale3.stride == 2 && upscale0.weight.shape[2] == 2 && upscale3.weight.shape[2] == 2,
                     "MaskDecoder: output upscaling must be 2×2 stride-2 transposed convs")
        (up0W, up0B) = reorder(upscale0)
        (up3W, up3B) = reorder(upscale3)
    }

    /// imageEmbedding [1, C, g, g], imagePE [1, C, g, g], sparse [B, N, C], dense [B, C, g, g]
    /// → (masks [B, M, 4g, 4g], iou [B, M]) with M = 3 (multimask) or 1.
    /// ref: mask_decoder.py MaskDecoder.forward / predict_masks
    public func callAsFunction(imageEmbedding: Tensor, imagePE: Tensor, sparse: Tensor, dense: Tensor,
                               multimask: Bool) -> (masks: Tensor, iou: Tensor) {
        let b = sparse.shape[0], c = transformerDim
        let outputTokens = Ops.concat([iouToken, maskTokens], axis: 0)  // [1 + M, C]
        let tokens = Ops.concat([Ops.add(Tensor(zeros: [b, outputTokens.shape[0], c]), outputTokens), sparse], axis: 1)
        // A batch-1 dense embedding (no mask input) keeps src at batch 1: the transformer
        // shares the image side across prompts instead of replicating it (upstream
        // repeat_interleaves src and pos per prompt).
        let src = Ops.add(imageEmbedding, dense)
        let (hs, keys) = transformer(image: src, imagePE: imagePE, tokens: tokens)
        let iouOut = Ops.slice(hs, axis: 1, start: 0, end: 1).reshaped([b, c])
        let maskOut = Ops.slice(hs, axis: 1, start: 1, end: 1 + numMaskTokens)  // [B, M, C]
        let (g1, g2) = (src.shape[2], src.shape[3])
        // Only the mask tokens that are returned: 1..<M (multimask) or 0.
        let selected = multimask ? Array(1..<numMaskTokens) : [0]
        let hyper = Ops.concat(selected.map {
            hypernetworks[$0](Ops.slice(maskOut, axis: 1, start: $0, end: $0 + 1))
        }, axis: 1)  // [B, M', C/8]
        let masks = upscaleMasks(keys: keys, hyper: hyper, grid: (g1, g2))
        let iou = iouHead(iouOut)  // [B, M]
        if multimask { return (masks, Ops.slice(iou, axis: 1, start: 1, end: numMaskTokens)) }
        return (masks, Ops.slice(iou, axis: 1, start: 0, end: 1))
    }

    /// `hyper · gelu(convT3(gelu(LN2d(convT0(keys)))))` without any NCHW intermediate.
    ///
    /// Both transposed convs have kernel = stride = 2, so each is a per-pixel GEMM
    /// `[pixels, Cin]·[Cin, (i, j, Cout)]` followed by a pure re-indexing of sub-pixels.
    /// The re-indexing is deferred to the final masks: rows stay in (y, x, i, j, i₂, j₂)
    /// order, LayerNorm2d is a row layer norm over the 64 contiguous channels, GELUs run
    /// in place, and the hypernetwork product is one GEMM over all 4g·4g sub-pixels.
    /// keys: [B, g·g, C], hyper: [B, M', C/8] → masks [B, M', 4g, 4g].
    /// ref: mask_decoder.py predict_masks (output_upscaling, hyper_in @ upscaled_embedding)
    func upscaleMasks(keys: Tensor, hyper: Tensor, grid: (Int, Int)) -> Tensor {
        let (b, hw, c) = (keys.shape[0], keys.shape[1], keys.shape[2])
        let (g1, g2) = grid
        let m = hyper.shape[1]
        let c4 = up0W.shape[0] / 4, c8 = up3W.shape[0] / 4
        let (oh, ow) = (4 * g1, 4 * g2)
        // out position of row r = ((((y·g2 + x)·2 + i)·2 + j)·2 + i2)·2 + j2
        var outIndex = [Int](repeating: 0, count: hw * 16)
        for y in 0..<g1 { for x in 0..<g2 { for i in 0..<2 { for j in 0..<2 { for i2 in 0..<2 { for j2 in 0..<2 {
            let r = ((((y * g2 + x) * 2 + i) * 2 + j) * 2 + i2) * 2 + j2
            outIndex[r] = (4 * y + 2 * i + i2) * ow + (4 * x + 2 * j + j2)
        } } } } } }
        var out = Tensor.uninitialized([b, m, oh, ow]) { _ in }
        for bi in 0..<b {
            let kb = Ops.slice(keys, axis: 0, start: bi, end: bi + 1).reshaped([hw, c])
            var y = Ops.linear(kb, weight: up0W, bias: up0B)  // [hw, 4·C/4]
            y.data.withUnsafeMutableBufferPointer { p in
                upscale1.weight.data.withUnsafeBufferPointer { wp in
                    upscale1.bias.data.withUnsafeBufferPointer { bp in
                        Ops.layerNormRows(p.baseAddress!, rows: hw * 4, c: c4, ld: c4, weight: wp.baseAddress!,
                                          bias: bp.baseAddress!, eps: LayerNorm2d.samEps)
                    }
                }
            }
            Ops.geluInPlace(&y)
            var z = Ops.linear(y.reshaped([hw * 4, c4]), weight: up3W, bias: up3B)  // [hw·4, 4·C/8]
            Ops.geluInPlace(&z)
            // masks[r, k] = Σ_c z[r, c]·hyper[k, c] over the hw·16 sub-pixel rows.
            let hb = Ops.slice(hyper, axis: 0, start: bi, end: bi + 1).reshaped([m, c8])
            let flat = Ops.matmul(hb, z.reshaped([hw * 16, c8]), transposeB: true)  // [M', hw·16]
            out.data.withUnsafeMutableBufferPointer { op in
                flat.data.withUnsafeBufferPointer { fp in
                    outIndex.withUnsafeBufferPointer { ix in
                        for k in 0..<m {
                            let dst = op.baseAddress! + (bi * m + k) * oh * ow, src = fp.baseAddress! + k * hw * 16
                            for r in 0..<(hw * 16) { dst[ix[r]] = src[r] }
                        }
                    }
                }
            }
        }
        return out
    }
}
