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
    /// The AVX-512 softmax against the 8-lane Swift one: the same exps bit for bit; the row
    /// sum is associated differently (16 lane sums vs 8). Recursive summation of n
    /// positive terms in L lanes errs by at most (n/L)·2⁻²⁴ relative: 4101/8 · 6e-8 ≈ 3e-5
    /// for the widest row tested.
    static let softmaxLaneOrderRelTol: Float = 3e-5
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
    /// unrounded inputs, per element relative to S = Σₚ|α·aᵢₚ·bₚⱼ| + |β·cᵢⱼ| (a worst-case
    /// bound, so it holds for every shape, K = 1 and cancellations included). bf16 keeps 8
    /// significant bits: rounding an input to nearest moves it by ≤ 2⁻⁹ relative, a product
    /// of two by ≤ (1 + 2⁻⁹)² − 1 ≈ 3.91e-3; f32 accumulation adds ≤ K·2⁻²⁴ ≈ 6.1e-5 of S
    /// at K = 1025; output rounding 6e-8. Sum 3.97e-3, budget 4.2e-3. (A kernel that dropped
    /// a K block or misread a stride is off by O(1); f32 operands would be ~1e-6.)
    static let bf16GemmRelTol: Float = 4.2e-3
    /// bf16 GEMM vs a Double reference on the *bf16-rounded* inputs, same per-element
    /// scale: products of two 8-bit mantissas are exact in f32, so only the f32
    /// accumulation differs — the f32 engine budget. Together with a check that the
    /// unrounded error is well above it, this proves the kernel rounds inputs to
    /// nearest-even and accumulates in f32.
    static let bf16RoundedInputsRelTol: Float = 2e-5
    /// Entry points (linear, matmul, conv, conv-transpose, attention) in bf16 precision vs
    /// their Double references, relative to the max output (the `assertClose` metric):
    /// each bf16 GEMM errs by ≤ 2⁻⁸ of Σ|terms|, which for K ≤ 54 random-sign terms is
    /// ≤ ~1.6× the max output; attention chains two GEMMs. 2 × 1.6 × 3.9e-3 ≈ 1.2e-2 → 1.5e-2.
    static let bf16OpsRelTol: Float = 1.5e-2
    /// A 2-block transformer stack (qkv linear, 4-head attention (2 GEMMs), projection,
    /// residual, layer norm, GELU MLP (2 GEMMs)) in bf16 vs the same stack in f32, relative
    /// max error of the output: 6 chained GEMM levels per block each contribute at most
    /// ≈ 2⁻⁸ of their output's scale (`bf16GemmRelTol`); the errors of independent levels
    /// add in quadrature (√12 · 3.9e-3 ≈ 1.4e-2), layer norm and softmax do not amplify
    /// them. Budget 1.5e-2 (measured 2.1e-3: the residual stream is exact input plus updates).
    static let bf16ModelRelTol: Float = 1.5e-2
    /// bf16 `linear(then: .gelu)` (oneDNN's `eltwise_gelu_erf` post-op) vs the unfused bf16
    /// linear followed by Segflow's GELU, relative to the max output: the bf16 products
    /// are the same, the f32 accumulation may be blocked differently (K = 96: ≤ 96 · 2⁻²⁴
    /// ≈ 5.7e-6 of Σ|terms| in the worst case, far less for random signs), and the two
    /// erf evaluations differ by ~1e-7 each (oneDNN's polynomial, `gelu8`'s ≤ 1.4e-6
    /// relative). Budget 1e-5.
    static let fusedGELURelTol: Float = 1e-5
}
