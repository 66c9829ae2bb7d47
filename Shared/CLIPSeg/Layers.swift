import Checkpoint
import Tensor

// Small weight-bound building blocks for the CLIPSeg modules. Each binds its tensors by
// the upstream state-dict names when it is built (candle's `vb.pp(...)` idea), so a
// missing or mis-shaped tensor fails with its full dotted path. Internal on purpose: the
// SAM module has public types with the same names, and clients may import both.

/// nn.Linear: weight [out, in], optional bias [out].
struct Linear: Sendable {
    let weight: Tensor
    let bias: Tensor?

    init(_ vb: WeightLoader, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws {
        weight = try vb.tensor("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try vb.tensor("bias", shape: [outFeatures]) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { Ops.linear(x, weight: weight, bias: bias) }
}

/// nn.LayerNorm over the last dimension.
struct LayerNorm: Sendable {
    let weight: Tensor, bias: Tensor
    let eps: Float

    init(_ vb: WeightLoader, dim: Int, eps: Float) throws {
        weight = try vb.tensor("weight", shape: [dim])
        bias = try vb.tensor("bias", shape: [dim])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) -> Tensor { Ops.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// nn.Conv2d with a square kernel (NCHW, weight OIHW).
struct Conv2d: Sendable {
    let weight: Tensor
    let bias: Tensor?
    let stride: Int, padding: Int

    init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
         bias hasBias: Bool = true) throws {
        weight = try vb.tensor("weight", shape: [outCh, inCh, kernel, kernel])
        bias = hasBias ? try vb.tensor("bias", shape: [outCh]) : nil
        self.stride = stride; self.padding = padding
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.conv2d(x, weight: weight, bias: bias, stride: Size2(stride, stride), padding: Size2(padding, padding))
    }
}

/// nn.ConvTranspose2d with kernel = stride (no overlap); weight [in, out, k, k].
struct ConvTranspose2d: Sendable {
    let weight: Tensor
    let bias: Tensor
    let stride: Int

    init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int) throws {
        weight = try vb.tensor("weight", shape: [inCh, outCh, kernel, kernel])
        bias = try vb.tensor("bias", shape: [outCh])
        self.stride = stride
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.convTranspose2d(x, weight: weight, bias: bias, stride: Size2(stride, stride))
    }
}
