import ServiceKit
import Tensor

@main
enum Entry {
    static func main() async {
        // Must run before any BLAS call: may replace the process with one whose
        // OpenBLAS loaded the right core (see BLASRuntime).
        BLASRuntime.selectCoreOrReexec()
        // Reuse freed tensor storage instead of mmap/munmap per op (page faults).
        TensorRuntime.configureAllocator()
        await SegflowCommand.main()
    }
}
