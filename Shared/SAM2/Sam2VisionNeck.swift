import Checkpoint
import NN
import Tensor

/// SAM 2's FPN neck: a 1×1 lateral conv per stage, top-down nearest-neighbour ×2 fusion on
/// `fpn_top_down_levels`, then the finest `num_feature_levels` levels, finest first.
/// Channels last throughout (1×1 convs are linears on tokens).
/// ref: modeling_sam2.py Sam2VisionNeck, Sam2VisionModel.forward; sam2/modeling/backbones/image_encoder.py FpnNeck
public struct Sam2VisionNeck: Sendable {
    let convs: [Linear]  // convs[j] reads stage n − j
    let topDownLevels: Set<Int>
    let numFeatureLevels: Int

    public init(_ vb: WeightLoader, config c: Sam2Config, names: Sam2WeightNames) throws {
        convs = try c.backboneChannelList.enumerated().map { j, inCh in
            let s = names == .transformers ? vb.pp("convs").pp(j) : vb.pp("convs").pp(j).pp("conv")
            let w = try s.tensor("weight", shape: [c.fpnHiddenSize, inCh, 1, 1])
            return Linear(weight: w.reshaped([c.fpnHiddenSize, inCh]), bias: try s.tensor("bias", shape: [c.fpnHiddenSize]))
        }
        topDownLevels = Set(c.fpnTopDownLevels)
        numFeatureLevels = c.numFeatureLevels
    }

    /// stages [B, H_i, W_i, C_i] (stage 0 first) → levels [B, H, W, fpn] finest first.
    public func callAsFunction(_ stages: [Tensor]) -> [Tensor] {
        let n = convs.count - 1
        var prev: Tensor? = nil
        var coarseFirst: [Tensor] = []
        for i in stride(from: n, through: 0, by: -1) {
            var lateral = convs[n - i](stages[i])
            if topDownLevels.contains(i), i != n, let p = prev {
                lateral += Self.upsampleNearest2x(p)
            }
            prev = lateral
            coarseFirst.append(lateral)
        }
        return Array(coarseFirst.suffix(numFeatureLevels).reversed())
    }

    /// Nearest ×2 on channels last. ref: F.interpolate(scale_factor=2.0, mode="nearest")
    static func upsampleNearest2x(_ x: Tensor) -> Tensor {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        return Tensor.uninitialized([b, 2 * h, 2 * w, c]) { o in
            x.data.withUnsafeBufferPointer { xp in
                for bi in 0..<b { for y in 0..<(2 * h) { for xx in 0..<(2 * w) {
                    (o.baseAddress! + ((bi * 2 * h + y) * 2 * w + xx) * c)
                        .update(from: xp.baseAddress! + ((bi * h + y / 2) * w + xx / 2) * c, count: c)
                } } }
            }
        }
    }
}
