import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// The images a command line names: files, directories (their regular files, not
/// recursive, as segment-anything's amg.py lists a folder) and globs (`"frames/*.jpg"`,
/// expanded here when the shell did not). Files are told apart by content, never by name:
/// a file named directly must be an image (the error names it and what was seen); a file
/// found in a directory or by a glob that is not PNG/JPEG/WebP is skipped with a note.
public struct InputSet: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var path: String
        public var format: ImageFormat
        /// Per-image output name under `--out-dir`: the file name without its extension
        /// (amg.py's rule), or the whole file name when two inputs share a stem.
        public var stem: String
    }

    public struct Skipped: Sendable, Equatable {
        public var path: String
        public var reason: String
    }

    public var items: [Item]
    public var skipped: [Skipped]
    /// True when any argument was a directory or a glob, or there are several inputs:
    /// outputs then go per image under `--out-dir`.
    public var isBatch: Bool

    /// Bytes read to tell the format: every magic number Segflow knows fits.
    static let sniffLength = 64

    public static func isGlob(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }

    /// How directory entries and glob matches are ordered (named files keep their order).
    public enum Order: Sendable {
        /// By name, byte for byte (`ls`; what segment-anything's scripts see).
        case name
        /// NaturalOrder: frame2 before frame10 — the order of a video's frames.
        case natural

        func sorted(_ names: [String]) -> [String] {
            switch self {
            case .name: names.sorted()
            case .natural: names.sorted(by: NaturalOrder.areInIncreasingOrder)
            }
        }
    }

    /// Resolves `arguments` in order (directory entries and glob matches sorted by `order`);
    /// an argument that matches nothing, or a resolved set with no image, is an error.
    /// A file named twice is one input, unless `keepDuplicates` (frames of a sequence,
    /// where showing a frame twice is meaningful).
    public static func resolve(_ arguments: [String], order: Order = .name, keepDuplicates: Bool = false) throws(PipelineError) -> InputSet {
        guard !arguments.isEmpty else { throw .badArgument("give at least one input image, directory or glob") }
        var found: [(path: String, format: ImageFormat)] = []
        var skipped: [Skipped] = []
        var batch = arguments.count > 1
        var seen = Set<String>()
        func add(_ path: String, format: ImageFormat) {
            guard seen.insert(path).inserted || keepDuplicates else { return }
            found.append((path, format))
        }
        for arg in arguments {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) {
                if isDir.boolValue {
                    batch = true
                    let names: [String]
                    do { names = try FileManager.default.contentsOfDirectory(atPath: arg) } catch {
                        throw .unreadableFile(path: arg, reason: "cannot list the directory: \((error as NSError).localizedDescription)")
                    }
                    for name in order.sorted(names) where !name.hasPrefix(".") {
                        let path = (arg as NSString).appendingPathComponent(name)
                        guard isRegularFile(path) else { continue }
                        switch sniff(path) {
                        case let .success(format): add(path, format: format)
                        case let .failure(reason): skipped.append(Skipped(path: path, reason: reason.description))
                        }
                    }
                } else {
                    switch sniff(arg) {
                    case let .success(format): add(arg, format: format)
                    case let .failure(reason): throw .unreadableFile(path: arg, reason: reason.description)
                    }
                }
            } else if isGlob(arg) {
                batch = true
                let matches = order.sorted(try glob(arg))
                guard !matches.isEmpty else { throw .badArgument("no file matches \(arg)") }
                for path in matches where isRegularFile(path) {
                    switch sniff(path) {
                    case let .success(format): add(path, format: format)
                    case let .failure(reason): skipped.append(Skipped(path: path, reason: reason.description))
                    }
                }
            } else {
                throw .unreadableFile(path: arg, reason: "no such file or directory")
            }
        }
        guard !found.isEmpty else {
            let notes = skipped.prefix(3).map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
            throw .badArgument("no PNG, JPEG or WebP image in \(arguments.joined(separator: " "))" + (notes.isEmpty ? "" : " (\(notes))"))
        }
        return InputSet(items: stems(found), skipped: skipped, isBatch: batch)
    }

    /// amg.py's output name (`splitext(basename)`); inputs sharing a stem keep their whole
    /// file name, and same-named files from different directories get a numeric suffix.
    static func stems(_ found: [(path: String, format: ImageFormat)]) -> [Item] {
        let base = found.map { (($0.path as NSString).lastPathComponent as NSString).deletingPathExtension }
        var counts: [String: Int] = [:]
        for b in base { counts[b, default: 0] += 1 }
        var used = Set<String>()
        var items: [Item] = []
        for (i, f) in found.enumerated() {
            var stem = counts[base[i]]! > 1 ? (f.path as NSString).lastPathComponent : base[i]
            if stem.isEmpty { stem = "image" }
            var candidate = stem, n = 2
            while !used.insert(candidate).inserted { candidate = "\(stem)-\(n)"; n += 1 }
            items.append(Item(path: f.path, format: f.format, stem: candidate))
        }
        return items
    }

    static func isRegularFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    /// The format from the first bytes, or why the file is not an input (the decoder's own
    /// message, which names well-known formats it does not read: "… GIF").
    static func sniff(_ path: String) -> Result<ImageFormat, Reason> {
        guard let handle = FileHandle(forReadingAtPath: path) else { return .failure(Reason("not readable")) }
        defer { try? handle.close() }
        let prefix = [UInt8]((try? handle.read(upToCount: sniffLength)) ?? Data())
        if let format = ImageFormat.detect(prefix) { return .success(format) }
        do {
            _ = try ImageDecoder.header(prefix)
            return .failure(Reason("not a PNG, JPEG or WebP image"))
        } catch { return .failure(Reason("\(error)")) }
    }

    struct Reason: Error, CustomStringConvertible {
        var description: String
        init(_ s: String) { description = s }
    }

    /// POSIX glob(3), sorted; a pattern with no match gives [].
    static func glob(_ pattern: String) throws(PipelineError) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        let rc = Glibc.glob(pattern, 0, nil, &g)
        if rc == GLOB_NOMATCH { return [] }
        guard rc == 0 else { throw .badArgument("cannot expand \(pattern) (glob error \(rc))") }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}

extension InputSet {
    /// One note per skipped file, for stderr.
    public var skipNotes: [String] { skipped.map { "segflow: skipping \($0.path): \($0.reason)" } }
}

extension InputSet {
    /// Whether these arguments name several images (several arguments, a directory or an
    /// unexpanded glob), judged without reading any file: for option validation.
    public static func namesSeveral(_ arguments: [String]) -> Bool {
        arguments.count > 1 || arguments.contains { arg in
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) { return isDir.boolValue }
            return isGlob(arg)
        }
    }
}
