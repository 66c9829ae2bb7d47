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
    static func uninitialized(_ shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        let n = shape.reduce(1, *)
        let data = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            body(buf)
            initialized = n
        }
        return Tensor(shape: shape, data: data)
    }
}
