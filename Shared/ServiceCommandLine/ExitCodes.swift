import ArgumentParser
import Backends
import Foundation
import Pipeline

/// One exit-code convention for every Segflow executable, ArgumentParser's: 64
/// (`EX_USAGE`, `ExitCode.validationFailure`) when the command line is wrong — a bad
/// option value, an unknown model, a missing checkpoint, an input file that is not there
/// or not an image — whether ArgumentParser or the command found it; 1 when a valid
/// request failed at run time (a service error answer, a timeout, Kafka, a write error).
public enum CommandErrors {
    /// The message of a usage error, or nil for a run-time failure.
    public static func usageMessage(_ error: Error) -> String? {
        switch error {
        case let e as ValidationError: e.message
        case let e as PipelineError: e.description
        case let e as RegistryError: e.description
        default: nil
        }
    }

    /// Runs `command` (already parsed) and exits with the convention above. Usage errors
    /// print the subcommand's own usage line (a ValidationError thrown from `run()` would
    /// otherwise print the root command's).
    public static func run<Root: ParsableCommand>(_ command: ParsableCommand, root: Root.Type) async -> Never {
        do {
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else {
                var command = command
                try command.run()
            }
            root.exit()
        } catch {
            guard let message = usageMessage(error) else { root.exit(withError: error) }
            let sub = type(of: command)
            let path = sub == root ? root.configuration.commandName ?? ""
                : [root.configuration.commandName ?? "", sub.configuration.commandName ?? ""].joined(separator: " ")
            FileHandle.standardError.write(Data("""
                Error: \(message)
                Usage: \(root.usageString(for: sub))
                  See '\(path) --help' for more information.

                """.utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        }
    }
}
