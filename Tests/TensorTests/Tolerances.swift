/// Error budgets, one per operation family, as relative max error
/// (max|fast − reference| / max|reference|). Never raise one to make a test pass.
enum Tol {
    /// Float32 GEMM accumulation over K ≤ ~300 terms in BLAS's blocked order vs a Double sum.
    static let gemmRelTol: Float = 1e-5
    /// Convolutions are GEMMs over K = Cin/groups·kh·kw (≤ 75 here), same budget reasoning.
    static let convRelTol: Float = 1e-5
    /// Statistics and normalisation run in Double in the kernel; only the final rounding(s) differ.
    static let normRelTol: Float = 2e-6
    /// Single libm call (erf/tanh/exp) per element plus ≤ 3 roundings: a few ulp.
    static let activationRelTol: Float = 1e-6
    /// exp, a Float32 row sum of ≤ 64 terms and one reciprocal per element.
    static let softmaxRelTol: Float = 1e-6
    /// Two chained GEMMs (scores, then P·v) with a softmax in between.
    static let attentionRelTol: Float = 1e-5
    /// Convex combinations of ≤ ~2·scale+2 taps with Float32 weights.
    static let resizeRelTol: Float = 1e-6
    /// Pure data movement: must be bit-exact.
    static let copyRelTol: Float = 0
    /// One IEEE-754 operation per element is correctly rounded in both Float and Double→Float.
    static let elementwiseRelTol: Float = 0
    /// Two chained Float roundings (e.g. `x·2.5 − 1`) vs one Double rounding: ≤ 2 ulp of the max.
    static let scalarChainRelTol: Float = 2.4e-7
    /// Both sides accumulate reductions in Double; only the final rounding differs.
    static let reductionRelTol: Float = 1e-7

    /// Against PyTorch goldens the budgets are the same except where torch's own kernels
    /// round differently (its vectorised Sleef exp/erf/tanh are ≤ 1 ulp, MKL-DNN conv
    /// orders sums differently): these are stated separately below.
    /// Golden values are stored with 9 significant digits (exact float32 round trip).
    static let goldenGemmRelTol: Float = 1e-5
    static let goldenElementwiseRelTol: Float = 2e-6
    static let goldenResizeRelTol: Float = 2e-6
}
