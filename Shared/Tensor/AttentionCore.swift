import Synchronization
import Foundation

/// A batch of row-major matrices inside one buffer: matrix `i` of a problem set with
/// `heads` heads starts at `base + (i / heads)·outerStride + (i % heads)·headStride` and its
/// rows are `ld` floats apart. This is how attention reads per-head q/k/v straight out of
/// a fused `[B, L, 3·C]` projection (no head split/merge permutes) and writes its output
/// into `[B, L, C]` with the heads already merged.
public struct MatrixBatch: @unchecked Sendable {
    public var base: UnsafeMutablePointer<Float>
    public var outerStride: Int, headStride: Int, ld: Int
    public init(_ base: UnsafeMutablePointer<Float>, outerStride: Int, headStride: Int, ld: Int) {
        self.base = base; self.outerStride = outerStride; self.headStride = headStride; self.ld = ld
    }
    @inline(__always)
    func at(_ i: Int, heads: Int) -> UnsafeMutablePointer<Float> {
        base + (i / heads) * outerStride + (i % heads) * headStride
    }
}

extension Ops {
    /// Largest m·n·k that OpenBLAS 0.3.x runs on the calling thread (interface/gemm.c:
    /// `MNK <= SMP_THRESHOLD_MIN · GEMM_MULTITHREAD_THRESHOLD` = 65536 · 4). Bigger calls
    /// wake its thread pool, which must not happen from inside our own parallel loops.
    static let blasSerialLimit = 65536 * 4

    /// `sgemm` cut into blocks of at most `blasSerialLimit` multiply-adds, so OpenBLAS runs
    /// every piece on the calling thread. Splits N, then M, and K (β-accumulated) only
    /// when a single row×column panel is still too big. Splitting M/N does not change
    /// any element's summation; splitting K adds partial sums in a different order.
    static func sgemmSerial(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let limit = blasSerialLimit
        if m * n * k <= limit {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc)
            return
        }
        let kc = min(k, max(64, limit / max(1, min(m, 16) * min(n, 16))))
        let rowsCols = max(1, limit / kc)
        let nc = min(n, max(8, rowsCols / max(1, min(m, 64))))
        let mc = min(m, max(1, rowsCols / nc))
        var i0 = 0
        while i0 < m {
            let mi = min(mc, m - i0)
            var j0 = 0
            while j0 < n {
                let nj = min(nc, n - j0)
                var k0 = 0
                while k0 < k {
                    let kk = min(kc, k - k0)
                    let ap = transA ? a + k0 * lda + i0 : a + i0 * lda + k0
                    let bp = transB ? b + j0 * ldb + k0 : b + k0 * ldb + j0
                    sgemm(transA: transA, transB: transB, m: mi, n: nj, k: kk, alpha: alpha, a: ap, lda: lda,
                          b: bp, ldb: ldb, beta: k0 == 0 ? beta : 1, c: c + i0 * ldc + j0, ldc: ldc)
                    k0 += kk
                }
                j0 += nj
            }
            i0 += mi
        }
    }

    /// Additive bias for `attentionCore`: problem `i` reads `base + offsets[i]`, element
    /// (r, c) at `r·rowStride + c·colStride` (strides 0 where broadcast).
    struct AttentionBias: @unchecked Sendable {
        var base: UnsafePointer<Float>
        var offsets: [Int]
        var rowStride: Int, colStride: Int
    }

    /// Decomposed rel-pos terms for `attentionCore`: problem `i`'s `[lq, kh]` and `[lq, kw]`.
    struct AttentionRelPos: @unchecked Sendable {
        var relH: UnsafePointer<Float>, relW: UnsafePointer<Float>
        var kh: Int, kw: Int
    }

    /// `out_i = softmax(alpha · q_i·k_iᵀ + bias_i [+ relPos_i]) · v_i` for `count` problems
    /// (`heads` of them per outer batch entry) with q/k/v/out addressed by `MatrixBatch`.
    ///
    /// Many small problems (TinyViT's 49-token windows, the mask decoder's prompt×image
    /// heads) run in parallel across cores, each on one thread with its own score scratch
    /// and BLAS calls cut below OpenBLAS's threading threshold. A few big problems (SAM
    /// global attention, 4096² per head) run one after another with threaded GEMMs and the
    /// bias/softmax pass split by rows.
    static func attentionCore(count nb: Int, heads: Int, lq: Int, lk: Int, d: Int, dv: Int, alpha: Float,
                              q: MatrixBatch, k: MatrixBatch, v: MatrixBatch, out: MatrixBatch,
                              bias: AttentionBias? = nil, relPos: AttentionRelPos? = nil) {
        guard nb > 0, lq > 0, dv > 0 else { return }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let perProblem = lq * lk * max(d, dv, 1)
        let parallelProblems = nb >= 2 * cores && perProblem <= 8 * blasSerialLimit

        /// Scores → (+bias, +rel-pos) → softmax for rows [lo, hi) of problem i; `s` holds
        /// row `lo` (row r at `s + (r − lo)·lk`).
        @Sendable @inline(__always)
        func prepareRows(_ i: Int, _ s: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int,
                         bf16Out: UnsafeMutablePointer<UInt16>? = nil) {
            if bias != nil || relPos != nil {
                for r in lo..<hi {
                    let row = s + (r - lo) * lk
                    if let bb = bias {
                        let br = bb.base + bb.offsets[i] + r * bb.rowStride
                        if bb.colStride == 1 { for j in 0..<lk { row[j] += br[j] } }
                        else { let bv = br[0]; for j in 0..<lk { row[j] += bv } }
                    }
                    if let rp = relPos {
                        let hRow = rp.relH + (i * lq + r) * rp.kh, wRow = rp.relW + (i * lq + r) * rp.kw
                        for ky in 0..<rp.kh {
                            let hv = hRow[ky], seg = row + ky * rp.kw
                            for kx in 0..<rp.kw { seg[kx] += hv + wRow[kx] }
                        }
                    }
                }
            }
            softmaxRows(row0: s, rows: hi - lo, cols: lk, bf16Out: bf16Out)
        }

        if parallelProblems {
            let jobs = min(nb, 4 * cores)
            parallelFor(jobs, costPerItem: parallelGrain) { job in
                // Job owns problems [p0, p1): disjoint output matrices; private scratch.
                let p0 = nb * job / jobs, p1 = nb * (job + 1) / jobs
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: lq * lk)
                defer { scratch.deallocate() }
                for i in p0..<p1 {
                    sgemmSerial(transA: false, transB: true, m: lq, n: lk, k: d, alpha: alpha,
                                a: q.at(i, heads: heads), lda: q.ld, b: k.at(i, heads: heads), ldb: k.ld,
                                c: scratch, ldc: lk)
                    prepareRows(i, scratch, 0, lq)
                    sgemmSerial(transA: false, transB: false, m: lq, n: dv, k: lk,
                                a: scratch, lda: lk, b: v.at(i, heads: heads), ldb: v.ld,
                                c: out.at(i, heads: heads), ldc: out.ld)
                }
            }
            return
        }
        // Many medium problems in bf16 (SAM 2 Hiera's 14×14-window stage: 100 problems of
        // 196 × 196 × 96 per block; SAM ViT's 300 of 196 × 196 × 64): the score maps of as
        // many problems as fit `attentionScoreBlockBytes` in one batched oneDNN call, one
        // parallel softmax pass over all their rows, all their outputs in a second batched
        // call — instead of two small GEMM calls (each starting an OpenMP team) and a
        // parallel loop per problem. The same products, softmax and bf16 rounding as the
        // per-problem path below, problem by problem.
        let group = attentionScoreBlockBytes / max(1, lq * lk * MemoryLayout<Float>.size)
        if nb >= 2, group >= 2, batchesMediumAttention,
           TensorRuntime.gemmBackend(m: lq, n: lk, k: d) == .oneDNNBF16,
           TensorRuntime.gemmBackend(m: lq, n: dv, k: lk) == .oneDNNBF16 {
            let g = min(group, nb)
            let counts = [g * lq * lk, g * lq * lk / 2 + 16, g * lq * d / 2 + 16, g * lk * d / 2 + 16,
                          g * lk * dv / 2 + 16, g * lq * dv].map { ($0 + 15) & ~15 }
            ScratchPool.with(Float.self, count: counts.reduce(0, +)) { block in
                var offset = 0
                func carve(_ i: Int) -> UnsafeMutablePointer<Float> { defer { offset += counts[i] }; return block + offset }
                let scores = carve(0)
                let probs = UnsafeMutableRawPointer(carve(1)).bindMemory(to: UInt16.self, capacity: g * lq * lk)
                let qb = UnsafeMutableRawPointer(carve(2)).bindMemory(to: UInt16.self, capacity: g * lq * d)
                let kb = UnsafeMutableRawPointer(carve(3)).bindMemory(to: UInt16.self, capacity: g * lk * d)
                let vb = UnsafeMutableRawPointer(carve(4)).bindMemory(to: UInt16.self, capacity: g * lk * dv)
                let ob = carve(5)
                let ps = (s: SendablePointer(scores), o: SendablePointer(ob))
                let hs = (p: SendablePointer(probs), q: SendablePointer(qb), k: SendablePointer(kb), v: SendablePointer(vb))
                var p0 = 0
                while p0 < nb {
                    let count = min(g, nb - p0), first = p0
                    parallelFor(count, costPerItem: (lq + 2 * lk) * max(d, dv)) { j in
                        let i = first + j
                        BF16.convert(q.at(i, heads: heads), rows: lq, cols: d, ld: q.ld, to: hs.q.base + j * lq * d)
                        BF16.convert(k.at(i, heads: heads), rows: lk, cols: d, ld: k.ld, to: hs.k.base + j * lk * d)
                        BF16.convert(v.at(i, heads: heads), rows: lk, cols: dv, ld: v.ld, to: hs.v.base + j * lk * dv)
                    }
                    OneDNNGEMM.bf16Batched(batch: count, transA: false, transB: true, m: lq, n: lk, k: d, alpha: alpha,
                                           a: qb, b: kb, c: scores)
                    parallelFor(count, costPerItem: lq * lk * 8) { j in
                        prepareRows(first + j, ps.s.base + j * lq * lk, 0, lq, bf16Out: hs.p.base + j * lq * lk)
                    }
                    OneDNNGEMM.bf16Batched(batch: count, transA: false, transB: false, m: lq, n: dv, k: lk, alpha: 1,
                                           a: probs, b: vb, c: ob)
                    parallelFor(count, costPerItem: lq * dv) { j in
                        let dst = out.at(first + j, heads: heads), src = ps.o.base + j * lq * dv
                        for r in 0..<lq { (dst + r * out.ld).update(from: src + r * dv, count: dv) }
                    }
                    p0 += count
                    batchedAttentionGroups.add(1, ordering: .relaxed)
                }
            }
            return
        }
        // A few big problems (SAM's global attention, SAM 2's memory attention with up to
        // 28,700 keys) run one after another with threaded GEMMs, in blocks of query rows:
        // the score map of one block is reused scratch of at most `attentionScoreBlockBytes`
        // (a whole 4096 × 28,700 map is 470 MB: fresh pages on every call, and softmax
        // streaming it through memory twice), and each block's probabilities feed the
        // second GEMM while still in cache. Splitting rows does not change any element's
        // summation. In bf16 precision q, k and v are converted once per problem and the
        // softmax writes the bf16 probabilities the second GEMM reads (no extra pass).
        let rb = attentionRowBlock(lq: lq, lk: lk)
        let bf16 = TensorRuntime.gemmBackend(m: rb, n: lk, k: d) == .oneDNNBF16
            && TensorRuntime.gemmBackend(m: rb, n: dv, k: lk) == .oneDNNBF16
        // One scratch block from the pool, carved into the f32 score block and the bf16
        // probabilities and q/k/v copies: fresh pages for a 32 MiB score block on every
        // call were page faults and zeroing of every byte (ScratchPool).
        let bf16Counts = bf16 ? [rb * lk, lq * d, lk * d, lk * dv].map { ($0 + 31) & ~31 } : [0, 0, 0, 0]
        ScratchPool.with(Float.self, count: rb * lk + bf16Counts.reduce(0, +) / 2 + 16) { block in
            let scores = block
            let half = UnsafeMutableRawPointer(block + rb * lk).alignedUp(toMultipleOf: 64)
                .bindMemory(to: UInt16.self, capacity: bf16Counts.reduce(0, +))
            let probs = half, qb = probs + bf16Counts[0], kb = qb + bf16Counts[1], vb = kb + bf16Counts[2]
            let s = SendablePointer(scores), pb = SendablePointer(probs)
            for i in 0..<nb {
                let qi = q.at(i, heads: heads), ki = k.at(i, heads: heads), vi = v.at(i, heads: heads)
                let oi = out.at(i, heads: heads)
                if bf16 {
                    BF16.convert(qi, rows: lq, cols: d, ld: q.ld, to: qb)
                    BF16.convert(ki, rows: lk, cols: d, ld: k.ld, to: kb)
                    BF16.convert(vi, rows: lk, cols: dv, ld: v.ld, to: vb)
                }
                var r0 = 0
                while r0 < lq {
                    let m = min(rb, lq - r0), blockStart = r0
                    if bf16 {
                        gemmBF16(transA: false, transB: true, m: m, n: lk, k: d, alpha: alpha, a: qb + r0 * d, lda: d,
                                 b: kb, ldb: d, beta: 0, c: scores, ldc: lk)
                    } else {
                        sgemm(transA: false, transB: true, m: m, n: lk, k: d, alpha: alpha, a: qi + r0 * q.ld, lda: q.ld,
                              b: ki, ldb: k.ld, c: scores, ldc: lk)
                    }
                    let chunks = min(m, m * lk >= parallelGrain ? 4 * cores : 1)
                    parallelFor(chunks, costPerItem: parallelGrain) { c in
                        // Chunk c owns block rows [lo, hi): disjoint writes.
                        let lo = m * c / chunks, hi = m * (c + 1) / chunks
                        prepareRows(i, s.base + lo * lk, blockStart + lo, blockStart + hi, bf16Out: bf16 ? pb.base + lo * lk : nil)
                    }
                    if bf16 {
                        gemmBF16(transA: false, transB: false, m: m, n: dv, k: lk, alpha: 1, a: probs, lda: lk,
                                 b: vb, ldb: dv, beta: 0, c: oi + r0 * out.ld, ldc: out.ld)
                    } else {
                        sgemm(transA: false, transB: false, m: m, n: dv, k: lk, a: scores, lda: lk, b: vi, ldb: v.ld,
                              c: oi + r0 * out.ld, ldc: out.ld)
                    }
                    r0 += m
                }
            }
        }
    }

    /// Upper bound on one query block's f32 score map in `attentionCore`'s big-problem path.
    /// Measured on SAM 2 Hiera-T tracking (4096 queries × up to 28,700 keys, bf16, 2
    /// threads): whole maps 2.2–3.1 s per frame, 32 MiB blocks 1.9 s, 8 MiB 2.1 s (GEMMs
    /// too short), 128 MiB 1.9 s. Tests lower it to cover ragged blocks on small shapes.
    public static var attentionScoreBlockBytes: Int {
        get { attentionScoreBlockState.load(ordering: .relaxed) }
        set { attentionScoreBlockState.store(max(MemoryLayout<Float>.size, newValue), ordering: .relaxed) }
    }
    public static let defaultAttentionScoreBlockBytes = 32 << 20
    /// Whether many medium bf16 attention problems run batched (default); set
    /// `SEGFLOW_UNBATCHED_ATTENTION=1` to run them one by one, for A/B measurements.
    public static var batchesMediumAttention: Bool {
        get { batchedAttentionState.load(ordering: .relaxed) }
        set { batchedAttentionState.store(newValue, ordering: .relaxed) }
    }
    static let batchedAttentionState = Atomic<Bool>(ProcessInfo.processInfo.environment["SEGFLOW_UNBATCHED_ATTENTION"] != "1")
    /// Groups of problems run by the batched medium-problem path since start (tests).
    public static let batchedAttentionGroups = Atomic<Int>(0)
    static let attentionScoreBlockState = Atomic<Int>(defaultAttentionScoreBlockBytes)

    /// Query rows per block: as many as fit `attentionScoreBlockBytes` (at least one),
    /// rounded down to a multiple of 64 (GEMM register tiles) when that many fit.
    static func attentionRowBlock(lq: Int, lk: Int) -> Int {
        let fit = max(1, attentionScoreBlockBytes / (MemoryLayout<Float>.size * max(lk, 1)))
        return min(lq, fit >= 64 ? fit / 64 * 64 : fit)
    }
}

/// Per-head column view of a `[B, L, W]` tensor for `Ops.multiHeadAttention`: head `h`
/// is columns `column + h·headStride ..< + headDim` of every row. Lets attention read
/// q/k/v straight out of a fused qkv projection, or out of separate `[B, L, H·d]`
/// projections, without splitting heads into `[B, H, L, d]` copies.
public struct HeadView: Sendable {
    public var tensor: Tensor
    public var column: Int, headStride: Int, headDim: Int
    public init(_ tensor: Tensor, column: Int = 0, headStride: Int, headDim: Int) {
        self.tensor = tensor; self.column = column; self.headStride = headStride; self.headDim = headDim
    }
    /// Heads side by side: `[B, L, H·d]`, head h at columns `h·d ..< (h+1)·d`.
    public static func contiguous(_ t: Tensor, heads: Int) -> HeadView {
        let d = t.shape[t.rank - 1] / heads
        return HeadView(t, column: 0, headStride: d, headDim: d)
    }
}

extension Ops {
    /// Multi-head attention on head views: `q: [Bq, Lq, ·]`, `k`/`v`: `[Bk, Lk, ·]` with
    /// `Bk == Bq` or `Bk == 1` (one key/value set shared by every query batch entry, e.g.
    /// the image side of SAM's decoder for many prompts) → `[Bq, Lq, heads·dv]` with heads
    /// merged (PyTorch's `transpose(1, 2).reshape(B, L, H·dv)`).
    /// `bias` broadcasts to `[Bq, heads, Lq, Lk]`; `relPos` terms are per (b, h) problem,
    /// b-major. Same numerics as `attention` (one GEMM per product, fused bias+softmax).
    /// ref: torch.nn.functional.scaled_dot_product_attention on split heads
    public static func multiHeadAttention(q: HeadView, k: HeadView, v: HeadView, heads: Int, scale: Float? = nil,
                                          bias: Tensor? = nil, relPos: DecomposedRelPos? = nil) -> Tensor {
        let (qt, kt, vt) = (q.tensor, k.tensor, v.tensor)
        precondition(qt.rank == 3 && kt.rank == 3 && vt.rank == 3, "multiHeadAttention: q/k/v must be [B, L, W]")
        let (bq, lq, wq) = (qt.shape[0], qt.shape[1], qt.shape[2])
        let (bk, lk, wk) = (kt.shape[0], kt.shape[1], kt.shape[2])
        let wv = vt.shape[2]
        precondition(vt.shape[0] == bk && vt.shape[1] == lk && (bk == bq || bk == 1),
                     "multiHeadAttention: q \(qt.shape), k \(kt.shape), v \(vt.shape) batch/length mismatch")
        precondition(q.headDim == k.headDim, "multiHeadAttention: q/k head dims \(q.headDim) vs \(k.headDim)")
        for (hv, w) in [(q, wq), (k, wk), (v, wv)] {
            precondition(hv.column >= 0 && hv.column + (heads - 1) * hv.headStride + hv.headDim <= w,
                         "multiHeadAttention: head view (col \(hv.column), stride \(hv.headStride), dim \(hv.headDim)) exceeds width \(w)")
        }
        let d = q.headDim, dv = v.headDim, nb = bq * heads
        var biasOffsets: [Int] = [], bRow = 0, bCol = 0
        if let bias {
            let full = [bq, heads, lq, lk]
            precondition(bias.rank <= 4 && broadcastShape(bias.shape, full) == full,
                         "multiHeadAttention: bias \(bias.shape) does not broadcast to \(full)")
            let st = broadcastStrides(bias.shape, to: full)
            biasOffsets = odometerOffsets(shape: [bq, heads], strides: [st[0], st[1]])
            bRow = st[2]; bCol = st[3]
        }
        if let relPos {
            precondition(relPos.relH.shape == [nb, relPos.qSize.h, relPos.qSize.w, relPos.kSize.h]
                         && relPos.relW.shape == [nb, relPos.qSize.h, relPos.qSize.w, relPos.kSize.w]
                         && relPos.qSize.h * relPos.qSize.w == lq && relPos.kSize.h * relPos.kSize.w == lk,
                         "multiHeadAttention: rel-pos terms \(relPos.relH.shape)/\(relPos.relW.shape) for \(nb) problems")
        }
        let alpha = scale ?? 1 / Float(d).squareRoot()
        var out = Tensor.uninitialized([bq, lq, heads * dv]) { _ in }
        let relH = relPos?.relH.data ?? [], relW = relPos?.relW.data ?? [], biasData = bias?.data ?? []
        qt.data.withUnsafeBufferPointer { qp in
        kt.data.withUnsafeBufferPointer { kp in
        vt.data.withUnsafeBufferPointer { vp in
        out.data.withUnsafeMutableBufferPointer { op in
        biasData.withUnsafeBufferPointer { bp in
        relH.withUnsafeBufferPointer { hp in
        relW.withUnsafeBufferPointer { wp in
            guard let qb = qp.baseAddress, let kb = kp.baseAddress, let vb = vp.baseAddress, let ob = op.baseAddress else { return }
            let mq = MatrixBatch(UnsafeMutablePointer(mutating: qb) + q.column, outerStride: lq * wq, headStride: q.headStride, ld: wq)
            let mk = MatrixBatch(UnsafeMutablePointer(mutating: kb) + k.column, outerStride: bk == 1 ? 0 : lk * wk,
                                 headStride: k.headStride, ld: wk)
            let mv = MatrixBatch(UnsafeMutablePointer(mutating: vb) + v.column, outerStride: bk == 1 ? 0 : lk * wv,
                                 headStride: v.headStride, ld: wv)
            let mo = MatrixBatch(ob, outerStride: lq * heads * dv, headStride: dv, ld: heads * dv)
            let ab = bias != nil ? AttentionBias(base: bp.baseAddress!, offsets: biasOffsets, rowStride: bRow, colStride: bCol) : nil
            let ar = relPos.map { AttentionRelPos(relH: hp.baseAddress!, relW: wp.baseAddress!, kh: $0.kSize.h, kw: $0.kSize.w) }
            attentionCore(count: nb, heads: heads, lq: lq, lk: lk, d: d, dv: dv, alpha: alpha,
                          q: mq, k: mk, v: mv, out: mo, bias: ab, relPos: ar)
        }}}}}}}
        return out
    }

    /// `decomposedRelPos` for a head view: q of problem (b, h) is head h of batch entry b.
    /// ref: segment_anything/modeling/image_encoder.py add_decomposed_rel_pos (the einsums)
    public static func decomposedRelPos(q: HeadView, heads: Int, relPosH: Tensor, relPosW: Tensor,
                                        qSize: (h: Int, w: Int), kSize: (h: Int, w: Int)) -> DecomposedRelPos {
        let qt = q.tensor
        precondition(qt.rank == 3 && qt.shape[1] == qSize.h * qSize.w, "decomposedRelPos: q \(qt.shape) vs q size \(qSize)")
        let (b, w, c) = (qt.shape[0], qt.shape[2], q.headDim)
        let rh = getRelPos(qSize: qSize.h, kSize: kSize.h, relPos: relPosH)
        let rw = getRelPos(qSize: qSize.w, kSize: kSize.w, relPos: relPosW)
        precondition(rh.shape[2] == c && rw.shape[2] == c, "decomposedRelPos: table width differs from q's \(c)")
        let (qh, qw, kh, kw) = (qSize.h, qSize.w, kSize.h, kSize.w)
        let nb = b * heads
        var relH = Tensor.uninitialized([nb, qh, qw, kh]) { _ in }, relW = Tensor.uninitialized([nb, qh, qw, kw]) { _ in }
        qt.data.withUnsafeBufferPointer { qp in
        rh.data.withUnsafeBufferPointer { hp in
        rw.data.withUnsafeBufferPointer { wp in
        relH.data.withUnsafeMutableBufferPointer { oh in
        relW.data.withUnsafeMutableBufferPointer { ow in
            let qb = SendableConstPointer(qp.baseAddress!), hb = SendableConstPointer(hp.baseAddress!)
            let wb = SendableConstPointer(wp.baseAddress!)
            let ohb = SendablePointer(oh.baseAddress!), owb = SendablePointer(ow.baseAddress!)
            parallelFor(nb, costPerItem: 2 * qh * qw * max(kh, kw) * c) { i in
                // Problem i writes only its own relH/relW slices.
                let qi = qb.base + (i / heads) * qSize.h * qSize.w * w + q.column + (i % heads) * q.headStride
                for y in 0..<qh {
                    sgemmSerial(transA: false, transB: true, m: qw, n: kh, k: c,
                                a: qi + y * qw * w, lda: w, b: hb.base + y * kh * c, ldb: c,
                                c: ohb.base + ((i * qh + y) * qw) * kh, ldc: kh)
                }
                for x in 0..<qw {
                    sgemmSerial(transA: false, transB: true, m: qh, n: kw, k: c,
                                a: qi + x * w, lda: qw * w, b: wb.base + x * kw * c, ldb: c,
                                c: owb.base + (i * qh * qw + x) * kw, ldc: qw * kw)
                }
            }
        }}}}}
        return DecomposedRelPos(relH: relH, relW: relW, qSize: qSize, kSize: kSize)
    }
}
