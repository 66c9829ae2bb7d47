import Checkpoint
import Tensor

// The one layer library every model family builds on (candle-nn's role). Each layer binds
// its weights by the upstream state-dict names when it is built (candle's `vb.pp(...)`
// idea), so a missing or mis-shaped tensor fails with its full dotted path.

/// nn.Linear: weight [out, in], optional bias [out].
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    /// The same weight as a GEMM operand that keeps its bf16 copy (made on first bf16 use).
    public let packedWeight: GEMMWeight

    public init(_ vb: WeightLoader, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try vb.tensor("bias", shape: [outFeatures]) : nil
        packedWeight = GEMMWeight(weight)
    }

    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2 && (bias == nil || bias!.shape == [weight.shape[0]]),
                     "Linear: weight \(weight.shape) and bias \(bias?.shape ?? []) do not match")
        self.weight = weight; self.bias = bias
        packedWeight = GEMMWeight(weight)
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.linear(x, weight: packedWeight, bias: bias) }

    /// `activation(self(x))`, fused into the GEMM where the backend can (see `GEMMEpilogue`).
    public func callAsFunction(_ x: Tensor, then activation: GEMMEpilogue) -> Tensor {
        Ops.linear(x, weight: packedWeight, bias: bias, then: activation)
    }

    /// `second(activation(self(x)))`, a transformer MLP: the same values as the two calls;
    /// in bf16 the hidden activation stays bf16 between the GEMMs (`Ops.mlp`).
    public func callAsFunction(_ x: Tensor, then activation: GEMMEpilogue, into second: Linear) -> Tensor {
        Ops.mlp(x, packedWeight, bias, then: activation, second.packedWeight, second.bias)
    }
}

/// nn.Conv2d (NCHW, weight OIHW, square kernel).
public struct Conv2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Size2, padding: Size2, groups: Int
    /// The same weight as a GEMM operand that keeps its bf16 copy (made on first bf16 use).
    public let packedWeight: GEMMWeight

    public init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias hasBias: Bool = true) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [outCh, inCh / groups, kernel, kernel])
        bias = hasBias ? try vb.tensor("bias", shape: [outCh]) : nil
        self.stride = Size2(stride, stride); self.padding = Size2(padding, padding); self.groups = groups
        packedWeight = GEMMWeight(weight)
    }

    /// From tensors already in hand (e.g. a conv with a batch norm folded in).
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, groups: Int) {
        self.weight = weight; self.bias = bias
        self.stride = Size2(stride, stride); self.padding = Size2(padding, padding); self.groups = groups
        packedWeight = GEMMWeight(weight)
    }

    public func callAsFunction(_ x: Tensor, epilogue: ConvEpilogue = .none) -> Tensor {
        Ops.conv2d(x, weight: packedWeight, bias: bias, stride: stride, padding: padding, groups: groups, epilogue: epilogue)
    }
}

/// nn.ConvTranspose2d with kernel = stride (no overlap: SAM's and CLIPSeg's upscaling);
/// weight [in, out, k, k].
public struct ConvTranspose2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let stride: Int
    /// The same weight as a GEMM operand that keeps its bf16 copy (made on first bf16 use).
    public let packedWeight: GEMMWeight

    public init(_ vb: WeightLoader, in inCh: Int, out outCh: Int, kernel: Int, stride: Int) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [inCh, outCh, kernel, kernel])
        bias = try vb.tensor("bias", shape: [outCh])
        self.stride = stride
        packedWeight = GEMMWeight(weight)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.convTranspose2d(x, weight: packedWeight, bias: bias, stride: Size2(stride, stride))
    }
}

/// nn.LayerNorm over the last dimension.
public struct LayerNorm: Sendable {
    public let weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ vb: WeightLoader, dim: Int, eps: Float) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [dim])
        bias = try vb.tensor("bias", shape: [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// Channels-first layer norm: normalises over C of NCHW (segment_anything's
/// `LayerNorm2d`, transformers' `data_format="channels_first"` layer norms).
public struct LayerNorm2d: Sendable {
    public let weight: Tensor, bias: Tensor
    public let eps: Float
    /// ref: segment_anything/modeling/common.py LayerNorm2d.__init__ (eps=1e-6)
    public static let samEps: Float = 1e-6

    public init(_ vb: WeightLoader, channels: Int, eps: Float = LayerNorm2d.samEps) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [channels])
        bias = try vb.tensor("bias", shape: [channels])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.layerNorm2d(x, weight: weight, bias: bias, eps: eps)
    }
}

/// Two linears with an activation between (segment_anything's `MLPBlock` is
/// `MLP(names: ("lin1", "lin2"))`, transformers' ViT MLPs use their own names).
public struct MLPBlock: Sendable {
    public enum Activation: Sendable { case gelu, relu, quickGELU }
    public let lin1: Linear, lin2: Linear
    public let activation: Activation

    public init(_ vb: WeightLoader, dim: Int, hidden: Int, activation: Activation,
                names: (String, String) = ("lin1", "lin2")) throws(CheckpointError) {
        lin1 = try Linear(vb.pp(names.0), in: dim, out: hidden)
        lin2 = try Linear(vb.pp(names.1), in: hidden, out: dim)
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch activation {
        case .gelu: return lin1(x, then: .gelu, into: lin2)
        case .relu: return lin2(Ops.relu(lin1(x)))
        case .quickGELU: return lin2(Ops.quickGELU(lin1(x)))
        }
    }
}

/// `num_layers` linears with ReLU between them (segment_anything's mask-decoder MLP).
/// ref: segment_anything/modeling/mask_decoder.py MLP
public struct MLP: Sendable {
    public let layers: [Linear]
    public let sigmoidOutput: Bool

    public init(_ vb: WeightLoader, in inDim: Int, hidden: Int, out outDim: Int, layers n: Int,
                sigmoidOutput: Bool = false) throws(CheckpointError) {
        let dims = [inDim] + Array(repeating: hidden, count: n - 1) + [outDim]
        var built: [Linear] = []
        for i in 0..<n { built.append(try Linear(vb.pp("layers").pp(i), in: dims[i], out: dims[i + 1])) }
        layers = built
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

/// nn.Embedding: a `[count, dim]` table looked up by row.
public struct Embedding: Sendable {
    public let weight: Tensor
    public var count: Int { weight.shape[0] }
    public var dim: Int { weight.shape[1] }

    public init(_ vb: WeightLoader, count: Int, dim: Int) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [count, dim])
    }

    /// Rows `ids` → `[ids.count, dim]`. Ids must be in range (callers validate user input).
    public func callAsFunction(_ ids: [Int]) -> Tensor {
        let d = dim
        var out = [Float](repeating: 0, count: ids.count * d)
        weight.data.withUnsafeBufferPointer { w in
            for (row, id) in ids.enumerated() {
                precondition(id >= 0 && id < count, "embedding id \(id) out of range 0..<\(count)")
                for j in 0..<d { out[row * d + j] = w[id * d + j] }
            }
        }
        return Tensor(shape: [ids.count, d], data: out)
    }
}
