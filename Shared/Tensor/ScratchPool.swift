import Foundation
import Synchronization

/// Reusable scratch memory for the GEMM and attention kernels' per-call buffers (bf16
/// copies of activations, attention score blocks).
///
/// Allocating them fresh on every call cost the kernel page faults and page zeroing of
/// every byte, every call: glibc serves big blocks with mmap and returns them on free, so
/// each call touched new pages. Measured with SEGFLOW_GEMM_PROFILE=1 on the SAM 2 Hiera-T
/// bf16 encoder: the stage-1 MLP's second GEMM (65536×96×384, a 50 MB bf16 copy of its
/// input) ran at 48 GFLOP/s against 151 GFLOP/s for the first (65536×384×96, 12.5 MB).
///
/// Buffers go back to the pool after use and are handed out again to any request they
/// fit (smallest fit first). The pool keeps at most `retainedBytesLimit` bytes; past it
/// the smallest idle buffers are freed. Thread-safe: kernels run inside parallel loops.
public enum ScratchPool {
    /// Idle bytes kept for reuse: `SEGFLOW_SCRATCH_POOL_MB` (0 frees every buffer after
    /// use, as before the pool — for A/B runs and tight memory), default 192 MiB (the
    /// largest per-call scratch in the shipped models is Hiera-T's 50 MB activation copy
    /// plus attention's 32 MiB score block).
    public static let retainedBytesLimit: Int = {
        if let v = getenv("SEGFLOW_SCRATCH_POOL_MB").map({ String(cString: $0) }), let mb = Int(v), mb >= 0 { return mb << 20 }
        return 192 << 20
    }()

    struct Idle: @unchecked Sendable {
        var pointer: UnsafeMutableRawPointer
        var bytes: Int
    }
    static let idle = Mutex<[Idle]>([])

    /// Runs `body` with at least `count` elements of uninitialised scratch.
    @inline(__always)
    public static func with<T, R>(_ type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) throws -> R) rethrows -> R {
        let bytes = max(1, count) * MemoryLayout<T>.stride
        let buffer = acquire(bytes: bytes)
        defer { release(buffer) }
        return try body(buffer.pointer.bindMemory(to: T.self, capacity: max(1, count)))
    }

    static func acquire(bytes: Int) -> Idle {
        let reused = idle.withLock { list -> Idle? in
            var best: Int? = nil
            for (i, b) in list.enumerated() where b.bytes >= bytes && (best == nil || b.bytes < list[best!].bytes) { best = i }
            return best.map { list.remove(at: $0) }
        }
        if let reused { return reused }
        return Idle(pointer: UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes: bytes)
    }

    static func release(_ buffer: Idle) {
        let freed = idle.withLock { list -> [Idle] in
            list.append(buffer)
            var total = list.reduce(0) { $0 + $1.bytes }
            var evicted: [Idle] = []
            while total > retainedBytesLimit, let i = list.indices.min(by: { list[$0].bytes < list[$1].bytes }) {
                total -= list[i].bytes
                evicted.append(list.remove(at: i))
            }
            return evicted
        }
        for b in freed { b.pointer.deallocate() }
    }

    /// Idle bytes held now (tests, diagnostics).
    public static var retainedBytes: Int { idle.withLock { $0.reduce(0) { $0 + $1.bytes } } }
}
