import Tensor

/// Where a tensor's elements live inside the checkpoint bytes: a strided view (in
/// elements of `dtype`) starting at an absolute byte offset. Built only through
/// `validated(...)`, which proves every addressed element lies inside the storage.
struct TensorLayout: Sendable {
    let dtype: DType
    let shape: [Int]
    let strides: [Int]
    /// Absolute byte offset of element [0, 0, …] in the file.
    let byteOffset: Int
    let elementCount: Int

    /// Views that repeat storage elements (stride 0, e.g. `expand`) may address more
    /// elements than the storage holds; materialising those is capped so a tiny
    /// hostile file cannot demand gigabytes. Ordinary tensors are bounded by the file.
    static let maxBroadcastElements = 1 << 24

    /// Checks `shape`/`strides`/`storageOffset` against a storage of
    /// `storageElements` elements starting at `storageByteOffset`.
    /// ref: torch/_utils.py _rebuild_tensor (`t.set_(storage, offset, size, stride)`),
    ///      whose bounds check lives in aten `checkSetStorage` / `computeStorageNbytes`.
    static func validated(name: String, dtype: DType, shape: [Int], strides: [Int], storageOffset: Int,
                          storageElements: Int, storageByteOffset: Int) throws(CheckpointError) -> TensorLayout {
        guard shape.count == strides.count else {
            throw .invalidTensorLayout(tensor: name, reason: "shape \(shape) and strides \(strides) differ in rank")
        }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), storageOffset >= 0 else {
            throw .invalidTensorLayout(tensor: name, reason: "negative size, stride or offset (shape \(shape), strides \(strides), offset \(storageOffset))")
        }
        var count = 1
        for d in shape {
            let (m, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .tensorTooLarge(tensor: name, shape: shape) }
            count = m
        }
        let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !bytesOverflow else { throw .tensorTooLarge(tensor: name, shape: shape) }
        _ = bytes
        if count > 0 {
            // Highest element index addressed: offset + Σ (size_i - 1) * stride_i.
            var last = storageOffset
            for (size, stride) in zip(shape, strides) {
                let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, o2) = last.addingReportingOverflow(step)
                guard !o1, !o2 else { throw .tensorTooLarge(tensor: name, shape: shape) }
                last = sum
            }
            guard last < storageElements else {
                throw .invalidTensorLayout(
                    tensor: name,
                    reason: "shape \(shape) with strides \(strides) at offset \(storageOffset) needs \(last + 1) element(s), storage has \(storageElements)")
            }
            guard count <= max(storageElements, maxBroadcastElements) else {
                throw .tensorTooLarge(tensor: name, shape: shape)
            }
        } else if storageOffset > storageElements {
            throw .invalidTensorLayout(tensor: name, reason: "storage offset \(storageOffset) beyond storage of \(storageElements) element(s)")
        }
        // storageOffset ≤ storageElements here, and the storage itself is in the file.
        return TensorLayout(dtype: dtype, shape: shape, strides: strides,
                            byteOffset: storageByteOffset + storageOffset * dtype.byteSize, elementCount: count)
    }

    /// Row-major dense, ignoring the strides of size-1 dimensions (torch keeps arbitrary
    /// values there, e.g. after `unsqueeze` or `permute`).
    var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// Converts the view to a dense row-major Float32 tensor.
    func materialize(from file: UnsafeRawBufferPointer) -> Tensor {
        let n = elementCount
        guard n > 0, let base = file.baseAddress else { return Tensor(shape: shape, data: []) }
        let src = base + byteOffset
        let data = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            let dst = out.baseAddress!
            if isContiguous {
                Self.convert(src, stride: 1, count: n, dtype: dtype, into: dst)
            } else {
                // Odometer over all but the innermost dimension; the innermost is one strided run.
                let rank = shape.count
                let inner = shape[rank - 1]
                let innerStride = strides[rank - 1]
                var index = [Int](repeating: 0, count: rank - 1)
                var written = 0
                var elementOffset = 0
                while written < n {
                    Self.convert(src + elementOffset * dtype.byteSize, stride: innerStride, count: inner,
                                 dtype: dtype, into: dst + written)
                    written += inner
                    var d = rank - 2
                    while d >= 0 {
                        index[d] += 1
                        elementOffset += strides[d]
                        if index[d] < shape[d] { break }
                        elementOffset -= strides[d] * shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, data: data)
    }

    /// Converts `count` elements spaced `stride` elements apart (unaligned reads).
    private static func convert(_ src: UnsafeRawPointer, stride: Int, count: Int, dtype: DType,
                                into dst: UnsafeMutablePointer<Float>) {
        let step = stride * dtype.byteSize
        switch dtype {
        case .f32:
            if stride == 1 {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
            } else {
                for i in 0 ..< count { dst[i] = src.loadUnaligned(fromByteOffset: i * step, as: Float.self) }
            }
        case .f64:
            for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * step, as: Double.self)) }
        case .f16:
            for i in 0 ..< count { dst[i] = floatFromHalfBits(src.loadUnaligned(fromByteOffset: i * step, as: UInt16.self)) }
        case .bf16:
            for i in 0 ..< count { dst[i] = floatFromBFloat16Bits(src.loadUnaligned(fromByteOffset: i * step, as: UInt16.self)) }
        case .i64:
            for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * step, as: Int64.self)) }
        case .i32:
            for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * step, as: Int32.self)) }
        case .i16:
            for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * step, as: Int16.self)) }
        case .i8:
            for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * step, as: Int8.self)) }
        case .u8:
            for i in 0 ..< count { dst[i] = Float(src.load(fromByteOffset: i * step, as: UInt8.self)) }
        case .bool:
            for i in 0 ..< count { dst[i] = src.load(fromByteOffset: i * step, as: UInt8.self) != 0 ? 1 : 0 }
        }
    }
}
