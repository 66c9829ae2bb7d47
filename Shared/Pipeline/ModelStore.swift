import Foundation
import SAM

public enum PipelineError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownModel(String)
    case missingCheckpoint(model: String, path: String?)
    case badArgument(String)
    case unreadableFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownModel(m):
            "unknown model '\(m)'; choose one of: \(SamModelKind.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .missingCheckpoint(m, nil):
            "model \(m) needs a checkpoint: pass --checkpoint /path/to/\(SamModelKind(rawValue: m)?.officialCheckpointName ?? "weights")"
        case let .missingCheckpoint(m, p?):
            "checkpoint for \(m) not found at \(p)" + (m == SamModelKind.liteMedSAM.rawValue ? " (run Deploy/setup.sh to fetch it)" : "")
        case let .badArgument(s): s
        case let .unreadableFile(p, r): "cannot read \(p): \(r)"
        }
    }
}

/// Resolves model names and checkpoint paths and loads models once per process.
public enum ModelStore {
    public static func kind(named name: String) throws(PipelineError) -> SamModelKind {
        guard let k = SamModelKind(rawValue: name.lowercased()) else { throw .unknownModel(name) }
        return k
    }

    /// The checkpoint to use: the given path, else (LiteMedSAM only) the cached one.
    public static func checkpoint(for kind: SamModelKind, given: String?) throws(PipelineError) -> URL {
        let url: URL
        if let given {
            url = URL(fileURLWithPath: (given as NSString).expandingTildeInPath)
        } else if kind == .liteMedSAM {
            url = SegflowPaths.liteMedSAMCheckpoint()
        } else {
            throw .missingCheckpoint(model: kind.rawValue, path: nil)
        }
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw .missingCheckpoint(model: kind.rawValue, path: url.path)
        }
        return url
    }

    public static func load(_ kind: SamModelKind, checkpoint: String?) throws -> Sam {
        try Sam.load(kind, checkpoint: try self.checkpoint(for: kind, given: checkpoint))
    }
}
