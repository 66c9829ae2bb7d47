import Foundation

/// Output files are checked before any compute: a missing parent directory is created, and
/// one that cannot be (or a path that is a directory) is an error naming it.
public enum OutputPaths {
    public static func prepare(_ paths: [String?]) throws(PipelineError) {
        for case let path? in paths {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                throw .badArgument("output \(path) is a directory; give a file name")
            }
            let parent = (path as NSString).deletingLastPathComponent
            guard !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) else { continue }
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw .badArgument("cannot create the output directory \(parent): \((error as NSError).localizedDescription)")
            }
        }
    }
}
