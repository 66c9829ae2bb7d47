import Foundation

/// Where Segflow keeps its files: `$SEGFLOW_HOME`, else `$XDG_CACHE_HOME/segflow`, else
/// `~/.cache/segflow`. Deploy/fetch-litemedsam.sh uses the same rule.
public enum SegflowPaths {
    public static func home(environment env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let h = env["SEGFLOW_HOME"], !h.isEmpty { return URL(fileURLWithPath: h) }
        let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.cache")
        return URL(fileURLWithPath: cache).appendingPathComponent("segflow")
    }

    public static func liteMedSAMCheckpoint(environment env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        home(environment: env).appendingPathComponent("weights/lite_medsam.pth")
    }
}
