import ServiceKit

@main
enum Entry {
    static func main() async {
        // Must run before any BLAS call: may replace the process with one whose
        // OpenBLAS loaded the right core (see BLASRuntime).
        BLASRuntime.selectCoreOrReexec()
        await SegflowCommand.main()
    }
}
