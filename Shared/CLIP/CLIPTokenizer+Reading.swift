import Foundation

extension CLIPTokenizer {
    /// File name of the merge list, as OpenAI CLIP and open_clip ship it.
    public static let vocabularyFileName = "bpe_simple_vocab_16e6.txt.gz"
    /// sha256 of the bundled copy (identical to open_clip_torch 3.3.0's).
    public static let vocabularySHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

    /// Reads a gzip-compressed merge list (bpe_simple_vocab_16e6.txt.gz or a compatible file).
    public init(vocabularyURL url: URL) throws(CLIPError) {
        let compressed: Data
        do { compressed = try Data(contentsOf: url) } catch {
            throw .vocabularyUnreadable(reason: "cannot read '\(url.path)': \(error.localizedDescription)")
        }
        let bytes = try Gzip.decompress([UInt8](compressed))
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .vocabularyUnreadable(reason: "'\(url.path)' is not UTF-8 after gunzip")
        }
        try self.init(mergesText: text)
    }

    /// The tokenizer over the vocabulary bundled with the CLIP module (Shared/CLIP/Resources).
    /// Parsed once per process and shared (the tables are immutable).
    public init() throws(CLIPError) {
        self = try Self.bundled.get()
    }

    private static let bundled: Result<CLIPTokenizer, CLIPError> = {
        guard let url = bundledVocabularyURL() else {
            let tried = vocabularySearchPaths().map(\.path).joined(separator: ", ")
            return .failure(.vocabularyUnreadable(reason: "\(vocabularyFileName) not found (looked in: \(tried))"))
        }
        do throws(CLIPError) { return .success(try CLIPTokenizer(vocabularyURL: url)) } catch { return .failure(error) }
    }()

    /// Where the bundled merge list is looked for, in order. SwiftPM's generated
    /// `Bundle.module` calls `fatalError` when the resource bundle is missing (e.g. an
    /// executable copied without its `Segflow_CLIP.resources` directory); a text-encoder
    /// service must report that instead, so the lookup is done here:
    /// 1. `$SEGFLOW_CLIP_VOCAB` (a file path), when set;
    /// 2. `Segflow_CLIP.resources/` next to the running executable (SwiftPM's layout for
    ///    `swift build` products and test bundles; install it alongside the binary);
    /// 3. `${SEGFLOW_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/segflow}/clip/`;
    /// 4. this source file's `Resources/` directory (running from a checkout).
    public static func vocabularySearchPaths() -> [URL] {
        let env = ProcessInfo.processInfo.environment
        var paths: [URL] = []
        if let explicit = env["SEGFLOW_CLIP_VOCAB"], !explicit.isEmpty { paths.append(URL(fileURLWithPath: explicit)) }
        let bundleName = "Segflow_CLIP.resources"
        paths.append(Bundle.main.bundleURL.appendingPathComponent(bundleName).appendingPathComponent(vocabularyFileName))
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            paths.append(exe.appendingPathComponent(bundleName).appendingPathComponent(vocabularyFileName))
        }
        let home: URL
        if let h = env["SEGFLOW_HOME"], !h.isEmpty { home = URL(fileURLWithPath: h) }
        else if let x = env["XDG_CACHE_HOME"], !x.isEmpty { home = URL(fileURLWithPath: x).appendingPathComponent("segflow") }
        else { home = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/segflow") }
        paths.append(home.appendingPathComponent("clip").appendingPathComponent(vocabularyFileName))
        paths.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources").appendingPathComponent(vocabularyFileName))
        return paths
    }

    /// The first existing file among `vocabularySearchPaths()`.
    public static func bundledVocabularyURL() -> URL? {
        vocabularySearchPaths().first { FileManager.default.fileExists(atPath: $0.path) }
    }
}
