import ArgumentParser
import ServiceCommandLine
import ServiceKit
import Messaging
import Tensor

@main
enum Entry {
    static func main() async {
        // Must run before any BLAS call: may replace the process with one whose
        // OpenBLAS loaded the right core (see BLASRuntime).
        BLASRuntime.selectCoreOrReexec()
        StartupTrace.mark("main: OpenBLAS core \(BLASRuntime.loadedCoreName)")
        // Reuse freed tensor storage instead of mmap/munmap per op (page faults).
        TensorRuntime.configureAllocator()
        let command: ParsableCommand
        do { command = try SegflowCommand.parseAsRoot() } catch { SegflowCommand.exit(withError: error) }
        // 64 for usage errors wherever they are found, 1 for run-time failures.
        await CommandErrors.run(command, root: SegflowCommand.self)
    }
}
