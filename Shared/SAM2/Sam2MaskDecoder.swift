import Checkpoint
import NN
import SAM
import Tensor

/// `num_layers` linears with ReLU between (transformers' `Sam2FeedForward`: `proj_in`,
/// `layers.N`, `proj_out`; the sam2 package's `MLP`: `layers.0…n-1`).
/// ref: modeling_sam2.py Sam2FeedForward; sam2/modeling/sam2_utils.py MLP
struct Sam2FeedForward: Sendable {
    let layers: [Linear]
    let sigmoidOutput: Bool

    init(_ vb: WeightLoader, in inDim: Int, hidden: Int, out outDim: Int, layers n: Int, sigmoidOutput: Bool = false,
         names: Sam2WeightNames) throws {
        let dims = [inDim] + Array(repeating: hidden, count: n - 1) + [outDim]
        var built: [Linear] = []
        for i in 0..<n {
            let scope: WeightLoader
            switch names {
            case .original: scope = vb.pp("layers").pp(i)
            case .transformers: scope = i == 0 ? vb.pp("proj_in") : i == n - 1 ? vb.pp("proj_out") : vb.pp("layers").pp(i - 1)
            }
            built.append(try Linear(scope, in: dims[i], out: dims[i + 1]))
        }
        layers = built
        self.sigmoidOutput = sigmoidOutput
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = layer(h)
            if i < layers.count - 1 { Ops.reluInPlace(&h) }
        }
        return sigmoidOutput ? Ops.sigmoid(h) : h
    }
}

/// SAM 2's mask decoder: SAM's two-way transformer with an object-score token in front of
/// the IoU and mask tokens, the two high-resolution backbone levels added into the
/// upscaling path, sigmoid IoU predictions, and — for a single-mask request — the
/// stability-based fallback to the best multimask output.
/// ref: modeling_sam2.py Sam2MaskDecoder; sam2/modeling/sam/mask_decoder.py MaskDecoder
public struct Sam2MaskDecoder: Sendable {
    public let hiddenSize: Int
    public let numMaskTokens: Int
    let transformer: TwoWayTransformer
    let objScoreToken: Tensor, iouToken: Tensor, maskTokens: Tensor
    let upscaleConv1: ConvTranspose2d, upscaleNorm: LayerNorm2d, upscaleConv2: ConvTranspose2d
    let hypernetworks: [Sam2FeedForward]
    let iouHead: Sam2FeedForward
    let objScoreHead: Sam2FeedForward
    /// 1×1 convs projecting the two finest backbone levels (applied once per image).
    let convS0: Linear, convS1: Linear
    let dynamicMultimask: Bool
    let stabilityDelta: Float, stabilityThresh: Float
    /// Sam2LayerNorm's default eps (the upscaling norm is built without the config's).
    static let upscaleNormEps: Float = 1e-6

    public init(_ vb: WeightLoader, config c: Sam2Config, names: Sam2WeightNames) throws {
        let h = c.promptHiddenSize
        hiddenSize = h
        numMaskTokens = c.numMultimaskOutputs + 1
        let t = names == .transformers
        transformer = try TwoWayTransformer(vb.pp("transformer"), depth: c.decoderLayers, embeddingDim: h, numHeads: c.decoderHeads,
                                            mlpDim: c.decoderMLPDim, downsampleRate: c.attentionDownsampleRate,
                                            names: t ? .transformersSam2 : .sam2Original)
        objScoreToken = try vb.pp("obj_score_token").tensor("weight", shape: [1, h])
        iouToken = try vb.pp("iou_token").tensor("weight", shape: [1, h])
        maskTokens = try vb.pp("mask_tokens").tensor("weight", shape: [numMaskTokens, h])
        upscaleConv1 = try ConvTranspose2d(vb.pp(t ? "upscale_conv1" : "output_upscaling.0"), in: h, out: h / 4, kernel: 2, stride: 2)
        upscaleNorm = try LayerNorm2d(vb.pp(t ? "upscale_layer_norm" : "output_upscaling.1"), channels: h / 4, eps: Self.upscaleNormEps)
        upscaleConv2 = try ConvTranspose2d(vb.pp(t ? "upscale_conv2" : "output_upscaling.3"), in: h / 4, out: h / 8, kernel: 2, stride: 2)
        hypernetworks = try (0..<numMaskTokens).map {
            try Sam2FeedForward(vb.pp("output_hypernetworks_mlps").pp($0), in: h, hidden: h, out: h / 8, layers: 3, names: names)
        }
        iouHead = try Sam2FeedForward(vb.pp("iou_prediction_head"), in: h, hidden: c.iouHeadHiddenDim, out: numMaskTokens,
                                      layers: c.iouHeadDepth, sigmoidOutput: true, names: names)
        objScoreHead = try Sam2FeedForward(vb.pp("pred_obj_score_head"), in: h, hidden: h, out: 1, layers: 3, names: names)
        func conv1x1(_ name: String, out: Int) throws -> Linear {
            let s = vb.pp(name)
            return Linear(weight: try s.tensor("weight", shape: [out, h, 1, 1]).reshaped([out, h]), bias: try s.tensor("bias", shape: [out]))
        }
        convS0 = try conv1x1("conv_s0", out: h / 8)
        convS1 = try conv1x1("conv_s1", out: h / 4)
        dynamicMultimask = c.dynamicMultimaskViaStability
        stabilityDelta = c.dynamicMultimaskStabilityDelta
        stabilityThresh = c.dynamicMultimaskStabilityThresh
    }

    public struct Output: Sendable {
        /// [B, M, 4g, 4g] low-resolution mask logits (M = 3 multimask, else 1).
        public var masks: Tensor
        /// [B, M] predicted IoU (sigmoid).
        public var iou: Tensor
        /// [B] object-score logits (> 0: the object is present).
        public var objectScore: [Float]
        /// [B, M, C] the mask tokens of the returned masks (SAM 2's object pointers come from these).
        public var maskTokens: Tensor
    }

    /// imageEmbedding [1, C, g, g], imagePE [1, C, g, g], sparse [B, N, C], dense [1 or B, C, g, g],
    /// highRes0 [1, C/8, 4g, 4g], highRes1 [1, C/4, 2g, 2g].
    /// ref: modeling_sam2.py Sam2MaskDecoder.forward
    public func callAsFunction(imageEmbedding: Tensor, imagePE: Tensor, sparse: Tensor, dense: Tensor,
                               highRes0: Tensor, highRes1: Tensor, multimask: Bool) -> Output {
        let b = sparse.shape[0], c = hiddenSize
        let outputTokens = Ops.concat([objScoreToken, iouToken, maskTokens], axis: 0)  // [2 + M, C]
        let tokens = Ops.concat([Ops.add(Tensor(zeros: [b, outputTokens.shape[0], c]), outputTokens), sparse], axis: 1)
        let src = Ops.add(imageEmbedding, dense)
        let (hs, keys) = transformer(image: src, imagePE: imagePE, tokens: tokens)
        let (g1, g2) = (src.shape[2], src.shape[3])
        let objOut = Ops.slice(hs, axis: 1, start: 0, end: 1).reshaped([b, c])
        let iouOut = Ops.slice(hs, axis: 1, start: 1, end: 2).reshaped([b, c])
        let maskOut = Ops.slice(hs, axis: 1, start: 2, end: 2 + numMaskTokens)  // [B, M, C]
        // Upscale: convT → + s1 → LN2d → GELU → convT → + s0 → GELU.
        let image = Ops.permute(keys, [0, 2, 1]).reshaped([b, c, g1, g2])
        var up = Ops.add(upscaleConv1(image), highRes1)
        up = Ops.gelu(upscaleNorm(up))
        up = Ops.add(upscaleConv2(up), highRes0)
        Ops.geluInPlace(&up)
        let c8 = up.shape[1], (oh, ow) = (up.shape[2], up.shape[3])
        let hyper = Ops.concat((0..<numMaskTokens).map {
            hypernetworks[$0](Ops.slice(maskOut, axis: 1, start: $0, end: $0 + 1))
        }, axis: 1)  // [B, M, C/8]
        var masks = Tensor.uninitialized([b, numMaskTokens, oh, ow]) { _ in }
        for bi in 0..<b {
            let hb = Ops.slice(hyper, axis: 0, start: bi, end: bi + 1).reshaped([numMaskTokens, c8])
            let ub = Ops.slice(up, axis: 0, start: bi, end: bi + 1).reshaped([c8, oh * ow])
            let m = Ops.matmul(hb, ub)
            masks.data.withUnsafeMutableBufferPointer { p in
                m.data.withUnsafeBufferPointer { (p.baseAddress! + bi * numMaskTokens * oh * ow).update(from: $0.baseAddress!, count: $0.count) }
            }
        }
        let iou = iouHead(iouOut)  // [B, M]
        let obj = objScoreHead(objOut).data
        if multimask {
            return Output(masks: Ops.slice(masks, axis: 1, start: 1, end: numMaskTokens),
                          iou: Ops.slice(iou, axis: 1, start: 1, end: numMaskTokens), objectScore: obj,
                          maskTokens: Ops.slice(maskOut, axis: 1, start: 1, end: numMaskTokens))
        }
        var outMasks = Ops.slice(masks, axis: 1, start: 0, end: 1)
        var outIoU = Ops.slice(iou, axis: 1, start: 0, end: 1)
        let outTokens = Ops.slice(maskOut, axis: 1, start: 0, end: 1)
        if dynamicMultimask {
            // ref: Sam2MaskDecoder._dynamic_multimask_via_stability, _get_stability_scores
            let plane = oh * ow
            for bi in 0..<b where stability(masks.data, offset: bi * numMaskTokens * plane, count: plane) < stabilityThresh {
                var best = 1
                for k in 2..<numMaskTokens where iou.data[bi * numMaskTokens + k] > iou.data[bi * numMaskTokens + best] { best = k }
                outMasks.data.replaceSubrange((bi * plane)..<((bi + 1) * plane),
                                              with: masks.data[((bi * numMaskTokens + best) * plane)..<((bi * numMaskTokens + best + 1) * plane)])
                outIoU.data[bi] = iou.data[bi * numMaskTokens + best]
            }
        }
        // The returned token stays the single-mask token, as upstream (`sam_tokens_out = mask_tokens_out[:, :, 0:1]`).
        return Output(masks: outMasks, iou: outIoU, objectScore: obj, maskTokens: outTokens)
    }

    func stability(_ d: [Float], offset: Int, count: Int) -> Float {
        var inter = 0, union = 0
        for i in offset..<(offset + count) {
            if d[i] > stabilityDelta { inter += 1 }
            if d[i] > -stabilityDelta { union += 1 }
        }
        return union > 0 ? Float(inter) / Float(union) : 1
    }
}
