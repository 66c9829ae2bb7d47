import Foundation

/// Namespace for every tensor kernel in Segflow.
///
/// API convention (one rule, used everywhere in this module):
/// - Kernels are `static func`s on `Ops` that take tensors by value and return a new
///   tensor: `Ops.linear(x, weight: w, bias: b)`, `Ops.conv2d(x, weight: w, stride: 2)`.
///   Names and argument order follow the PyTorch function each one mirrors
///   (`torch.nn.functional.*` or `segment_anything`), so model code reads like the
///   upstream module it ports.
/// - Layouts are PyTorch's: images are NCHW, linear weights are `[out, in]`, conv weights
///   are `[out, in/groups, kh, kw]`, transposed-conv weights are `[in, out/groups, kh, kw]`.
/// - Axis arguments accept negative values, counted from the end, as in PyTorch.
/// - `+ - * /` on `Tensor` (and with a `Float` scalar) are sugar for the broadcasting
///   `Ops.add/sub/mul/div`; `Tensor.reshaped(_:)` is the only shape op on the type itself.
/// - Shape mismatches are programmer errors and stop with `precondition`, naming the
///   shapes; checkpoint/shape validation against user data belongs to the loaders.
public enum Ops {
    /// Maps a possibly negative axis onto `0..<rank`.
    @inline(__always)
    static func axis(_ axis: Int, rank: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for rank \(rank)")
        return a
    }

    /// Work smaller than this many scalar operations is not worth a thread hop.
    static let parallelGrain = 1 << 15

    /// Runs `body(i)` for `i` in `0..<count`, in parallel when the total work
    /// (`count * costPerItem`) is large enough to amortise dispatching.
    @inline(__always)
    static func parallelFor(_ count: Int, costPerItem: Int, _ body: @Sendable (Int) -> Void) {
        if count > 1 && count * costPerItem >= parallelGrain {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
        } else {
            for i in 0..<count { body(i) }
        }
    }
}

extension Ops {
    /// Elements per parallel job of the 8-wide elementwise kernels (64 KiB of Float).
    static let elementwiseChunk = 1 << 14

    /// Splits `0..<n` into `elementwiseChunk`-element jobs `[lo, hi)` across cores (each job
    /// owns its range: disjoint writes). A kernel that runs a whole range itself (rather
    /// than through `map8`'s per-vector closure, which the compiler calls out of line)
    /// keeps its constants in registers for the whole job.
    @inline(__always)
    static func forEachChunk(_ n: Int, cost: Int, _ body: @Sendable (_ lo: Int, _ hi: Int) -> Void) {
        let chunk = elementwiseChunk
        parallelFor((n + chunk - 1) / chunk, costPerItem: chunk * cost) { job in
            let lo = job * chunk
            body(lo, min(n, lo + chunk))
        }
    }

    /// Applies an 8-wide kernel to `n` floats read from `src` and written to `dst` (which
    /// may equal `src`), in 16 Ki-element jobs split across cores. The tail is run through
    /// `f` on a zero-padded vector and only the valid lanes are stored.
    /// `cost` is a rough per-element cost in scalar ops, for the parallel threshold.
    @inline(__always)
    static func map8(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count n: Int, cost: Int,
                     _ f: @Sendable (SIMD8<Float>) -> SIMD8<Float>) {
        let s = SendableConstPointer(src), d = SendablePointer(dst)
        forEachChunk(n, cost: cost) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let v = UnsafeRawPointer(s.base + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(d.base + i).storeBytes(of: f(v), as: SIMD8<Float>.self)
                i += 8
            }
            if i < hi {
                var v = SIMD8<Float>(repeating: 0)
                for j in 0..<(hi - i) { v[j] = s.base[i + j] }
                let r = f(v)
                for j in 0..<(hi - i) { d.base[i + j] = r[j] }
            }
        }
    }

    /// Two-input version of `map8`: `dst[i] = f(a[i], b[i])`; `dst` may equal `a` or `b`.
    @inline(__always)
    static func zip8(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                     count n: Int, _ f: @Sendable (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
        let pa = SendableConstPointer(a), pb = SendableConstPointer(b), d = SendablePointer(dst)
        forEachChunk(n, cost: 1) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let va = UnsafeRawPointer(pa.base + i).loadUnaligned(as: SIMD8<Float>.self)
                let vb = UnsafeRawPointer(pb.base + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(d.base + i).storeBytes(of: f(va, vb), as: SIMD8<Float>.self)
                i += 8
            }
            if i < hi {
                var va = SIMD8<Float>(repeating: 0), vb = SIMD8<Float>(repeating: 0)
                for j in 0..<(hi - i) { va[j] = pa.base[i + j]; vb[j] = pb.base[i + j] }
                let r = f(va, vb)
                for j in 0..<(hi - i) { d.base[i + j] = r[j] }
            }
        }
    }

    /// `x[i] = f(x[i])` for every element (copy-on-write if `x`'s storage is shared).
    @inline(__always)
    static func mapInPlace(_ x: inout Tensor, cost: Int, _ f: @Sendable (SIMD8<Float>) -> SIMD8<Float>) {
        x.data.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress, p.count > 0 else { return }
            map8(UnsafePointer(base), base, count: p.count, cost: cost, f)
        }
    }
}

/// `UnsafeMutablePointer` is not `Sendable`; kernels that split disjoint output ranges
/// across `concurrentPerform` iterations wrap their base pointer in this box.
/// Safety argument lives at each use site: every iteration writes a disjoint range.
struct SendablePointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Read-only counterpart of `SendablePointer`.
struct SendableConstPointer<T>: @unchecked Sendable {
    let base: UnsafePointer<T>
    init(_ base: UnsafePointer<T>) { self.base = base }
}

extension Tensor {
    /// A tensor of `shape` whose storage is filled by `body` through a raw pointer,
    /// without zero-initialising first. `body` must write every element.
    @inline(__always)
    public static func uninitialized(_ shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        let n = shape.reduce(1, *)
        let data = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            body(buf)
            initialized = n
        }
        return Tensor(shape: shape, data: data)
    }
}
