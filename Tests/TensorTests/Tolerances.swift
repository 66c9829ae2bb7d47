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

    // MARK: GEMM engines and bf16 (GEMMEngineTests)

    /// oneDNN f32 vs OpenBLAS f32 on the same inputs: each is within `gemmRelTol` of the
    /// exact sum (different blocking, so different summation order), hence within twice
    /// that of each other. Also the budget of each engine vs the Double reference up to
    /// K = 1025 (the doctor's SGEMM check uses 1e-5 up to K = 2048).
    static let engineF32RelTol: Float = 2e-5
    /// bf16 GEMM (inputs rounded to bf16, f32 accumulation) vs a Double reference on the
    /// unrounded inputs. bf16 keeps 8 significant bits, so rounding one input to nearest
    /// moves it by ≤ 2⁻⁹ relative and a product of two by ≤ 2⁻⁸ ≈ 3.9e-3. Over K terms of
    /// random sign the rounding errors add like the terms themselves (a random walk), so
    /// the error stays a fixed fraction (≈ 2⁻⁸/√3 rms) of the result's scale; the max over
    /// all outputs, relative to the max output, gets a 2.5× margin: 1e-2. (A kernel that
    /// dropped a K block or misread a stride is off by O(1).)
    static let bf16GemmRelTol: Float = 1e-2
    /// bf16 GEMM vs a Double reference on the *bf16-rounded* inputs: products of two 8-bit
    /// mantissas are exact in f32, so only the f32 accumulation differs — the f32 budget.
    /// This proves the kernel rounds inputs to nearest-even and accumulates in f32 (neither
    /// f32 operands nor bf16 accumulation would pass both this and a separate check).
    static let bf16RoundedInputsRelTol: Float = 2e-5
    /// A 2-block transformer stack (qkv linear, 4-head attention, projection, residual,
    /// layer norm, GELU MLP) in bf16 vs the same stack in f32: 6 chained GEMM levels each
    /// ≤ `bf16GemmRelTol`, partly damped by layer norm and softmax; errors of independent
    /// levels add in quadrature (√6 · 1e-2 ≈ 2.5e-2), margin to 4e-2.
    static let bf16ModelRelTol: Float = 4e-2
}
