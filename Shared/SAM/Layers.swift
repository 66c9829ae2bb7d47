import Checkpoint
import NN
import Tensor

// SAM-family blocks not shared with other models; the common layers are in Shared/NN.

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
