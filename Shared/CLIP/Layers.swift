import Checkpoint
import Tensor

// Building blocks of the CLIP modules (same patterns as Shared/SAM/Layers.swift, kept
// module-local so CLIP does not depend on SAM). Each binds its weights by the upstream
// state-dict names at construction.

/// nn.Linear: weight [out, in], optional bias [out].
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ vb: WeightLoader, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) throws(CheckpointError) {
        weight = try vb.tensor("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? try vb.tensor("bias", shape: [outFeatures]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.linear(x, weight: weight, bias: bias) }
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
