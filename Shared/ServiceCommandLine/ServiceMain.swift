import ArgumentParser
import Logging
import Messaging
import ServiceKit
import Serving
import Tensor

extension AsyncParsableCommand {
    /// The service executables' entry point: pick the OpenBLAS core first (this may
    /// re-execute the process; OpenBLAS reads OPENBLAS_CORETYPE when it loads), then parse
    /// and run. `--help` and `help` parse to ArgumentParser's own command, not this one.
    public static func serviceMain() async {
        BLASRuntime.selectCoreOrReexec()
        ParentWatch.startIfRequested()
        do {
            var command = try parseAsRoot()
            if var service = command as? Self { try await service.run() } else { try command.run() }
        } catch { exit(withError: error) }
    }
}

extension CommonServiceOptions {
    /// The consumer group: `--group`, else SEGFLOW_GROUP, else the service's default.
    public func group(default fallback: String) -> String { group ?? environment["SEGFLOW_GROUP"] ?? fallback }

    /// A service's options with `--topic-prefix` and the group applied.
    public func configured<O: ServiceTopicOptions>(_ options: O) -> O {
        var o = options
        o.topics = topics
        o.groupID = group(default: o.groupID)
        if let dir = stateDir ?? environment["SEGFLOW_STATE_DIR"] { o.stateDirectory = dir.isEmpty ? nil : dir }
        return o
    }

    /// Logs what a service starts with: the OpenBLAS core and the GEMM precision.
    public func logStart(_ logger: Logger) {
        logger.info("starting", metadata: [LogKey.blasCore: "\(BLASRuntime.selectionSummary)",
                                           LogKey.precision: "\(TensorRuntime.precision.rawValue)"])
    }
}
