import Dispatch

/// Monotonic milliseconds and sample statistics, shared by the CLI, the services and both
/// benchmarks.
public enum Timing {
    public static func nowMs() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    /// Median of `samples` (mean of the two middle values for an even count); 0 if empty.
    public static func median(_ samples: [Double]) -> Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
