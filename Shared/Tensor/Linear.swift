import COpenBLAS

extension Ops {
    /// `x · weightᵀ + bias` over the last axis, PyTorch `nn.Linear` layout.
    ///
    /// `x: [..., in]`, `weight: [out, in]`, `bias: [out]` → `[..., out]`. All leading
    /// axes are folded into one GEMM (`M = prod(leading)`), and the weight transpose is a
    /// BLAS flag, so this is exactly one `sgemm` call regardless of rank.
    /// ref: torch.nn.functional.linear
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        linear(x, weight: weight, packed: nil, bias: bias)
    }

    /// `linear` with a layer-owned weight: in bf16 precision its bf16 copy is made once
    /// and reused by every call (see `GEMMWeight`).
    public static func linear(_ x: Tensor, weight: GEMMWeight, bias: Tensor? = nil) -> Tensor {
        linear(x, weight: weight.tensor, packed: weight, bias: bias)
    }

    /// `activation(linear(x))` in one GEMM call: on the bf16 backend the activation runs
    /// inside the GEMM kernel (`GEMMEpilogue`), on f32 it is the same separate pass as
    /// calling the activation afterwards.
    public static func linear(_ x: Tensor, weight: GEMMWeight, bias: Tensor? = nil, then activation: GEMMEpilogue) -> Tensor {
        linear(x, weight: weight.tensor, packed: weight, bias: bias, epilogue: activation)
    }

    static func linear(_ x: Tensor, weight: Tensor, packed: GEMMWeight?, bias: Tensor?,
                       epilogue: GEMMEpilogue = .none) -> Tensor {
        precondition(x.rank >= 1 && weight.rank == 2 && x.shape.last == weight.shape[1],
                     "linear: x \(x.shape) incompatible with weight \(weight.shape)")
        let inF = weight.shape[1], outF = weight.shape[0]
        let m = x.shape.dropLast().reduce(1, *)
        if let bias { precondition(bias.shape == [outF], "linear: bias \(bias.shape), expected [\(outF)]") }
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        if inF == 0 || m == 0 {
            // Nothing to multiply: the output is the bias (or zeros), through the epilogue.
            var out = Tensor(zeros: outShape)
            if let bias { for r in 0..<m { for j in 0..<outF { out.data[r * outF + j] = bias.data[j] } } }
            if out.count > 0 {
                out.data.withUnsafeMutableBufferPointer { applyEpilogue(epilogue, $0.baseAddress!, m: m, n: outF, ldc: outF) }
            }
            return out
        }
        // Every element of the output is written by the GEMM (beta = 0; the bias is added
        // by the GEMM itself: inside oneDNN's kernel, or pre-filled for OpenBLAS), so it
        // is never zeroed first.
        var out = Tensor.uninitialized(outShape) { _ in }
        out.data.withUnsafeMutableBufferPointer { o in
            guard let op = o.baseAddress else { return }
            x.data.withUnsafeBufferPointer { xp in
                weight.data.withUnsafeBufferPointer { wp in
                    guard let xa = xp.baseAddress, let wa = wp.baseAddress else { return }
                    withOptionalPointer(bias) { bp in
                        sgemm(transA: false, transB: true, m: m, n: outF, k: inF,
                              a: xa, lda: inF, b: wa, ldb: inF, beta: 0, c: op, ldc: outF,
                              bPacked: packed.map { PackedOperand(weight: $0, offset: 0) }, epilogue: epilogue, bias: bp)
                    }
                }
            }
        }
        return out
    }

    /// A transformer MLP, `linear(activation(linear(x, w1, b1)), w2, b2)` — the same
    /// values as the two `linear` calls. In bf16 precision (both GEMMs on the bf16
    /// backend, epilogues fused) the hidden activation is written by the first GEMM
    /// directly in bf16 and read as is by the second (`OneDNNGEMM.bf16MLP`): no f32
    /// hidden tensor (4× the block's width) and no conversion pass over it.
    public static func mlp(_ x: Tensor, _ w1: GEMMWeight, _ b1: Tensor?, then activation: GEMMEpilogue,
                           _ w2: GEMMWeight, _ b2: Tensor?) -> Tensor {
        let k = w1.tensor.shape[1], h = w1.tensor.shape[0], n = w2.tensor.shape[0]
        precondition(x.rank >= 1 && x.shape.last == k && w2.tensor.shape[1] == h,
                     "mlp: x \(x.shape), w1 \(w1.tensor.shape), w2 \(w2.tensor.shape) do not chain")
        if let b1 { precondition(b1.shape == [h], "mlp: b1 \(b1.shape), expected [\(h)]") }
        if let b2 { precondition(b2.shape == [n], "mlp: b2 \(b2.shape), expected [\(n)]") }
        let m = x.shape.dropLast().reduce(1, *)
        guard m > 0, k > 0, h > 0, n > 0, TensorRuntime.fusesEpilogues || activation == .none,
              TensorRuntime.gemmBackend(m: m, n: h, k: k) == .oneDNNBF16,
              TensorRuntime.gemmBackend(m: m, n: n, k: h) == .oneDNNBF16 else {
            return linear(linear(x, weight: w1, bias: b1, then: activation), weight: w2, bias: b2)
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        var out = Tensor.uninitialized(outShape) { _ in }
        ScratchPool.with(UInt16.self, count: m * h) { hidden in
            x.data.withUnsafeBufferPointer { xp in
                out.data.withUnsafeMutableBufferPointer { op in
                    withOptionalPointer(b1) { b1p in
                        withOptionalPointer(b2) { b2p in
                            OneDNNGEMM.bf16MLP(m: m, k: k, hidden: h, n: n, x: xp.baseAddress!, w1: w1, b1: b1p,
                                               epilogue: activation, w2: w2, b2: b2p, hiddenScratch: hidden, y: op.baseAddress!)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Batched matrix product with NumPy broadcasting over the leading (batch) axes.
    ///
    /// `a: [..., M, K]` (or `[..., K, M]` with `transposeA`), `b: [..., K, N]` (or
    /// `[..., N, K]` with `transposeB`) → `[broadcast(...), M, N]`, scaled by `alpha`.
    /// Transposes go to BLAS as flags, so `q · kᵀ` never copies `k`.
    /// When `b` has no batch axes and `a` is not transposed, all of `a`'s batch is folded
    /// into the M dimension of a single GEMM (the common `activations · weight` case).
    /// ref: torch.matmul (rank ≥ 2 operands)
    public static func matmul(_ a: Tensor, _ b: Tensor,
                              transposeA: Bool = false, transposeB: Bool = false,
                              alpha: Float = 1) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let m = transposeA ? ac : ar, k = transposeA ? ar : ac
        let kb = transposeB ? bc : br, n = transposeB ? br : bc
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        let batch = broadcastShape(aBatch, bBatch)
        let nb = batch.reduce(1, *)
        // With k > 0 every output element is written by a beta = 0 GEMM: no zeroing pass.
        var out = k == 0 ? Tensor(zeros: batch + [m, n]) : Tensor.uninitialized(batch + [m, n]) { _ in }
        let aOff = batchOffsets(aBatch, in: batch, matrixSize: ar * ac)
        let bOff = batchOffsets(bBatch, in: batch, matrixSize: br * bc)
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                out.data.withUnsafeMutableBufferPointer { op in
                    guard let aa = ap.baseAddress, let ba = bp.baseAddress, let oa = op.baseAddress else { return }
                    if bBatch.isEmpty && !transposeA {
                        sgemm(transA: false, transB: transposeB, m: nb * m, n: n, k: k, alpha: alpha,
                              a: aa, lda: ac, b: ba, ldb: bc, c: oa, ldc: n)
                        return
                    }
                    for i in 0..<nb {
                        sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
                              a: aa + aOff[i], lda: ac, b: ba + bOff[i], ldb: bc, c: oa + i * m * n, ldc: n)
                    }
                }
            }
        }
        return out
    }

    /// Element offset of each broadcast batch index's matrix inside an operand whose own
    /// batch shape is `own` (right-aligned against `full`, size-1 axes repeat).
    static func batchOffsets(_ own: [Int], in full: [Int], matrixSize: Int) -> [Int] {
        odometerOffsets(shape: full, strides: broadcastStrides(own, to: full).map { $0 * matrixSize })
    }

    /// `Σ idx[d]·strides[d]` for every multi-index of `shape`, in row-major order.
    static func odometerOffsets(shape: [Int], strides: [Int]) -> [Int] {
        let total = shape.reduce(1, *)
        var offs = [Int](repeating: 0, count: total)
        var idx = [Int](repeating: 0, count: shape.count)
        var o = 0
        for i in 0..<total {
            offs[i] = o
            var d = shape.count - 1
            while d >= 0 {
                idx[d] += 1; o += strides[d]
                if idx[d] < shape[d] { break }
                o -= strides[d] * shape[d]; idx[d] = 0
                d -= 1
            }
        }
        return offs
    }
}

/// `body` with a pointer to `t`'s elements, or nil.
@inline(__always)
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.data.withUnsafeBufferPointer { body($0.baseAddress) }
}
