import Checkpoint
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
    }

    /// imageEmbedding [1, C, g, g], imagePE [1, C, g, g], sparse [B, N, C], dense [B, C, g, g]
    /// → (masks [B, M, 4g, 4g], iou [B, M]) with M = 3 (multimask) or 1.
    /// ref: mask_decoder.py MaskDecoder.forward / predict_masks
    public func callAsFunction(imageEmbedding: Tensor, imagePE: Tensor, sparse: Tensor, dense: Tensor,
                               multimask: Bool) -> (masks: Tensor, iou: Tensor) {
        let b = sparse.shape[0], c = transformerDim
        let outputTokens = Ops.concat([iouToken, maskTokens], axis: 0)  // [1 + M, C]
        let tokens = Ops.concat([Ops.add(Tensor(zeros: [b, outputTokens.shape[0], c]), outputTokens), sparse], axis: 1)
        let src = Ops.add(imageEmbedding, dense)       // broadcast over the prompt batch
        let pos = Ops.add(Tensor(zeros: [b] + Array(imagePE.shape.dropFirst())), imagePE)
        let (g1, g2) = (src.shape[2], src.shape[3])
        let (hs, keys) = transformer(image: src.shape[0] == b ? src : Ops.add(Tensor(zeros: [b, c, g1, g2]), src),
                                     imagePE: pos, tokens: tokens)
        let iouOut = Ops.slice(hs, axis: 1, start: 0, end: 1).reshaped([b, c])
        let maskOut = Ops.slice(hs, axis: 1, start: 1, end: 1 + numMaskTokens)  // [B, M, C]
        let srcGrid = Ops.permute(keys, [0, 2, 1]).reshaped([b, c, g1, g2])
        let upscaled = Ops.gelu(upscale3(Ops.gelu(upscale1(upscale0(srcGrid)))))  // [B, C/8, 4g, 4g]
        let hyper = Ops.concat((0..<numMaskTokens).map {
            hypernetworks[$0](Ops.slice(maskOut, axis: 1, start: $0, end: $0 + 1))
        }, axis: 1)  // [B, M, C/8]
        let (uh, uw) = (upscaled.shape[2], upscaled.shape[3])
        let masks = Ops.matmul(hyper, upscaled.reshaped([b, c / 8, uh * uw])).reshaped([b, numMaskTokens, uh, uw])
        let iou = iouHead(iouOut)  // [B, M]
        if multimask {
            return (Ops.slice(masks, axis: 1, start: 1, end: numMaskTokens), Ops.slice(iou, axis: 1, start: 1, end: numMaskTokens))
        }
        return (Ops.slice(masks, axis: 1, start: 0, end: 1), Ops.slice(iou, axis: 1, start: 0, end: 1))
    }
}
