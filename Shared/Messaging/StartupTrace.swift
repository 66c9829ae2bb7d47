import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the time of a run goes, for finding start-up costs: with `SEGFLOW_TRACE=1` every
/// `mark` prints one line to stderr, `segflow-trace +<ms since the process started> <event>`
/// (the process's start is the kernel's, /proc/self/stat, so exec and any OpenBLAS re-exec
/// count). Off by default; a disabled mark costs one Bool test.
public enum StartupTrace {
    public static let variable = "SEGFLOW_TRACE"
    public static let enabled: Bool = {
        let v = ProcessInfo.processInfo.environment[variable] ?? ""
        return !v.isEmpty && v != "0"
    }()

    /// Seconds since boot (CLOCK_BOOTTIME, the clock /proc/<pid>/stat's start time uses).
    static func bootSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The process's start, seconds since boot (field 22 of /proc/self/stat, in clock ticks);
    /// falls back to the first mark.
    static let processStart: Double = {
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after the command name start at field 3 (state).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 19, let ticks = Double(fields[19]) {
                return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        return bootSeconds()
    }()

    /// Milliseconds since the process started.
    public static func elapsedMs() -> Double { (bootSeconds() - processStart) * 1000 }

    public static func mark(_ event: @autoclosure () -> String) {
        guard enabled else { return }
        let line = String(format: "segflow-trace +%7.1f ms %@\n", elapsedMs(), event())
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }
}
