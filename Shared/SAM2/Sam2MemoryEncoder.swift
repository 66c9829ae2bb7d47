import Checkpoint
import Foundation
import NN
import Tensor

extension Sam2 {
    /// DETR-style sine position encoding of a [C, H, W] grid (normalised, scale 2π,
    /// temperature 10000): channels [y features, x features], each (sin, cos) interleaved.
    /// ref: modeling_sam2.py Sam2SinePositionEmbedding.build_sine_position_embedding (normalize=True)
    public static func sinePositionEncoding(channels c: Int, height h: Int, width w: Int) -> Tensor {
        let npf = c / 2
        let scale = Float(2 * Double.pi), eps: Float = 1e-6, temperature: Float = 10000
        let dimT = (0..<npf).map { i -> Float in powf(temperature, 2 * Float(i / 2) / Float(npf)) }
        var out = [Float](repeating: 0, count: 2 * npf * h * w)
        for y in 0..<h { for x in 0..<w {
            let ye = Float(y + 1) / (Float(h) + eps) * scale, xe = Float(x + 1) / (Float(w) + eps) * scale
            for i in 0..<npf {
                let py = ye / dimT[i], px = xe / dimT[i]
                out[(i * h + y) * w + x] = i % 2 == 0 ? sinf(py) : cosf(py)
                out[((npf + i) * h + y) * w + x] = i % 2 == 0 ? sinf(px) : cosf(px)
            }
        } }
        return Tensor(shape: [1, 2 * npf, h, w], data: out)
    }
}

/// Turns a frame's coarsest features and a predicted mask into the object's spatial memory:
/// a strided conv stack downsamples the mask to the feature grid, it is added to the
/// projected features, two ConvNeXt blocks fuse them, a 1×1 conv projects to the memory width.
/// ref: transformers/models/sam2_video/modeling_sam2_video.py Sam2VideoMemoryEncoder
///      (Sam2VideoMaskDownSampler, Sam2VideoMemoryFuser / CXBlock); sam2/modeling/memory_encoder.py
public struct Sam2MemoryEncoder: Sendable {
    struct DownLayer: Sendable { let conv: Conv2d; let norm: LayerNorm2d }
    struct FuserBlock: Sendable {
        let depthwise: Conv2d, norm: LayerNorm2d, pw1: Linear, pw2: Linear, scale: Tensor
    }
    let down: [DownLayer]
    let finalConv: Conv2d
    let featureProjection: Conv2d
    let fuser: [FuserBlock]
    let projection: Conv2d
    public let outputChannels: Int
    /// Sam2VideoLayerNorm(eps=1e-6) in the downsampler and fuser.
    static let normEps: Float = 1e-6

    /// `names`: transformers (`mask_downsampler.layers.N.conv`, `memory_fuser`, `feature_projection`,
    /// `projection`) or the sam2 package's (`mask_downsampler.encoder.<3N>` in one Sequential,
    /// `fuser.layers.N.{dwconv, norm, pwconv1, pwconv2, gamma}`, `pix_feat_proj`, `out_proj`).
    public init(_ vb: WeightLoader, config c: Sam2VideoConfig, names: Sam2WeightNames = .transformers) throws {
        let t = names == .transformers
        let layers = Int((log2(Double(c.maskDownsamplerTotalStride)) / log2(Double(c.maskDownsamplerStride))).rounded(.down))
        var inCh = 1, outCh = 1
        var built: [DownLayer] = []
        let d = vb.pp("mask_downsampler")
        for i in 0..<layers {
            outCh = inCh * c.maskDownsamplerStride * c.maskDownsamplerStride
            let conv = t ? d.pp("layers").pp(i).pp("conv") : d.pp("encoder").pp(3 * i)
            let norm = t ? d.pp("layers").pp(i).pp("layer_norm") : d.pp("encoder").pp(3 * i + 1)
            built.append(DownLayer(conv: try Conv2d(conv, in: inCh, out: outCh, kernel: c.maskDownsamplerKernel,
                                                    stride: c.maskDownsamplerStride, padding: c.maskDownsamplerPadding),
                                   norm: try LayerNorm2d(norm, channels: outCh, eps: Self.normEps)))
            inCh = outCh
        }
        down = built
        finalConv = try Conv2d(t ? d.pp("final_conv") : d.pp("encoder").pp(3 * layers), in: outCh, out: c.maskDownsamplerEmbedDim, kernel: 1)
        let h = c.memoryEncoderHiddenSize
        featureProjection = try Conv2d(vb.pp(t ? "feature_projection" : "pix_feat_proj"), in: h, out: h, kernel: 1)
        fuser = try (0..<c.memoryFuserLayers).map { i in
            let b = vb.pp(t ? "memory_fuser" : "fuser").pp("layers").pp(i)
            let e = c.memoryFuserEmbedDim
            return FuserBlock(depthwise: try Conv2d(b.pp(t ? "depthwise_conv" : "dwconv"), in: e, out: e, kernel: c.memoryFuserKernel,
                                                    padding: c.memoryFuserPadding, groups: e),
                              norm: try LayerNorm2d(b.pp(t ? "layer_norm" : "norm"), channels: e, eps: Self.normEps),
                              pw1: try Linear(b.pp(t ? "pointwise_conv1" : "pwconv1"), in: e, out: c.memoryFuserIntermediateDim),
                              pw2: try Linear(b.pp(t ? "pointwise_conv2" : "pwconv2"), in: c.memoryFuserIntermediateDim, out: e),
                              scale: try b.tensor(t ? "scale" : "gamma", shape: [e]))
        }
        projection = try Conv2d(vb.pp(t ? "projection" : "out_proj"), in: h, out: c.memoryEncoderOutputChannels, kernel: 1)
        outputChannels = c.memoryEncoderOutputChannels
    }

    /// features [B, C, g, g], masks [B, 1, S, S] (already scaled for the encoder) →
    /// (memory [B, memDim, g, g], position encoding [1, memDim, g, g]).
    public func callAsFunction(features: Tensor, masks: Tensor) -> (features: Tensor, position: Tensor) {
        var m = masks
        for l in down { m = Ops.gelu(l.norm(l.conv(m))) }
        m = finalConv(m)
        var x = featureProjection(features)
        x += m
        for b in fuser {
            let input = x
            var y = Ops.permute(b.norm(b.depthwise(x)), [0, 2, 3, 1])
            y = b.pw2(Ops.gelu(b.pw1(y)))
            y = Ops.mul(y, b.scale)
            x = Ops.add(input, Ops.permute(y, [0, 3, 1, 2]))
        }
        x = projection(x)
        let pos = Sam2.sinePositionEncoding(channels: outputChannels, height: x.shape[2], width: x.shape[3])
        return (x, pos)
    }
}
