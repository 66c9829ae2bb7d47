import Foundation

/// Which GELU formula to use; the model's config decides (SAM/TinyViT/SegGPT: exact,
/// some CLIP variants: tanh). Mixing them up costs ~1e-3 absolute per layer.
public enum GELUApproximation: Sendable {
    /// `0.5·x·(1 + erf(x/√2))`. ref: F.gelu(approximate="none")
    case none
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. ref: F.gelu(approximate="tanh")
    case tanh
}

extension Ops {
    /// GELU. ref: torch.nn.functional.gelu
    public static func gelu(_ x: Tensor, approximate: GELUApproximation = .none) -> Tensor {
        switch approximate {
        case .none:
            let invSqrt2: Float = 0.70710678118654752
            return unary(x) { 0.5 * $0 * (1 + erf($0 * invSqrt2)) }
        case .tanh:
            let k: Float = 0.79788456080286536 // √(2/π)
            return unary(x) { v in 0.5 * v * (1 + Foundation.tanh(k * (v + 0.044715 * v * v * v))) }
        }
    }

    /// OpenAI CLIP's `x · sigmoid(1.702·x)` (HF `quick_gelu`); not the same as GELU.
    /// ref: clip/model.py QuickGELU
    public static func quickGELU(_ x: Tensor) -> Tensor {
        unary(x) { $0 / (1 + Foundation.exp(-1.702 * $0)) }
    }

    /// `max(x, 0)`; NaN propagates as in torch. ref: torch.relu
    public static func relu(_ x: Tensor) -> Tensor { unary(x) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) } }

    /// Logistic sigmoid, written to avoid `exp` overflow for large |x|. ref: torch.sigmoid
    public static func sigmoid(_ x: Tensor) -> Tensor {
        unary(x) { v in
            if v >= 0 { return 1 / (1 + Foundation.exp(-v)) }
            let e = Foundation.exp(v)
            return e / (1 + e)
        }
    }

    /// Hyperbolic tangent. ref: torch.tanh
    public static func tanh(_ x: Tensor) -> Tensor { unary(x) { Foundation.tanh($0) } }

    /// Softmax over the last axis, max-subtracted so large logits do not overflow.
    /// A row that is entirely -inf (fully masked) yields NaN, as torch does.
    /// ref: torch.softmax(dim=-1)
    public static func softmax(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1, "softmax of a scalar")
        var out = x
        let cols = x.shape[x.rank - 1]
        out.data.withUnsafeMutableBufferPointer { o in
            guard let base = o.baseAddress, cols > 0 else { return }
            softmaxRows(base, rows: x.count / cols, cols: cols)
        }
        return out
    }

    /// In-place stable softmax of `rows` contiguous rows of length `cols`; rows are split
    /// across cores when the block is big (attention maps are 4096×4096 per head in SAM).
    static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        let box = SendablePointer(p)
        let chunks = rows * cols >= parallelGrain ? min(rows, 8 * ProcessInfo.processInfo.activeProcessorCount) : 1
        parallelFor(chunks, costPerItem: parallelGrain) { c in
            // Each chunk owns rows [lo, hi): disjoint writes.
            let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
            softmaxRows(row0: box.base + lo * cols, rows: hi - lo, cols: cols)
        }
    }
}
