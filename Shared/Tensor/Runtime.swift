#if canImport(Glibc)
import Glibc
#endif

/// Process-wide settings for the tensor runtime, applied once at process start.
public enum TensorRuntime {
    /// Tunes glibc malloc for a workload that allocates and frees multi-MB tensors per op.
    ///
    /// By default glibc serves every block above 128 KiB–32 MiB with a fresh `mmap` and
    /// returns it with `munmap` on free, so each op's output costs a page fault and a
    /// kernel page clear per 4 KiB (≈7% of LiteMedSAM's encoder time in `clear_page`,
    /// plus the fault handling). Here all blocks come from the main sbrk heap (one arena,
    /// no mmap) and the heap top is only returned to the OS beyond 512 MiB of slack, so
    /// freed tensor storage is reused by the next op without touching the kernel.
    ///
    /// Call before any large allocation, from the executable's entry point. Idempotent.
    /// Library code and tests do not call it (behaviour is then glibc's default; only
    /// speed differs).
    public static func configureAllocator() {
        #if canImport(Glibc)
        // One arena: worker threads' arenas would be 64 MiB mmap'd heaps that fall back
        // to per-block mmap for bigger tensors (a 64 MiB MBConv activation at 256²).
        // <malloc.h> is not part of the Glibc module; look `mallopt` up at run time.
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(sym, to: MallOpt.self)
        // Values from <malloc.h>.
        let (trimThreshold, topPad, mmapMax, arenaMax): (Int32, Int32, Int32, Int32) = (-1, -2, -4, -8)
        _ = mallopt(arenaMax, 1)
        _ = mallopt(mmapMax, 0)
        _ = mallopt(trimThreshold, 512 << 20)
        _ = mallopt(topPad, 16 << 20)
        #endif
    }
}
