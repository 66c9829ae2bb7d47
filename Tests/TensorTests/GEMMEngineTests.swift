import Foundation
import Tensor
import XCTest

/// oneDNN f32 and bf16 GEMMs against OpenBLAS and Double references, the process-wide
/// precision/engine settings through the real entry points (linear, matmul, conv,
/// attention), bf16 refusal without native support, and the benchmark/selection API.
/// Tests that need native bf16 skip with the reason on CPUs without it.
final class GEMMEngineTests: XCTestCase {
    var rng = SeededRNG(seed: 0x0DD1_BF16)

    /// Odd, tiny and blocked shapes (same spirit as BLASDiagnostics.checkShapes).
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 13, 5), (17, 1, 33), (1, 31, 9), (64, 64, 64), (127, 255, 63),
        (256, 96, 768), (513, 257, 1025), (4096, 12, 64), (33, 2048, 17),
    ]

    override func tearDown() {
        // Every test leaves the process-wide settings as it found them (the defaults).
        try? TensorRuntime.setPrecision(.f32)
        TensorRuntime.f32Engine = .openBLAS
        TensorRuntime.oneDNNMinimumMultiplyAdds = TensorRuntime.defaultOneDNNMinimumMultiplyAdds
        TensorRuntime.bf16MinimumMultiplyAdds = TensorRuntime.defaultBF16MinimumMultiplyAdds
    }

    func requireNativeBF16() throws {
        let support = BF16Support.detect()
        guard support.isNative else {
            throw XCTSkip("needs native bf16 GEMM (AVX512_BF16 or AMX-BF16 and a oneDNN that uses it): \(support.summary)")
        }
    }

    // MARK: helpers

    /// A stored operand: `rows × cols` values at row stride `ld` ≥ cols (padding is NaN,
    /// so a kernel that reads outside the matrix poisons its result).
    struct Stored {
        var rows: Int, cols: Int, ld: Int
        var data: [Float]
        func at(_ r: Int, _ c: Int) -> Float { data[r * ld + c] }
    }

    func stored(rows: Int, cols: Int, pad: Int) -> Stored {
        let ld = cols + pad
        var data = [Float](repeating: .nan, count: max(1, rows * ld))
        for r in 0..<rows { for c in 0..<cols { data[r * ld + c] = Float.random(in: -1..<1, using: &rng) } }
        return Stored(rows: rows, cols: cols, ld: ld, data: data)
    }

    /// Double reference of alpha·op(A)·op(B) + beta·C0 over the m×n window of C, and the
    /// per-element scale S = Σₚ|α·aᵢₚ·bₚⱼ| + |β·cᵢⱼ| that bounds every rounding error.
    func reference(_ a: Stored, _ b: Stored, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                   alpha: Double, beta: Double, c0: Stored, round: (Float) -> Float = { $0 }) -> (value: [Double], scale: [Double]) {
        var value = [Double](repeating: 0, count: m * n), scale = value
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, abs = 0.0
                for p in 0..<k {
                    let t = Double(round(transA ? a.at(p, i) : a.at(i, p))) * Double(round(transB ? b.at(j, p) : b.at(p, j)))
                    s += t; abs += Swift.abs(t)
                }
                let c = beta == 0 ? 0 : beta * Double(c0.at(i, j))
                value[i * n + j] = alpha * s + c
                scale[i * n + j] = Swift.abs(alpha) * abs + Swift.abs(c)
            }
        }
        return (value, scale)
    }

    /// max over elements of |got − value| / scale (see `reference`).
    func errorRelativeToScale(_ got: Tensor, _ ref: (value: [Double], scale: [Double])) -> Double {
        var worst = 0.0
        for (g, (v, s)) in zip(got.data, zip(ref.value, ref.scale)) {
            let e = Swift.abs(Double(g) - v) / max(s, 1e-30)
            if !(e <= worst) { worst = e }   // NaN propagates as the worst
        }
        return worst
    }

    func assertWithinScale(_ got: Tensor, _ ref: (value: [Double], scale: [Double]), tol: Float, _ what: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        let err = errorRelativeToScale(got, ref)
        XCTAssertLessThanOrEqual(err, Double(tol), "\(what): error \(err) of Σ|terms| > \(tol)", file: file, line: line)
    }

    /// Runs `backend` on the stored operands; returns the m×n window of C and checks that
    /// C's padding columns were not written.
    func run(_ backend: GEMMBackend, _ a: Stored, _ b: Stored, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
             alpha: Float, beta: Float, c0: Stored, file: StaticString = #filePath, line: UInt = #line) -> Tensor {
        var c = c0.data
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    Ops.gemm(backend: backend, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                             a: ap.baseAddress!, lda: a.ld, b: bp.baseAddress!, ldb: b.ld, beta: beta,
                             c: cp.baseAddress!, ldc: c0.ld)
                }
            }
        }
        for r in 0..<m { for col in n..<c0.ld where !c[r * c0.ld + col].isNaN {
            XCTFail("\(backend) wrote C's padding at (\(r), \(col))", file: file, line: line); return Tensor(zeros: [m, n])
        } }
        return Tensor(shape: [m, n]) { c[($0 / n) * c0.ld + $0 % n] }
    }

    /// All transpose combinations on shapes up to 2²² multiply-adds, the first combination
    /// beyond; strides padded on every other case; alpha/beta varied.
    func forEachCase(_ body: (_ m: Int, _ n: Int, _ k: Int, _ ta: Bool, _ tb: Bool, _ pad: Int, _ alpha: Float, _ beta: Float) -> Void) {
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            let combos: [(Bool, Bool)] = m * n * k <= 1 << 22
                ? [(false, false), (true, false), (false, true), (true, true)] : [(false, false), (false, true)]
            for (ci, (ta, tb)) in combos.enumerated() {
                let pad = (index + ci) % 2 == 0 ? 0 : 3
                let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (1, 1), (-2, 0.25)][(index + ci) % 4]
                body(m, n, k, ta, tb, pad, alpha, beta)
            }
        }
    }

    func operands(m: Int, n: Int, k: Int, ta: Bool, tb: Bool, pad: Int) -> (Stored, Stored, Stored) {
        let a = stored(rows: ta ? k : m, cols: ta ? m : k, pad: pad)
        let b = stored(rows: tb ? n : k, cols: tb ? k : n, pad: pad)
        var c0 = stored(rows: m, cols: n, pad: pad)
        for r in 0..<m { for col in n..<c0.ld { c0.data[r * c0.ld + col] = .nan } }
        return (a, b, c0)
    }

    // MARK: f32

    func testOneDNNF32MatchesOpenBLASAndReference() {
        forEachCase { m, n, k, ta, tb, pad, alpha, beta in
            let (a, b, c0) = operands(m: m, n: n, k: k, ta: ta, tb: tb, pad: pad)
            let what = "\(m)×\(n)×\(k) \(ta ? "Aᵀ" : "A")\(tb ? "Bᵀ" : "B") pad \(pad) α \(alpha) β \(beta)"
            let dnnl = run(.oneDNNF32, a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, c0: c0)
            let blas = run(.openBLASF32, a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, c0: c0)
            let ref = reference(a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta), c0: c0)
            assertClose(dnnl, blas, tol: Tol.engineF32RelTol, "oneDNN f32 vs OpenBLAS \(what)")
            assertClose(dnnl, Tensor(shape: [m, n], data: ref.value.map { Float($0) }), tol: Tol.engineF32RelTol,
                        "oneDNN f32 vs Double \(what)")
        }
    }

    /// A bias given to the GEMM (oneDNN: DNNL_ARG_BIAS inside the kernel; OpenBLAS: C
    /// pre-filled, beta = 1) equals the old way, C pre-filled with the bias and beta = 1,
    /// on every backend, with alpha ≠ 1 and with the GELU epilogue after the bias; and C
    /// may be uninitialised (NaN here): it is only written.
    func testBiasInsideTheGEMMMatchesPrefilledBias() throws {
        let (m, n, k) = (67, 45, 96)
        let a = rng.tensor([m, k]), w = rng.tensor([n, k])
        let bias = Tensor(shape: [n], data: (0..<n).map { Float($0 - n / 2) * 0.1 })
        var backends: [GEMMBackend] = [.openBLASF32, .oneDNNF32]
        if BF16Support.detect().isNative { backends.append(.oneDNNBF16) }
        for backend in backends {
            for (alpha, epilogue) in [(Float(1), GEMMEpilogue.none), (0.5, .none), (1, .gelu)] {
                func product(biasInGEMM: Bool) -> [Float] {
                    var c = [Float](repeating: biasInGEMM ? .nan : 0, count: m * n)
                    if !biasInGEMM { for r in 0..<m { for j in 0..<n { c[r * n + j] = bias.data[j] } } }
                    a.data.withUnsafeBufferPointer { ap in w.data.withUnsafeBufferPointer { wp in
                        bias.data.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                            Ops.gemm(backend: backend, transB: true, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: k,
                                     b: wp.baseAddress!, ldb: k, beta: biasInGEMM ? 0 : 1, c: cp.baseAddress!, ldc: n,
                                     bias: biasInGEMM ? bp.baseAddress! : nil, epilogue: epilogue)
                        } }
                    } }
                    return c
                }
                let inside = product(biasInGEMM: true), prefilled = product(biasInGEMM: false)
                XCTAssertFalse(inside.contains { $0.isNaN }, "\(backend): an element of C was not written")
                let err = relativeMaxError(Tensor(shape: [m, n], data: inside), Tensor(shape: [m, n], data: prefilled))
                print("bias inside the GEMM, \(backend) α \(alpha) \(epilogue): relative max error vs pre-filled \(err)")
                XCTAssertLessThanOrEqual(err, Double(Tol.engineF32RelTol), "\(backend) α \(alpha) \(epilogue): bias inside vs pre-filled")
            }
        }
        // Through Ops.linear (uninitialised output) on each backend, against the reference.
        let x = rng.tensor([5, 13, k])
        XCTAssertLessThanOrEqual(relativeMaxError(Ops.linear(x, weight: w, bias: bias), Ref.linear(x, w, bias)),
                                 Double(Tol.engineF32RelTol), "OpenBLAS linear with bias")
        TensorRuntime.f32Engine = .oneDNN
        TensorRuntime.oneDNNMinimumMultiplyAdds = 0
        XCTAssertLessThanOrEqual(relativeMaxError(Ops.linear(x, weight: GEMMWeight(w), bias: bias), Ref.linear(x, w, bias)),
                                 Double(Tol.engineF32RelTol), "oneDNN f32 linear with bias")
        XCTAssertEqual(Ops.linear(Tensor(zeros: [4, 0]), weight: Tensor(zeros: [3, 0]), bias: Tensor(shape: [3], data: [1, 2, 3])).data,
                       [Float](repeating: 0, count: 0) + (0..<4).flatMap { _ in [1, 2, 3] }, "k = 0: the bias")
    }

    /// `Ops.mlp` gives the values of its two linears: identical on f32 (it is the two
    /// calls), and on bf16, where the hidden activation is written in bf16 by the first
    /// GEMM's kernel instead of in f32 and converted, identical too (both round the same
    /// f32 value to nearest even), with and without biases, at a shape that needs more
    /// than one of oneDNN's blocks.
    func testBF16MLPKeepsTheHiddenActivationInBF16WithTheSameValues() throws {
        let x = rng.tensor([3, 100, 96]), w1 = GEMMWeight(rng.tensor([384, 96])), w2 = GEMMWeight(rng.tensor([96, 384]))
        let b1 = Tensor(shape: [384], data: (0..<384).map { Float($0 - 192) * 0.01 }), b2 = rng.tensor([96])
        func twoLinears(_ b1: Tensor?, _ b2: Tensor?) -> Tensor {
            Ops.linear(Ops.linear(x, weight: w1, bias: b1, then: .gelu), weight: w2, bias: b2)
        }
        XCTAssertEqual(Ops.mlp(x, w1, b1, then: .gelu, w2, b2).data, twoLinears(b1, b2).data, "f32: mlp ≠ two linears")
        try requireNativeBF16()
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        GEMMStats.reset()
        let fused = Ops.mlp(x, w1, b1, then: .gelu, w2, b2)
        XCTAssertEqual(GEMMStats.flops(on: .oneDNNBF16), 2 * 300 * 96 * 384 * 2, "both GEMMs ran in bf16 and were counted")
        XCTAssertEqual(fused.shape, [3, 100, 96])
        XCTAssertEqual(fused.data, twoLinears(b1, b2).data, "bf16: hidden kept in bf16 ≠ f32 hidden converted")
        XCTAssertEqual(Ops.mlp(x, w1, nil, then: .gelu, w2, nil).data, twoLinears(nil, nil).data, "bf16 without biases")
        XCTAssertEqual(Ops.mlp(x, w1, b1, then: .none, w2, b2).data,
                       Ops.linear(Ops.linear(x, weight: w1, bias: b1), weight: w2, bias: b2).data, "bf16 without activation")
        let err = relativeMaxError(fused, { try? TensorRuntime.setPrecision(.f32); return twoLinears(b1, b2) }())
        print("bf16 MLP vs f32 MLP: relative max error \(err)")
        XCTAssertLessThanOrEqual(err, Double(Tol.bf16OpsRelTol), "bf16 MLP vs f32 (two chained GEMMs, as attention)")
    }

    /// The process-wide f32 engine switch reaches every GEMM entry point.
    func testOpsRunOnOneDNNF32WhenSelected() {
        TensorRuntime.selectF32Engine(.fixed(.oneDNN))
        TensorRuntime.oneDNNMinimumMultiplyAdds = 0
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 1, n: 1, k: 1), .oneDNNF32)
        checkEntryPoints(tol: Tol.engineF32RelTol, label: "oneDNN f32")
    }

    /// Linear (plain and layer-owned weight), matmul with transposes and broadcast, conv2d
    /// (im2col, 1×1 direct, grouped), conv-transpose, multi-head attention vs references.
    func checkEntryPoints(tol: Float, label: String, file: StaticString = #filePath, line: UInt = #line) {
        let x = rng.tensor([3, 17, 40]), w = rng.tensor([24, 40]), bias = rng.tensor([24])
        assertClose(Ops.linear(x, weight: w, bias: bias), Ref.linear(x, w, bias), tol: tol, "\(label) linear", file: file, line: line)
        assertClose(Ops.linear(x, weight: GEMMWeight(w), bias: bias), Ref.linear(x, w, bias), tol: tol,
                    "\(label) linear (GEMMWeight)", file: file, line: line)
        for (sa, sb, ta, tb) in [([2, 9, 33], [33, 12], false, false), ([2, 33, 9], [2, 12, 33], true, true),
                                 ([3, 1, 20, 7], [2, 20, 5], true, false)] {
            let a = rng.tensor(sa), b = rng.tensor(sb)
            assertClose(Ops.matmul(a, b, transposeA: ta, transposeB: tb, alpha: 0.5),
                        Ref.matmul(a, b, transA: ta, transB: tb).data.map { $0 * 0.5 }.withShape(Ref.matmul(a, b, transA: ta, transB: tb).shape),
                        tol: tol, "\(label) matmul \(sa) \(sb)", file: file, line: line)
        }
        for (cin, cout, kk, g, pad) in [(6, 8, 3, 1, 1), (4, 6, 1, 1, 0), (8, 12, 3, 2, 1)] {
            let xi = rng.tensor([2, cin, 9, 11]), wt = rng.tensor([cout, cin / g, kk, kk]), b = rng.tensor([cout])
            let want = Ref.conv2d(xi, wt, b, stride: (1, 1), padding: (pad, pad), dilation: (1, 1), groups: g)
            assertClose(Ops.conv2d(xi, weight: GEMMWeight(wt), bias: b, padding: Size2(pad, pad), groups: g), want, tol: tol,
                        "\(label) conv2d cin \(cin) k \(kk) g \(g)", file: file, line: line)
        }
        let xt = rng.tensor([1, 6, 5, 4]), wt = rng.tensor([6, 3, 2, 2]), bt = rng.tensor([6])
        assertClose(Ops.convTranspose2d(xt, weight: GEMMWeight(wt), bias: bt, stride: 2, groups: 2),
                    Ref.convTranspose2d(xt, wt, bt, stride: (2, 2), padding: (0, 0), outputPadding: (0, 0), dilation: (1, 1), groups: 2),
                    tol: tol, "\(label) convTranspose2d", file: file, line: line)
        // Attention: [B, L, H·d] heads side by side vs the reference on split heads.
        let (bq, lq, lk, heads, d) = (2, 24, 31, 2, 16)
        let q = rng.tensor([bq, lq, heads * d]), k = rng.tensor([bq, lk, heads * d]), v = rng.tensor([bq, lk, heads * d])
        func split(_ t: Tensor, _ l: Int) -> Tensor {
            Tensor(shape: [bq, heads, l, d]) { i in
                let b = i / (heads * l * d), h = i / (l * d) % heads, r = i / d % l, c = i % d
                return t.data[(b * l + r) * heads * d + h * d + c]
            }
        }
        let ref = Ref.attention(q: split(q, lq), k: split(k, lk), v: split(v, lk), scale: 1 / Double(d).squareRoot(), bias: nil)
        let merged = Tensor(shape: [bq, lq, heads * d]) { i in
            let b = i / (lq * heads * d), r = i / (heads * d) % lq, h = i / d % heads, c = i % d
            return ref.data[((b * heads + h) * lq + r) * d + c]
        }
        let got = Ops.multiHeadAttention(q: .contiguous(q, heads: heads), k: .contiguous(k, heads: heads),
                                         v: .contiguous(v, heads: heads), heads: heads)
        assertClose(got, merged, tol: tol, "\(label) multiHeadAttention", file: file, line: line)
    }

    // MARK: bf16

    func testBF16GEMMWithinBF16ToleranceOfDouble() throws {
        try requireNativeBF16()
        let roundBF16: (Float) -> Float = { BF16.toFloat(BF16.from($0)) }
        var worstUnrounded = 0.0
        forEachCase { m, n, k, ta, tb, pad, alpha, beta in
            let (a, b, c0) = operands(m: m, n: n, k: k, ta: ta, tb: tb, pad: pad)
            let what = "\(m)×\(n)×\(k) \(ta ? "Aᵀ" : "A")\(tb ? "Bᵀ" : "B") pad \(pad) α \(alpha) β \(beta)"
            let got = run(.oneDNNBF16, a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, c0: c0)
            let exact = reference(a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta), c0: c0)
            let rounded = reference(a, b, transA: ta, transB: tb, m: m, n: n, k: k, alpha: Double(alpha), beta: Double(beta),
                                    c0: c0, round: roundBF16)
            assertWithinScale(got, exact, tol: Tol.bf16GemmRelTol, "bf16 vs Double \(what)")
            assertWithinScale(got, rounded, tol: Tol.bf16RoundedInputsRelTol, "bf16 vs Double on bf16-rounded inputs \(what)")
            worstUnrounded = max(worstUnrounded, errorRelativeToScale(got, exact))
        }
        // Inputs really were rounded to bf16 (f32 operands would stay near 1e-7 of S).
        XCTAssertGreaterThan(worstUnrounded, 1e-3, "bf16 GEMM is as exact as f32: it did not round its inputs")
    }

    /// B from a `GEMMWeight` (its cached bf16 copy, at an offset) gives the same result as
    /// converting B on the fly, and the copy is made once however often it is used.
    func testBF16PackedWeightIsConvertedOnceAndMatchesOnTheFly() throws {
        try requireNativeBF16()
        let (m, n, k) = (37, 20, 70)
        let a = rng.tensor([m, k]), w = rng.tensor([2 * n, k])   // B = rows n..<2n of w, transposed
        let weight = GEMMWeight(w)
        XCTAssertFalse(weight.hasBF16Copy, "the bf16 copy must not exist before a bf16 GEMM needs it")
        let before = BF16.weightConversions
        var packed = [Float](repeating: 0, count: m * n), onTheFly = packed
        a.data.withUnsafeBufferPointer { ap in
            w.data.withUnsafeBufferPointer { wp in
                for _ in 0..<3 {
                    packed.withUnsafeMutableBufferPointer { cp in
                        Ops.gemm(backend: .oneDNNBF16, transB: true, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                                 b: wp.baseAddress! + n * k, ldb: k, c: cp.baseAddress!, ldc: n, bWeight: weight, bWeightOffset: n * k)
                    }
                }
                onTheFly.withUnsafeMutableBufferPointer { cp in
                    Ops.gemm(backend: .oneDNNBF16, transB: true, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                             b: wp.baseAddress! + n * k, ldb: k, c: cp.baseAddress!, ldc: n)
                }
            }
        }
        XCTAssertEqual(packed, onTheFly, "packed and on-the-fly bf16 operands must give identical results")
        XCTAssertEqual(BF16.weightConversions - before, 1, "three GEMMs on one GEMMWeight must convert it once")
        XCTAssertTrue(weight.hasBF16Copy)
        let wHalf = Tensor(shape: [n, k], data: Array(w.data[(n * k)...]))
        assertClose(packed.withShape([m, n]), Ref.linear(a, wHalf, nil), tol: Tol.bf16OpsRelTol, "packed bf16 vs Double")
    }

    func testBF16ConversionRoundsToNearestEven() {
        // 1 + 2⁻⁸ is exactly half-way between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        XCTAssertEqual(BF16.from(1 + 0x1p-8), 0x3F80)
        XCTAssertEqual(BF16.from(1 + 0x1p-7 + 0x1p-8), 0x3F82)   // tie above an odd mantissa rounds up
        XCTAssertEqual(BF16.from(1 + 0x1p-8 + 0x1p-20), 0x3F81)  // just above half-way rounds up
        XCTAssertEqual(BF16.from(-2), 0xC000)
        XCTAssertEqual(BF16.from(.infinity), 0x7F80)
        XCTAssertTrue(BF16.toFloat(BF16.from(.nan)).isNaN)
        XCTAssertEqual(BF16.from(Float.greatestFiniteMagnitude), 0x7F80, "rounds up to +Inf like vcvtneps2bf16")
        // The vectorised converter (16 lanes + scalar tail) agrees with the scalar one.
        // Specials first (so they go through the vector body, not only the scalar tail):
        // quiet and signalling NaNs of both signs, the smallest NaN just above +Inf.
        let specials: [Float] = [.nan, -.nan, .signalingNaN, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF80_0001),
                                 .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, -Float.greatestFiniteMagnitude]
        let values = specials + (0..<1000).map { i in Float(bitPattern: UInt32(truncatingIfNeeded: i &* 2_654_435_761)) } + [.nan, -.infinity, 0, -0.0]
        let w = GEMMWeight(Tensor(shape: [values.count], data: values))
        XCTAssertEqual(w.bf16(), values.map(BF16.from))
    }

    /// In bf16 precision every entry point runs in bf16 (Double reference on bf16-rounded
    /// inputs matches; the unrounded reference is matched only within the bf16 budget).
    func testOpsRunInBF16WhenSelected() throws {
        try requireNativeBF16()
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        XCTAssertEqual(TensorRuntime.precision, .bf16)
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 1, n: 1, k: 1), .oneDNNBF16)
        GEMMStats.reset()
        checkEntryPoints(tol: Tol.bf16OpsRelTol, label: "bf16")
        XCTAssertEqual(GEMMStats.flops(on: .oneDNNBF16), GEMMStats.flops, "with no minimum every GEMM runs in bf16")
        XCTAssertGreaterThan(GEMMStats.flops, 0)
        // And it really is bf16: a linear on bf16-exact inputs is f32-exact, on general inputs it is not.
        let x = rng.tensor([64, 96]), w = rng.tensor([48, 96])
        let r = { (t: Tensor) in Tensor(shape: t.shape, data: t.data.map { BF16.toFloat(BF16.from($0)) }) }
        assertClose(Ops.linear(x, weight: w), Ref.linear(r(x), r(w), nil), tol: Tol.bf16RoundedInputsRelTol, "bf16 linear, rounded inputs")
        XCTAssertGreaterThan(relativeMaxError(Ops.linear(x, weight: w), Ref.linear(x, w, nil)), 1e-4,
                             "bf16 precision selected but the linear is as exact as f32: it did not run in bf16")
    }

    /// `linear(x, then: .gelu)`: on f32 backends bit-identical to `gelu(linear(x))` (the
    /// same separate pass); on bf16 the GELU runs as oneDNN's post-op after the bias (a
    /// bias applied after the GELU would be off by O(|bias|)), within
    /// `Tol.fusedGELURelTol` of the unfused bf16 linear followed by Segflow's GELU.
    func testFusedGELUEpilogue() throws {
        let x = rng.tensor([300, 96]), w = rng.tensor([200, 96])
        // Biases from −3 to 3 put many pre-activations in GELU's curved region and tail.
        let b = Tensor(shape: [200], data: (0..<200).map { Float($0 - 100) * 0.03 })
        let packed = GEMMWeight(w)
        let unfused = { Ops.gelu(Ops.linear(x, weight: packed, bias: b)) }
        XCTAssertEqual(Ops.linear(x, weight: packed, bias: b, then: .gelu).data, unfused().data, "OpenBLAS f32: fused ≠ unfused")
        TensorRuntime.f32Engine = .oneDNN
        TensorRuntime.oneDNNMinimumMultiplyAdds = 0
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 300, n: 200, k: 96), .oneDNNF32)
        XCTAssertEqual(Ops.linear(x, weight: packed, bias: b, then: .gelu).data, unfused().data, "oneDNN f32: fused ≠ unfused")
        XCTAssertEqual(Ops.linear(x, weight: packed, then: .gelu).data, Ops.gelu(Ops.linear(x, weight: packed)).data,
                       "oneDNN f32 without bias")

        try requireNativeBF16()
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 300, n: 200, k: 96), .oneDNNBF16)
        let fused = Ops.linear(x, weight: packed, bias: b, then: .gelu), reference = unfused()
        let err = relativeMaxError(fused, reference)
        print("fused GELU, bf16: relative max error vs unfused \(err)")
        XCTAssertLessThanOrEqual(err, Double(Tol.fusedGELURelTol), "bf16 fused GELU vs unfused")
        XCTAssertGreaterThan(fused.data.filter { $0 < 0 }.count, 1000, "the bias must reach GELU's negative side")
        TensorRuntime.fusesEpilogues = false
        defer { TensorRuntime.fusesEpilogues = true }
        XCTAssertEqual(Ops.linear(x, weight: packed, bias: b, then: .gelu).data, reference.data,
                       "bf16 with the epilogue unfused: the same separate pass as f32")
        XCTAssertNotEqual(fused.data, reference.data, "the fused bf16 GELU is oneDNN's, not the separate pass")
        TensorRuntime.fusesEpilogues = true
        let noBias = Ops.linear(x, weight: packed, then: .gelu)
        XCTAssertLessThanOrEqual(relativeMaxError(noBias, Ops.gelu(Ops.linear(x, weight: packed))), Double(Tol.fusedGELURelTol),
                                 "bf16 fused GELU without bias")
    }

    /// bf16 attention in query blocks: q, k and v converted once per problem, the softmax
    /// writing the bf16 probabilities the second GEMM reads; ragged blocks, a per-row bias.
    func testBF16AttentionInQueryBlocks() throws {
        try requireNativeBF16()
        defer { Ops.attentionScoreBlockBytes = Ops.defaultAttentionScoreBlockBytes }
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        let (lq, lk, d, dv) = (150, 97, 32, 24)
        let q = rng.tensor([1, lq, d]), k = rng.tensor([1, lk, d]), v = rng.tensor([1, lk, dv])
        let bias = rng.tensor([1, lq, lk], scale: 2)
        let want = Ref.attention(q: q, k: k, v: v, scale: 0.3, bias: bias)
        for rows in [lq, 64, 11] {
            Ops.attentionScoreBlockBytes = rows * lk * MemoryLayout<Float>.size
            GEMMStats.reset()
            let got = Ops.attention(q: q, k: k, v: v, scale: 0.3, bias: bias)
            assertClose(got, want, tol: Tol.bf16OpsRelTol, "bf16 attention in \(rows)-row blocks")
            XCTAssertGreaterThan(relativeMaxError(got, want), 1e-4, "\(rows)-row blocks: bf16 selected but attention is f32-exact")
            XCTAssertEqual(GEMMStats.flops(on: .oneDNNBF16), 2 * lq * lk * (d + dv), "\(rows)-row blocks: both products in bf16, counted once")
        }
    }

    /// Many medium problems in bf16 run in groups through two batched GEMMs (as many
    /// problems per group as fit `attentionScoreBlockBytes`; here 21 problems in groups
    /// of 5, the last ragged) with a bias broadcast over heads: within the bf16 budget
    /// of the f32 result, and not f32-exact (bf16 did run).
    func testBF16MediumAttentionProblemsRunBatched() throws {
        try requireNativeBF16()
        defer { Ops.attentionScoreBlockBytes = Ops.defaultAttentionScoreBlockBytes }
        // 160 × 150 × 96 per problem: above the size the f32 per-core path takes.
        let (b, heads, lq, lk, d) = (7, 3, 160, 150, 96)
        let q = rng.tensor([b, lq, heads * d]), kv = rng.tensor([b, lk, 2 * heads * d])
        let bias = rng.tensor([b, 1, lq, lk], scale: 2)
        func run() -> Tensor {
            Ops.multiHeadAttention(q: HeadView.contiguous(q, heads: heads), k: HeadView(kv, column: 0, headStride: d, headDim: d),
                                   v: HeadView(kv, column: heads * d, headStride: d, headDim: d), heads: heads, scale: 0.25, bias: bias)
        }
        let f32 = run()
        try TensorRuntime.setPrecision(.bf16)
        TensorRuntime.bf16MinimumMultiplyAdds = 0
        Ops.attentionScoreBlockBytes = 5 * lq * lk * MemoryLayout<Float>.size
        let groups = Ops.batchedAttentionGroups.load(ordering: .relaxed)
        GEMMStats.reset()
        let got = run()
        XCTAssertEqual(Ops.batchedAttentionGroups.load(ordering: .relaxed) - groups, 5, "21 problems in groups of 5")
        XCTAssertEqual(GEMMStats.flops(on: .oneDNNBF16), 2 * b * heads * lq * lk * 2 * d, "both products of every problem in bf16")
        assertClose(got, f32, tol: Tol.bf16OpsRelTol, "batched bf16 attention vs f32")
        XCTAssertGreaterThan(relativeMaxError(got, f32), 1e-4, "bf16 selected but attention is f32-exact")
        // One problem per group is the per-problem path: the same within the bf16 budget.
        Ops.attentionScoreBlockBytes = lq * lk * MemoryLayout<Float>.size
        let perProblem = run()
        XCTAssertEqual(Ops.batchedAttentionGroups.load(ordering: .relaxed) - groups, 5, "per-problem path: no batched group")
        assertClose(got, perProblem, tol: Tol.bf16OpsRelTol, "batched vs per-problem bf16 attention")
    }

    /// A small transformer stack in bf16 stays within `bf16ModelRelTol` of f32, and a
    /// second forward pass converts no weight again.
    func testBF16TransformerStackCloseToF32() throws {
        try requireNativeBF16()
        let (tokens, dim, heads, hidden) = (196, 96, 4, 384)
        struct Block { var qkv, proj, fc1, fc2: GEMMWeight; var qkvB, projB, fc1B, fc2B, lnW, lnB: Tensor }
        let scale = { (fanIn: Int) in Float(1) / Float(fanIn).squareRoot() }
        let blocks = (0..<2).map { _ in
            Block(qkv: GEMMWeight(rng.tensor([3 * dim, dim], scale: scale(dim))), proj: GEMMWeight(rng.tensor([dim, dim], scale: scale(dim))),
                  fc1: GEMMWeight(rng.tensor([hidden, dim], scale: scale(dim))), fc2: GEMMWeight(rng.tensor([dim, hidden], scale: scale(hidden))),
                  qkvB: rng.tensor([3 * dim], scale: 0.1), projB: rng.tensor([dim], scale: 0.1), fc1B: rng.tensor([hidden], scale: 0.1),
                  fc2B: rng.tensor([dim], scale: 0.1), lnW: rng.tensor([dim], scale: 0.2, offset: 1), lnB: rng.tensor([dim], scale: 0.1))
        }
        let input = rng.tensor([2, tokens, dim])
        func forward() -> Tensor {
            var x = input
            for b in blocks {
                let qkv = Ops.linear(Ops.layerNorm(x, weight: b.lnW, bias: b.lnB), weight: b.qkv, bias: b.qkvB)
                let d = dim / heads
                let att = Ops.multiHeadAttention(q: HeadView(qkv, column: 0, headStride: d, headDim: d),
                                                 k: HeadView(qkv, column: dim, headStride: d, headDim: d),
                                                 v: HeadView(qkv, column: 2 * dim, headStride: d, headDim: d), heads: heads)
                x = Ops.add(x, Ops.linear(att, weight: b.proj, bias: b.projB))
                let h = Ops.gelu(Ops.linear(Ops.layerNorm(x, weight: b.lnW, bias: b.lnB), weight: b.fc1, bias: b.fc1B))
                x = Ops.add(x, Ops.linear(h, weight: b.fc2, bias: b.fc2B))
            }
            return x
        }
        let f32 = forward()
        TensorRuntime.bf16MinimumMultiplyAdds = 0   // every GEMM of this small stack in bf16
        try TensorRuntime.setPrecision(.bf16)
        let before = BF16.weightConversions
        let bf16 = forward()
        XCTAssertEqual(BF16.weightConversions - before, 8, "first bf16 pass converts each of the 8 weights once")
        let again = forward()
        XCTAssertEqual(BF16.weightConversions - before, 8, "second pass must reuse the bf16 weights")
        XCTAssertEqual(bf16, again, "bf16 forward must be deterministic")
        let err = relativeMaxError(bf16, f32)
        print("bf16 vs f32 transformer stack: relative max error \(err)")
        XCTAssertLessThanOrEqual(err, Double(Tol.bf16ModelRelTol), "bf16 stack vs f32: \(err)")
        XCTAssertGreaterThan(err, 1e-5, "bf16 stack is as exact as f32: the bf16 path did not run")
    }

    /// GEMMs of at most 64³ multiply-adds (attention's serial blocks, run inside our own
    /// parallel loops) stay on OpenBLAS f32 whatever the settings.
    func testRoutingThresholds() throws {
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 4096, n: 768, k: 768), .openBLASF32, "default: OpenBLAS f32")
        TensorRuntime.f32Engine = .oneDNN
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 64, n: 64, k: 64), .openBLASF32, "attention's serial blocks must stay on OpenBLAS")
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 65, n: 64, k: 64), .oneDNNF32)
        try requireNativeBF16()
        try TensorRuntime.setPrecision(.bf16)
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 64, n: 64, k: 64), .openBLASF32, "serial blocks stay on OpenBLAS in bf16 too")
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 65, n: 64, k: 64), .oneDNNBF16)
        TensorRuntime.bf16MinimumMultiplyAdds = 1 << 22
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 1024, n: 64, k: 64), .oneDNNF32, "at the bf16 minimum: f32 engine")
        TensorRuntime.f32Engine = .openBLAS
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 1024, n: 64, k: 64), .openBLASF32)
        XCTAssertEqual(TensorRuntime.gemmBackend(m: 1024, n: 64, k: 65), .oneDNNBF16)
    }

    // MARK: capability

    /// With native bf16 pretended off, bf16 is refused with the reason and f32 stays.
    func testBF16RefusedWhenCapabilityForcedOff() {
        // Restore the variable as found: the whole run may have been started with it set.
        let previous = ProcessInfo.processInfo.environment[BF16Support.disableVariable]
        defer { if let previous { setenv(BF16Support.disableVariable, previous, 1) } else { unsetenv(BF16Support.disableVariable) } }
        setenv(BF16Support.disableVariable, "1", 1)
        let support = BF16Support.detect()
        XCTAssertFalse(support.isNative)
        XCTAssertTrue(support.summary.contains(BF16Support.disableVariable), support.summary)
        XCTAssertThrowsError(try TensorRuntime.setPrecision(.bf16)) { error in
            guard case .bf16Unsupported(let reason)? = error as? TensorRuntimeError else {
                return XCTFail("expected bf16Unsupported, got \(error)")
            }
            XCTAssertTrue(reason.contains(BF16Support.disableVariable), reason)
        }
        XCTAssertEqual(TensorRuntime.precision, .f32, "a refused bf16 request must leave f32 in place")
        XCTAssertFalse(GEMMBenchmark.availableBackends.contains(.oneDNNBF16))
        XCTAssertNoThrow(try TensorRuntime.setPrecision(.f32))
    }

    func testBF16SupportAgreesWithCPUFlags() throws {
        let flags = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
        let support = BF16Support.detect(environment: [:])
        XCTAssertEqual(support.cpuAVX512BF16, flags.contains("avx512_bf16"))
        XCTAssertEqual(support.cpuAMXBF16, flags.contains("amx_bf16"))
        if BF16Support.detect().isNative {
            // Native: oneDNN must pick a jit bf16 kernel, never its reference implementation.
            let info = GEMMRuntimeInfo.current()
            let impl = try XCTUnwrap(info.oneDNNBF16Implementation)
            XCTAssertFalse(impl.hasPrefix("ref"), "oneDNN chose its reference bf16 matmul: \(impl)")
            print("GEMM runtime:\n\(info.text)")
        }
    }

    // MARK: threads, selection, benchmark

    func testOneThreadGivesSameResultWithinTolerance() throws {
        let before = TensorRuntime.gemmThreads
        defer { try? TensorRuntime.setGEMMThreads(before) }
        let a = rng.tensor([300, 200]), b = rng.tensor([200, 100])
        TensorRuntime.selectF32Engine(.fixed(.oneDNN))
        let two = Ops.matmul(a, b)
        try TensorRuntime.setGEMMThreads(1)
        XCTAssertEqual(TensorRuntime.gemmThreads, 1)
        XCTAssertEqual(BLASInfo.threads, 1, "the GEMM thread count applies to OpenBLAS too")
        assertClose(Ops.matmul(a, b), two, tol: Tol.engineF32RelTol, "1 vs \(before) threads")
        XCTAssertThrowsError(try TensorRuntime.setGEMMThreads(0))
    }

    func testF32EngineSelection() {
        let fixed = TensorRuntime.selectF32Engine(.fixed(.oneDNN))
        XCTAssertEqual(fixed.engine, .oneDNN)
        XCTAssertEqual(TensorRuntime.f32Engine, .oneDNN)
        XCTAssertTrue(fixed.measured.isEmpty)
        let auto = TensorRuntime.selectF32Engine(.automatic, repetitions: 3)
        XCTAssertEqual(Set(auto.measured.map(\.backend)), [.openBLASF32, .oneDNNF32])
        let blas = auto.measured.first { $0.backend == .openBLASF32 }!.gflops
        let dnnl = auto.measured.first { $0.backend == .oneDNNF32 }!.gflops
        XCTAssertEqual(auto.engine, dnnl > 1.05 * blas ? .oneDNN : .openBLAS, auto.reason)
        XCTAssertEqual(TensorRuntime.f32Engine, auto.engine)
        print("f32 engine: \(auto.engine.rawValue) (\(auto.reason))")
    }

    func testBenchmarkTable() {
        let shapes = [GEMMBenchmark.Shape(m: 96, n: 64, k: 80), GEMMBenchmark.Shape(m: 33, n: 17, k: 200)]
        let rows = GEMMBenchmark.measure(shapes: shapes, repetitions: 2)
        XCTAssertEqual(rows.count, shapes.count * GEMMBenchmark.availableBackends.count)
        for r in rows { XCTAssertTrue(r.gflops.isFinite && r.gflops > 0, "\(r)") }
        let table = GEMMBenchmark.table(rows)
        XCTAssertTrue(table.contains("| 96×64×80 |") && table.contains("onednn-f32 GFLOP/s"), table)
        XCTAssertEqual(table.split(separator: "\n").filter { $0.hasPrefix("| ") }.count, 1 + shapes.count, table)
    }
}
