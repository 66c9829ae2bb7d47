import Checkpoint
import NN
import Tensor

/// Patch embeddings of the image stream and the mask stream, with segment tokens (input /
/// prompt), bicubic-interpolated absolute positions and (SegGPT only) a type token.
/// The query half of the mask stream is replaced by `mask_token` (transformers'
/// default `bool_masked_pos`: the second half of the tokens).
/// ref: transformers/models/seggpt/modeling_seggpt.py SegGptEmbeddings, SegGptPatchEmbeddings;
///      SegGPT_inference/models_seggpt.py SegGPT.forward_encoder (first half)
public struct SegGptEmbeddings: Sendable {
    public let config: SegGptConfig
    /// The patch convolution (kernel = stride = patch) as a linear map over flattened
    /// `(channel, ky, kx)` patches: the same sums as the conv, one GEMM, tokens out directly.
    let projection: Linear
    let maskToken: Tensor, segmentTokenInput: Tensor, segmentTokenPrompt: Tensor
    let typeTokenSemantic: Tensor?, typeTokenInstance: Tensor?
    /// `[1, 1 + g², C]` as stored (row 0 is the unused cls position).
    public let positionEmbeddings: Tensor
    /// `[gh · gw, C]`: `positionEmbeddings` interpolated to the canvas grid once, at load.
    public let interpolatedPositionEmbeddings: Tensor

    /// - Parameter typeTokens: SegGPT has them, Painter does not.
    public init(_ vb: WeightLoader, config c: SegGptConfig, names: SegGptWeightNames, typeTokens: Bool) throws(CheckpointError) {
        config = c
        let C = c.hiddenSize, p = c.patchSize
        let token: [Int] = [1, 1, 1, C]
        let g = c.pretrainGridSize
        // State-dict names per layout: transformers' SegGptEmbeddings vs the original's.
        let n = names == .transformers
            ? (input: "segment_token_input", prompt: "segment_token_prompt", semantic: "type_token_semantic",
               instance: "type_token_instance", patch: ["patch_embeddings", "projection"], position: "position_embeddings")
            : (input: "segment_token_x", prompt: "segment_token_y", semantic: "type_token_cls",
               instance: "type_token_ins", patch: ["patch_embed", "proj"], position: "pos_embed")
        maskToken = try vb.tensor("mask_token", shape: token)
        segmentTokenInput = try vb.tensor(n.input, shape: token)
        segmentTokenPrompt = try vb.tensor(n.prompt, shape: token)
        typeTokenSemantic = typeTokens ? try vb.tensor(n.semantic, shape: token) : nil
        typeTokenInstance = typeTokens ? try vb.tensor(n.instance, shape: token) : nil
        let pe = vb.pp(n.patch[0]).pp(n.patch[1])
        let projWeight = try pe.tensor("weight", shape: [C, c.numChannels, p, p])
        let projBias = try pe.tensor("bias", shape: [C])
        positionEmbeddings = try vb.tensor(n.position, shape: [1, g * g + 1, C])
        projection = Linear(weight: projWeight.reshaped([C, c.numChannels * p * p]), bias: projBias)
        interpolatedPositionEmbeddings = Self.interpolate(positionEmbeddings, pretrainGrid: g, to: c.gridSize)
    }

    /// ref: modeling_seggpt.py SegGptEmbeddings.interpolate_pos_encoding; vitdet_utils.py get_abs_pos
    /// (drop the cls row; bicubic, align_corners=False, unless the grid already matches).
    static func interpolate(_ pos: Tensor, pretrainGrid g: Int, to grid: (h: Int, w: Int)) -> Tensor {
        let C = pos.shape[2]
        let patches = Ops.slice(pos, axis: 1, start: 1).reshaped([g * g, C])
        if g == grid.h && g == grid.w { return patches }
        let nchw = Ops.permute(patches.reshaped([1, g, g, C]), [0, 3, 1, 2])
        let resized = Ops.interpolateBicubic(nchw, size: Size2(grid.h, grid.w))
        return Ops.permute(resized, [0, 2, 3, 1]).reshaped([grid.h * grid.w, C])
    }

    /// `[N, 3, H, W]` → `[N, rows·gw, 3·p·p]` for patch rows `rows` (flattened like the conv
    /// weight: channel, then ky, then kx).
    func patchify(_ x: Tensor, rows: Range<Int>) -> Tensor {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let p = config.patchSize, gw = w / p
        let k = ch * p * p
        return Tensor.uninitialized([n, rows.count * gw, k]) { o in
            x.data.withUnsafeBufferPointer { xp in
                var t = 0
                for b in 0..<n {
                    for gy in rows {
                        for gx in 0..<gw {
                            let dst = o.baseAddress! + t * k
                            for c in 0..<ch {
                                for ky in 0..<p {
                                    let src = xp.baseAddress! + ((b * ch + c) * h + gy * p + ky) * w + gx * p
                                    (dst + (c * p + ky) * p).update(from: src, count: p)
                                }
                            }
                            t += 1
                        }
                    }
                }
            }
        }
    }

    /// - Parameters:
    ///   - pixelValues: `[N, 3, H, W]` image canvases (prompt image over query image).
    ///   - promptPixelValues: `[N, 3, H, W]` mask canvases (prompt mask over anything: the
    ///     query half is replaced by `mask_token`, so it is never read).
    /// - Returns: `[2N, gh·gw, C]`: the image stream, then the mask stream.
    public func callAsFunction(pixelValues: Tensor, promptPixelValues: Tensor,
                               embeddingType: SegGptEmbeddingType = .instance) -> Tensor {
        let (gh, gw) = config.gridSize, C = config.hiddenSize
        let n = pixelValues.shape[0], L = gh * gw, half = (gh / 2) * gw
        let x = projection(patchify(pixelValues, rows: 0..<gh))             // [N, L, C]
        let y = projection(patchify(promptPixelValues, rows: 0..<(gh / 2)))  // [N, L/2, C]: the rest is masked
        let type: Tensor?
        switch embeddingType {
        case .instance: type = typeTokenInstance
        case .semantic: type = typeTokenSemantic
        }
        let zeros = [Float](repeating: 0, count: C)
        return Tensor.uninitialized([2 * n, L, C]) { o in
            x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeBufferPointer { yp in
            interpolatedPositionEmbeddings.data.withUnsafeBufferPointer { pos in
            segmentTokenInput.data.withUnsafeBufferPointer { segX in
            segmentTokenPrompt.data.withUnsafeBufferPointer { segY in
            maskToken.data.withUnsafeBufferPointer { mask in
            (type?.data ?? zeros).withUnsafeBufferPointer { typ in
                // Same association as upstream: ((patch + segment) + position) + type.
                // Painter has no type token; adding 0 leaves every value unchanged.
                func fill(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>,
                          _ seg: UnsafePointer<Float>, _ t: Int) {
                    let pp = pos.baseAddress! + t * C, tp = typ.baseAddress!
                    for j in 0..<C { dst[j] = ((src[j] + seg[j]) + pp[j]) + tp[j] }
                }
                for b in 0..<n {
                    for t in 0..<L {
                        fill(o.baseAddress! + (b * L + t) * C, xp.baseAddress! + (b * L + t) * C, segX.baseAddress!, t)
                        let src = t < half ? yp.baseAddress! + (b * half + t) * C : mask.baseAddress!
                        fill(o.baseAddress! + ((n + b) * L + t) * C, src, segY.baseAddress!, t)
                    }
                }
            }}}}}}}
        }
    }
}
