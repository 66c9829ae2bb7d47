import Dispatch
import Foundation

/// Monotonic milliseconds and sample statistics, shared by the CLI, the services and both
/// benchmarks.
public enum Timing {
    public static func nowMs() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    /// Wall-clock milliseconds since the Unix epoch (the wire's `*_at_ms` fields).
    public static func wallMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Median of `samples` (mean of the two middle values for an even count); 0 if empty.
    public static func median(_ samples: [Double]) -> Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
