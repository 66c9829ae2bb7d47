import ArgumentParser
import ServiceKit

extension AsyncParsableCommand {
    /// The service executables' entry point: pick the OpenBLAS core first (this may
    /// re-execute the process; OpenBLAS reads OPENBLAS_CORETYPE when it loads), then parse
    /// and run. `--help` and `help` parse to ArgumentParser's own command, not this one.
    public static func serviceMain() async {
        BLASRuntime.selectCoreOrReexec()
        do {
            var command = try parseAsRoot()
            if var service = command as? Self { try await service.run() } else { try command.run() }
        } catch { exit(withError: error) }
    }
}

extension CommonServiceOptions {
    /// The consumer group: `--group`, else SEGFLOW_GROUP, else the service's default.
    public func group(default fallback: String) -> String { group ?? environment["SEGFLOW_GROUP"] ?? fallback }
}
