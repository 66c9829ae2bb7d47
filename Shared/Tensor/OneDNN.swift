import CDNNL
import Foundation
import Synchronization

/// The only code in Tensor that touches oneDNN handles: one CPU engine, a pool of
/// streams, and a cache of matmul primitives keyed by everything a primitive bakes in
/// (shape, layout, data type, alpha/beta, thread count).
///
/// Creating a matmul primitive costs far more than running a small one (oneDNN JITs its
/// brgemm kernels per shape), so each distinct GEMM is created once per process and then
/// only executed. Primitives are immutable and safe to execute from several threads at
/// once (Debian's build defines DNNL_ENABLE_CONCURRENT_EXEC: scratchpads are per call).
final class OneDNN: @unchecked Sendable {
    /// `@unchecked`: the engine handle is created once and only read afterwards; the
    /// mutable parts (streams, primitives) are behind mutexes.
    let engine: OpaquePointer
    private let streams = Mutex<[StreamHandle]>([])
    private let primitives = Mutex<[MatmulKey: MatmulPrimitive]>([:])
    /// One matmul executes at a time. Concurrent executions from Segflow's own parallel
    /// loops (each with its own OpenMP team) gave wrong results about once in 12 runs of
    /// GEMMEngineTests.testOpsRunInBF16WhenSelected (relative error 0.24–0.48); model GEMMs
    /// come from one thread, so serialising costs them nothing.
    private let executing = Mutex<Void>(())
    /// Bound on cached primitives. A model has a few dozen distinct GEMM shapes; the bound
    /// only matters for workloads with unbounded shape variety (then the cache restarts).
    static let primitiveCacheCapacity = 4096

    static let shared: OneDNN = {
        var e: OpaquePointer?
        let status = dnnl_engine_create(&e, dnnl_cpu, 0)
        precondition(status == dnnl_success && e != nil, "oneDNN: cannot create a CPU engine (status \(status.rawValue))")
        return OneDNN(engine: e!)
    }()

    private init(engine: OpaquePointer) { self.engine = engine }

    /// "major.minor.patch" of the loaded library.
    static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// The most capable instruction set oneDNN's CPU dispatcher will use on this machine.
    static var effectiveISA: (name: String, hasBF16: Bool) {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let names: [(UInt32, String)] = [
            (dnnl_cpu_isa_avx512_core_amx.rawValue, "avx512_core_amx"),
            (dnnl_cpu_isa_avx512_core_bf16.rawValue, "avx512_core_bf16"),
            (dnnl_cpu_isa_avx512_core_vnni.rawValue, "avx512_core_vnni"),
            (dnnl_cpu_isa_avx512_core.rawValue, "avx512_core"),
            (dnnl_cpu_isa_avx2_vnni.rawValue, "avx2_vnni"),
            (dnnl_cpu_isa_avx2.rawValue, "avx2"),
            (dnnl_cpu_isa_avx.rawValue, "avx"),
            (dnnl_cpu_isa_sse41.rawValue, "sse41"),
        ]
        let name = names.first { $0.0 == isa }?.1 ?? String(format: "isa 0x%x", isa)
        // The ISA values are bit sets: avx512_core_bf16's bits are contained in AMX's.
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return (name, isa & bf16 == bf16)
    }

    struct MatmulKey: Hashable {
        var m: Int, n: Int, k: Int
        var transA: Bool, transB: Bool
        var lda: Int, ldb: Int, ldc: Int
        var bf16: Bool
        var alphaBits: UInt32, betaBits: UInt32
        var epilogue: GEMMEpilogue
        var threads: Int
        /// A per-column f32 bias (`[n]`, DNNL_ARG_BIAS) added to the accumulator before the
        /// epilogue — what `beta = 1` over a bias pre-filled C computes, without the fill
        /// and the read of C.
        var bias: Bool = false
        /// C in bf16 (rounded to nearest even from the f32 accumulator, after bias and
        /// epilogue) instead of f32: for a hidden activation the next bf16 GEMM reads as is.
        var dstBF16: Bool = false
        /// `batch` independent products of dense operands one after another in memory
        /// (matrix b of A at `b·(stored rows·lda)`, likewise B and C): one primitive call
        /// for many small problems (window attention's score maps).
        var batch: Int = 1
    }

    final class MatmulPrimitive: @unchecked Sendable {
        /// `@unchecked`: oneDNN primitives and memory descriptors are immutable after creation.
        let primitive: OpaquePointer
        let src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, dst: dnnl_memory_desc_t
        let bias: dnnl_memory_desc_t?
        /// oneDNN's implementation name, e.g. "brg:avx512_core_bf16" or "gemm:jit".
        let implementation: String

        init(primitive: OpaquePointer, src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t,
             dst: dnnl_memory_desc_t, bias: dnnl_memory_desc_t?, implementation: String) {
            self.primitive = primitive; self.src = src; self.weights = weights; self.dst = dst
            self.bias = bias
            self.implementation = implementation
        }
        deinit { dnnl_primitive_destroy(primitive) }
    }

    private final class StreamHandle: @unchecked Sendable {
        /// `@unchecked`: a stream is used by one thread at a time (taken from and returned to the pool).
        let stream: OpaquePointer
        init(_ s: OpaquePointer) { stream = s }
        deinit { dnnl_stream_destroy(stream) }
    }

    /// The cached primitive for `key`, created on first use.
    func matmul(_ key: MatmulKey) -> MatmulPrimitive {
        if let p = primitives.withLock({ $0[key] }) { return p }
        let p = createMatmul(key)
        primitives.withLock { cache in
            if cache.count >= Self.primitiveCacheCapacity { cache.removeAll() }
            cache[key] = p
        }
        return p
    }

    /// Number of primitives created and cached so far (diagnostics and tests).
    var cachedPrimitiveCount: Int { primitives.withLock { $0.count } }

    private func createMatmul(_ key: MatmulKey) -> MatmulPrimitive {
        let dt = key.bf16 ? dnnl_bf16 : dnnl_f32
        // Row-major operands; a transpose is just swapped strides, never a copy.
        func desc(rows: Int, cols: Int, ld: Int, transposed: Bool, type: dnnl_data_type_t) -> dnnl_memory_desc_t {
            var md = dnnl_memory_desc_t()
            var dims: [Int64] = [Int64(rows), Int64(cols)]
            var strides: [Int64] = transposed ? [1, Int64(ld)] : [Int64(ld), 1]
            if key.batch > 1 {
                // Stored matrix: `cols` × `rows` when transposed, `ld` apart per stored row.
                dims.insert(Int64(key.batch), at: 0)
                strides.insert(Int64((transposed ? cols : rows) * ld), at: 0)
            }
            let s = dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims, type, strides)
            precondition(s == dnnl_success, "oneDNN: memory descriptor \(rows)x\(cols) ld \(ld) (status \(s.rawValue))")
            return md
        }
        var src = desc(rows: key.m, cols: key.k, ld: key.lda, transposed: key.transA, type: dt)
        var wei = desc(rows: key.k, cols: key.n, ld: key.ldb, transposed: key.transB, type: dt)
        var dst = desc(rows: key.m, cols: key.n, ld: key.ldc, transposed: false, type: key.dstBF16 ? dnnl_bf16 : dnnl_f32)
        var op = dnnl_matmul_desc_t()
        var status: dnnl_status_t
        precondition(!key.bias || key.batch == 1, "oneDNN: bias on a batched matmul is not supported here")
        let biasDesc = key.bias ? desc(rows: 1, cols: key.n, ld: key.n, transposed: false, type: dnnl_f32) : nil
        if var bmd = biasDesc {
            status = dnnl_matmul_desc_init(&op, &src, &wei, &bmd, &dst)
        } else {
            status = dnnl_matmul_desc_init(&op, &src, &wei, nil, &dst)
        }
        precondition(status == dnnl_success, "oneDNN: matmul descriptor for \(key) (status \(status.rawValue))")

        var attr: OpaquePointer?
        dnnl_primitive_attr_create(&attr)
        defer { dnnl_primitive_attr_destroy(attr) }
        let alpha = Float(bitPattern: key.alphaBits), beta = Float(bitPattern: key.betaBits)
        if alpha != 1 {
            var scale = alpha
            status = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale)
            precondition(status == dnnl_success, "oneDNN: output scale \(alpha) (status \(status.rawValue))")
        }
        if beta != 0 || key.epilogue != .none {
            // C = f(alpha·A·B + beta·C): the sum post-op adds beta·(previous C), then the
            // element-wise post-op applies f (in this order: a bias pre-filled in C comes
            // before the activation).
            var po: OpaquePointer?
            dnnl_post_ops_create(&po)
            defer { dnnl_post_ops_destroy(po) }
            if beta != 0 {
                status = dnnl_post_ops_append_sum(po, beta)
                precondition(status == dnnl_success, "oneDNN: sum post-op \(beta) (status \(status.rawValue))")
            }
            switch key.epilogue {
            case .none: break
            case .gelu:
                status = dnnl_post_ops_append_eltwise(po, 1, dnnl_eltwise_gelu_erf, 0, 0)
                precondition(status == dnnl_success, "oneDNN: gelu_erf post-op (status \(status.rawValue))")
            }
            status = dnnl_primitive_attr_set_post_ops(attr, po)
            precondition(status == dnnl_success, "oneDNN: post-ops for \(key) (status \(status.rawValue))")
        }
        // The thread count is baked into the primitive (its work split) when it is created.
        omp_set_num_threads(Int32(key.threads))
        var pd: OpaquePointer?
        status = withUnsafePointer(to: &op) { dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr, engine, nil) }
        precondition(status == dnnl_success && pd != nil, "oneDNN: no matmul implementation for \(key) (status \(status.rawValue))")
        defer { dnnl_primitive_desc_destroy(pd) }
        var info: UnsafePointer<CChar>?
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info)
        let impl = info.map { String(cString: $0) } ?? "unknown"
        var prim: OpaquePointer?
        status = dnnl_primitive_create(&prim, pd)
        precondition(status == dnnl_success && prim != nil, "oneDNN: matmul primitive for \(key) (status \(status.rawValue))")
        return MatmulPrimitive(primitive: prim!, src: src, weights: wei, dst: dst, bias: biasDesc, implementation: impl)
    }

    /// Runs `p` on operands in the layouts its key describes; returns when C is written.
    func execute(_ p: MatmulPrimitive, a: UnsafeRawPointer, b: UnsafeRawPointer, c: UnsafeMutableRawPointer,
                 bias: UnsafePointer<Float>? = nil, threads: Int) {
        precondition((bias != nil) == (p.bias != nil), "oneDNN: a bias pointer must be given exactly to primitives made with one")
        let stream = streams.withLock { $0.popLast() } ?? makeStream()
        defer { streams.withLock { $0.append(stream) } }
        // OpenMP's thread count is a per-calling-thread setting; set it on every call so a
        // GEMM from any thread runs on the team size its primitive was created for.
        omp_set_num_threads(Int32(threads))
        var src = p.src, wei = p.weights, dst = p.dst
        var ms: OpaquePointer?, mw: OpaquePointer?, md: OpaquePointer?, mb: OpaquePointer?
        dnnl_memory_create(&ms, &src, engine, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_create(&mw, &wei, engine, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_create(&md, &dst, engine, UnsafeMutableRawPointer(c))
        if let bias, var bmd = p.bias { dnnl_memory_create(&mb, &bmd, engine, UnsafeMutableRawPointer(mutating: bias)) }
        defer { dnnl_memory_destroy(ms); dnnl_memory_destroy(mw); dnnl_memory_destroy(md); if let mb { dnnl_memory_destroy(mb) } }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: ms), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: mw),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: md)]
        if let mb { args.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: mb)) }
        executing.withLock { _ in
            var status = dnnl_primitive_execute(p.primitive, stream.stream, Int32(args.count), args)
            precondition(status == dnnl_success, "oneDNN: matmul execution failed (status \(status.rawValue))")
            status = dnnl_stream_wait(stream.stream)
            precondition(status == dnnl_success, "oneDNN: stream wait failed (status \(status.rawValue))")
        }
    }

    private func makeStream() -> StreamHandle {
        var s: OpaquePointer?
        let status = dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue)
        precondition(status == dnnl_success && s != nil, "oneDNN: cannot create a stream (status \(status.rawValue))")
        return StreamHandle(s!)
    }
}
