import Checkpoint
import Tensor

// Building blocks shared by the SAM-family modules. Each binds its weights by the
// upstream state-dict names at construction (candle's `vb.pp(...)` idea), so a missing
// or mis-shaped tensor fails with its full dotted path.

/// nn.Linear: weight [out, in], optional bias [out].
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ vb: WeightLoader, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws {
        weight = try vb.tensor("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try vb.tensor("bias", shape: [outFeatures]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.linear(x, weight: weight, bias: bias) }
}

/// nn.Conv2d (NCHW, weight OIHW).
public struct Conv2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Size2, padding: Size2, groups: Int

    public init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias hasBias: Bool = true) throws {
        weight = try vb.tensor("weight", shape: [outCh, inCh / groups, kernel, kernel])
        bias = hasBias ? try vb.tensor("bias", shape: [outCh]) : nil
        self.stride = Size2(stride, stride); self.padding = Size2(padding, padding); self.groups = groups
    }

    init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, groups: Int) {
        self.weight = weight; self.bias = bias
        self.stride = Size2(stride, stride); self.padding = Size2(padding, padding); self.groups = groups
    }

    public func callAsFunction(_ x: Tensor, epilogue: ConvEpilogue = .none) -> Tensor {
        Ops.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, groups: groups, epilogue: epilogue)
    }
}

/// nn.ConvTranspose2d with kernel = stride (SAM's 2×2 upscaling); weight [in, out, k, k].
public struct ConvTranspose2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let stride: Int

    public init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int) throws {
        weight = try vb.tensor("weight", shape: [inCh, outCh, kernel, kernel])
        bias = try vb.tensor("bias", shape: [outCh])
        self.stride = stride
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.convTranspose2d(x, weight: weight, bias: bias, stride: Size2(stride, stride))
    }
}

/// nn.LayerNorm over the last dimension.
public struct LayerNorm: Sendable {
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ vb: WeightLoader, dim: Int, eps: Float) throws {
        weight = try vb.tensor("weight", shape: [dim])
        bias = try vb.tensor("bias", shape: [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// segment_anything.modeling.common.LayerNorm2d: normalises over C of NCHW, eps 1e-6.
public struct LayerNorm2d: Sendable {
    public let weight: Tensor, bias: Tensor
    public static let eps: Float = 1e-6  // ref: segment_anything/modeling/common.py LayerNorm2d.__init__

    public init(_ vb: WeightLoader, channels: Int) throws {
        weight = try vb.tensor("weight", shape: [channels])
        bias = try vb.tensor("bias", shape: [channels])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.layerNorm2d(x, weight: weight, bias: bias, eps: Self.eps)
    }
}

/// TinyViT's Conv2d_BN (conv without bias + BatchNorm2d), folded at load time into one
/// conv with bias — exactly what upstream's `Conv2d_BN.fuse()` computes; inference only.
/// ref: tiny_vit_sam.py Conv2d_BN.fuse
public struct Conv2dBN: Sendable {
    public let conv: Conv2d
    public static let batchNormEps: Float = 1e-5  // nn.BatchNorm2d default

    public init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int = 1, stride: Int = 1,
                padding: Int = 0, groups: Int = 1) throws {
        let w = try vb.pp("c").tensor("weight", shape: [outCh, inCh / groups, kernel, kernel])
        let bn = vb.pp("bn")
        let gamma = try bn.tensor("weight", shape: [outCh]), beta = try bn.tensor("bias", shape: [outCh])
        let mean = try bn.tensor("running_mean", shape: [outCh]), variance = try bn.tensor("running_var", shape: [outCh])
        _ = bn.skip("num_batches_tracked")  // training-only counter
        var fused = w
        var bias = [Float](repeating: 0, count: outCh)
        let per = w.count / outCh
        for o in 0..<outCh {
            let s = gamma.data[o] / (variance.data[o] + Self.batchNormEps).squareRoot()
            for i in 0..<per { fused.data[o * per + i] *= s }
            bias[o] = beta.data[o] - mean.data[o] * s
        }
        conv = Conv2d(weight: fused, bias: Tensor(shape: [outCh], data: bias), stride: stride, padding: padding, groups: groups)
    }

    public func callAsFunction(_ x: Tensor, epilogue: ConvEpilogue = .none) -> Tensor { conv(x, epilogue: epilogue) }
}

/// segment_anything's MLPBlock (lin1 → act → lin2).
public struct MLPBlock: Sendable {
    public enum Activation: Sendable { case gelu, relu }
    public let lin1: Linear, lin2: Linear
    public let activation: Activation

    public init(_ vb: WeightLoader, dim: Int, hidden: Int, activation: Activation) throws {
        lin1 = try Linear(vb.pp("lin1"), in: dim, out: hidden)
        lin2 = try Linear(vb.pp("lin2"), in: hidden, out: dim)
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = lin1(x)
        return lin2(activation == .gelu ? Ops.gelu(h) : Ops.relu(h))
    }
}

/// The mask decoder's MLP: `num_layers` linears with ReLU between them.
/// ref: segment_anything/modeling/mask_decoder.py MLP
public struct MLP: Sendable {
    public let layers: [Linear]
    public let sigmoidOutput: Bool

    public init(_ vb: WeightLoader, in inDim: Int, hidden: Int, out outDim: Int, layers n: Int, sigmoidOutput: Bool = false) throws {
        let dims = [inDim] + Array(repeating: hidden, count: n - 1) + [outDim]
        layers = try (0..<n).map { try Linear(vb.pp("layers").pp($0), in: dims[$0], out: dims[$0 + 1]) }
        self.sigmoidOutput = sigmoidOutput
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = layer(h)
            if i < layers.count - 1 { h = Ops.relu(h) }
        }
        return sigmoidOutput ? Ops.sigmoid(h) : h
    }
}
