import COpenBLAS
import Foundation
import Pipeline
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// Which OpenBLAS core is fastest on this machine, measured once and cached.
///
/// OpenBLAS picks its kernels from CPUID, and its pick is not always the fastest (Debian's
/// 0.3.21 runs Cooperlake on the build machines' AMD EPYC, where SkylakeX measured faster
/// in one run). The core is chosen when the library loads, so each candidate is measured
/// in a child process started with `OPENBLAS_CORETYPE` set: the SGEMM correctness check
/// (against a Double reference) and then SGEMM at a ViT-sized shape. The winner is kept
/// in a small JSON file keyed by CPU model, CPU flags and OpenBLAS version, so another
/// machine (or a library upgrade) measures again; every later start reads the file and
/// re-executes with the winner through `BLASRuntime`'s existing re-exec.
///
/// A user's `OPENBLAS_CORETYPE` is always respected (nothing is measured then);
/// `SEGFLOW_BLAS_MEASURE=0` turns measuring off (the library's choice is kept, and a
/// generic core is still replaced as before).
public enum BLASCoreChoice {
    /// "0" disables measuring and the cache.
    public static let measureVariable = "SEGFLOW_BLAS_MEASURE"
    /// The cache file's path (default: `SegflowPaths.home()/blas-core.json`).
    public static let cacheVariable = "SEGFLOW_BLAS_CACHE"
    /// Internal: a child that measures the loaded core, prints one JSON line and exits.
    static let probeVariable = "SEGFLOW_BLAS_PROBE"
    /// Set on the re-exec: how the core was chosen ("cache", "measured").
    public static let sourceVariable = "SEGFLOW_BLAS_CORE_SOURCE"

    /// One probe child's bound; past it the child gets SIGKILL and its core is dropped.
    public static let childBound: Duration = .seconds(30)
    /// How long a start waits for another process that is measuring (the lock) before
    /// going on with the library's choice.
    public static let lockBound: Duration = .seconds(60)
    /// A candidate replaces OpenBLAS's own choice only if it is at least this much faster:
    /// on the shared 2-core build machine, with other jobs running, one measurement ranked
    /// Haswell 96, SkylakeX 91, Cooperlake 78 GFLOP/s by medians — an AVX2 core "beating"
    /// AVX-512 ones by 23 %, which quiet runs contradict. Best-of-all-reps (below) plus
    /// this margin keeps such noise from displacing the library's pick.
    public static let minimumGain = 0.10
    /// A ViT-B linear layer over 64×64 tokens (LiteMedSAM's and SAM's encoder shapes).
    public static let probeShape = (m: 4096, n: 768, k: 768)
    /// Timed SGEMMs per child (after one warm-up); the child reports each.
    public static let probeRepetitions = 5
    /// Children per candidate, interleaved (A B C A B C A B C) so load changes hit all alike.
    public static let rounds = 3
    static let formatVersion = 2  // 2: best-call GFLOP/s, 3 rounds, 10 % margin

    // MARK: Key, cache file

    public struct Key: Codable, Sendable, Equatable {
        public var cpuModel: String
        /// FNV-1a 64 of the sorted /proc/cpuinfo flags (the whole list decides the kernels).
        public var cpuFlags: String
        public var openBLASVersion: String

        public init(cpuModel: String, cpuFlags: String, openBLASVersion: String) {
            self.cpuModel = cpuModel; self.cpuFlags = cpuFlags; self.openBLASVersion = openBLASVersion
        }
    }

    public struct Measurement: Codable, Sendable, Equatable {
        public var core: String
        /// What the child's library actually ran (OpenBLAS silently falls back for a core it cannot run).
        public var loadedCore: String?
        /// GFLOP/s of the fastest timed SGEMM of every round: interference from other work
        /// only ever slows a call down, so the best call is the least disturbed estimate of
        /// what the core can do (the median is kept for the record).
        public var gflops: Double?
        public var medianGflops: Double?
        public var checkPassed: Bool
        public var worstRelativeError: Double?
        public var error: String?

        public init(core: String, loadedCore: String?, gflops: Double?, medianGflops: Double? = nil, checkPassed: Bool,
                    worstRelativeError: Double?, error: String?) {
            self.core = core; self.loadedCore = loadedCore; self.gflops = gflops; self.medianGflops = medianGflops; self.checkPassed = checkPassed
            self.worstRelativeError = worstRelativeError; self.error = error
        }

        public var usable: Bool {
            error == nil && checkPassed && gflops != nil && loadedCore?.lowercased() == core.lowercased()
        }
    }

    public struct CacheFile: Codable, Sendable, Equatable {
        public var formatVersion: Int
        public var key: Key
        public var chosenCore: String
        /// The core OpenBLAS picks by itself on this machine.
        public var libraryCore: String
        public var measurements: [Measurement]
        public var measuredAt: String
        public var shape: [Int]
    }

    /// A cache record of a measurement made now.
    public static func cacheFile(key: Key, chosenCore: String, libraryCore: String, measurements: [Measurement]) -> CacheFile {
        CacheFile(formatVersion: formatVersion, key: key, chosenCore: chosenCore, libraryCore: libraryCore,
                  measurements: measurements, measuredAt: ISO8601DateFormatter().string(from: Date()),
                  shape: [probeShape.m, probeShape.n, probeShape.k])
    }

    public static func currentKey() -> Key {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String {
            guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
                  let colon = line.firstIndex(of: ":") else { return "" }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let flags = field("flags").split(separator: " ").map(String.init).sorted().joined(separator: " ")
        return Key(cpuModel: field("model name"), cpuFlags: fnv1a64(flags), openBLASVersion: openBLASVersion)
    }

    /// "0.3.21" from openblas_get_config() ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64";
    /// the core name in it is the running one, so only the version goes into the key).
    public static var openBLASVersion: String {
        guard let p = openblas_get_config() else { return "unknown" }
        let words = String(cString: p).split(separator: " ")
        return words.count > 1 ? String(words[1]) : String(cString: p)
    }

    static func fnv1a64(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    public static func cacheURL(environment env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let p = env[cacheVariable], !p.isEmpty { return URL(fileURLWithPath: p) }
        return SegflowPaths.home(environment: env).appendingPathComponent("blas-core.json")
    }

    public enum CacheRead: Equatable {
        case hit(CacheFile)
        /// Why the file cannot be used (missing is not a warning; the rest are).
        case missing
        case unusable(String)
    }

    public static func readCache(at url: URL, key: Key) -> CacheRead {
        guard let data = FileManager.default.contents(atPath: url.path) else { return .missing }
        let file: CacheFile
        do { file = try JSONDecoder().decode(CacheFile.self, from: data) } catch {
            return .unusable("\(url.path) is not a core-choice file (\(error)); measuring again")
        }
        guard file.formatVersion == formatVersion else {
            return .unusable("\(url.path) has format \(file.formatVersion), this segflow writes \(formatVersion); measuring again")
        }
        guard file.key == key else {
            return .unusable("\(url.path) was measured on another machine or OpenBLAS (\(file.key.cpuModel), OpenBLAS \(file.key.openBLASVersion)); measuring again")
        }
        guard !file.chosenCore.isEmpty, file.measurements.contains(where: { $0.core == file.chosenCore && $0.usable }) else {
            return .unusable("\(url.path) names no measured, checked core; measuring again")
        }
        return .hit(file)
    }

    /// Writes atomically (a reader never sees half a file).
    public static func writeCache(_ file: CacheFile, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(file).write(to: url, options: .atomic)
    }

    // MARK: Candidates and the choice

    /// OpenBLAS 0.3.21 cores whose SGEMM kernels this CPU can run, plus the library's own pick.
    public static func candidates(flags: Set<String>, libraryCore: String) -> [String] {
        let cpu = BLASRuntime.CPUFeatures(cpuinfoFlags: flags)
        var list: [String] = []
        if cpu.avx2 && cpu.fma { list.append("Haswell") }
        if cpu.avx512 { list.append("SkylakeX") }
        if cpu.avx512 && flags.contains("avx512_bf16") { list.append("Cooperlake") }
        if cpu.avx512 && flags.contains("amx_bf16") && flags.contains("avx512_fp16") { list.append("SapphireRapids") }
        if BLASRuntime.avx2Cores.contains(libraryCore.lowercased()) && !list.contains(where: { $0.lowercased() == libraryCore.lowercased() }) {
            list.append(libraryCore)
        }
        return list
    }

    /// The fastest usable core; OpenBLAS's own pick stays unless another is `minimumGain` faster.
    public static func choose(_ measurements: [Measurement], libraryCore: String) -> String? {
        let usable = measurements.filter(\.usable)
        guard let best = usable.max(by: { $0.gflops! < $1.gflops! }) else { return nil }
        if let own = usable.first(where: { $0.core.lowercased() == libraryCore.lowercased() }),
           best.gflops! < own.gflops! * (1 + minimumGain) {
            return own.core
        }
        return best.core
    }

    // MARK: The probe child

    struct ProbeReport: Codable {
        var loadedCore: String
        var seconds: [Double]
        var checkPassed: Bool
        var worstRelativeError: Double?
    }

    /// In a probe child (`SEGFLOW_BLAS_PROBE` set): measures, prints one JSON line, exits.
    /// "check" also runs the SGEMM correctness check. Returns in any other process.
    static func runProbeIfRequested() {
        guard let mode = ProcessInfo.processInfo.environment[probeVariable] else { return }
        var report = ProbeReport(loadedCore: BLASRuntime.loadedCoreName, seconds: [], checkPassed: true, worstRelativeError: nil)
        if mode == "check" {
            let checks = BLASDiagnostics.verifyGEMM()
            report.checkPassed = checks.allSatisfy(\.passed)
            report.worstRelativeError = checks.map(\.relativeError).max()
        }
        let (m, n, k) = probeShape
        var rng = SplitMix64(seed: 0xb1a5)
        let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        for rep in 0...probeRepetitions {
            let t0 = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if rep > 0 { report.seconds.append(s) }  // rep 0 warms up (thread start, page faults)
        }
        let line = (try? JSONEncoder().encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        FileHandle.standardOutput.write((line + "\n").data(using: .utf8)!)
        exit(0)
    }

    struct ProbeFailure: Error { var message: String }

    /// Runs one probe child for `core` (bounded by `childBound`, SIGKILL past it).
    static func probe(core: String, check: Bool, executable: String, environment: [String: String],
                      bound: Duration = childBound) -> Result<ProbeReport, ProbeFailure> {
        var env = environment
        env[BLASRuntime.coreTypeVariable] = core
        env[probeVariable] = check ? "check" : "time"
        if env[BLASRuntime.threadTimeoutVariable] == nil { env[BLASRuntime.threadTimeoutVariable] = BLASRuntime.preferredThreadTimeout }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = []
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return .failure(ProbeFailure(message: "cannot start \(executable): \(error)")) }
        let (boundSeconds, boundAtto) = bound.components
        let deadline = Date().addingTimeInterval(Double(boundSeconds) + Double(boundAtto) * 1e-18)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return .failure(ProbeFailure(message: "probe for \(core) did not finish within \(bound); killed"))
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        guard p.terminationStatus == 0 else { return .failure(ProbeFailure(message: "probe for \(core) exited with status \(p.terminationStatus)")) }
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let report = try? JSONDecoder().decode(ProbeReport.self, from: Data(line.utf8)) else {
            return .failure(ProbeFailure(message: "probe for \(core) printed no report"))
        }
        return .success(report)
    }

    /// Measures `cores` in `rounds` interleaved rounds of children (the check runs in the
    /// first child of each core).
    public static func measure(cores: [String], executable: String = "/proc/self/exe",
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               bound: Duration = childBound) -> [Measurement] {
        let (m, n, k) = probeShape
        let flop = 2.0 * Double(m * n * k)
        var seconds: [String: [Double]] = [:]
        var results: [String: Measurement] = Dictionary(uniqueKeysWithValues: cores.map {
            ($0, Measurement(core: $0, loadedCore: nil, gflops: nil, medianGflops: nil, checkPassed: false, worstRelativeError: nil, error: nil))
        })
        for round in 0..<rounds {
            for core in cores where results[core]!.error == nil {
                switch probe(core: core, check: round == 0, executable: executable, environment: environment, bound: bound) {
                case .failure(let why):
                    results[core]!.error = why.message
                case .success(let r):
                    results[core]!.loadedCore = r.loadedCore
                    if round == 0 {
                        results[core]!.checkPassed = r.checkPassed
                        results[core]!.worstRelativeError = r.worstRelativeError
                    }
                    seconds[core, default: []] += r.seconds
                }
            }
        }
        return cores.map { core in
            var r = results[core]!
            if let s = seconds[core]?.sorted(), !s.isEmpty {
                r.gflops = flop / s[0] / 1e9
                r.medianGflops = flop / s[s.count / 2] / 1e9
            }
            return r
        }
    }

    // MARK: The start-up decision

    public enum Resolution: Equatable {
        /// Use this core; `source` is "cache" or "measured".
        case use(core: String, source: String, warnings: [String])
        /// Measuring is off, failed or gave nothing usable: keep the existing rule.
        case fallBack(warnings: [String])
    }

    /// What a start does when the user set no core: read the cache; measure (and write the
    /// cache) when it is missing, unreadable or from another machine. `measure` runs the
    /// candidates (injected by tests).
    public static func resolve(environment env: [String: String], key: Key, libraryCore: String, candidates: [String],
                               cacheURL url: URL, measure: ([String]) -> [Measurement]) -> Resolution {
        if env[measureVariable] == "0" { return .fallBack(warnings: []) }
        guard !candidates.isEmpty else { return .fallBack(warnings: []) }
        var warnings: [String] = []
        switch readCache(at: url, key: key) {
        case .hit(let file): return .use(core: file.chosenCore, source: "cache", warnings: [])
        case .missing: break
        case .unusable(let why): warnings.append(why)
        }
        let measurements = measure(candidates)
        for m in measurements where !m.usable {
            warnings.append("OpenBLAS core \(m.core) not usable here: " + (m.error ?? (m.checkPassed ? "the library ran \(m.loadedCore ?? "?") instead" : "SGEMM check failed (worst relative error \(m.worstRelativeError.map { String(format: "%.1e", $0) } ?? "?"))")))
        }
        guard let chosen = choose(measurements, libraryCore: libraryCore) else {
            warnings.append("no OpenBLAS core could be measured; keeping the library's choice")
            return .fallBack(warnings: warnings)
        }
        let file = cacheFile(key: key, chosenCore: chosen, libraryCore: libraryCore, measurements: measurements)
        do { try writeCache(file, to: url) } catch {
            warnings.append("could not write the core choice to \(url.path) (\(error)); it will be measured again next start")
        }
        return .use(core: chosen, source: "measured", warnings: warnings)
    }

    /// Holds an exclusive lock on `url`+".lock" while `body` runs, so processes starting
    /// together (`segflow up`) measure once; waits at most `lockBound`, then runs without it.
    static func withMeasureLock<T>(_ url: URL, _ body: (_ locked: Bool) -> T) -> T {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return body(false) }
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(Double(lockBound.components.seconds))
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if Date() >= deadline { return body(false) }
            usleep(50_000)
        }
        defer { flock(fd, LOCK_UN) }
        return body(true)
    }

    /// The cached file, if it matches this machine (doctor, bench).
    public static func cached(environment env: [String: String] = ProcessInfo.processInfo.environment) -> CacheFile? {
        if case .hit(let f) = readCache(at: cacheURL(environment: env), key: currentKey()) { return f }
        return nil
    }

    /// "SkylakeX 185, Cooperlake 160, Haswell 120 GFLOP/s".
    public static func summary(_ measurements: [Measurement]) -> String {
        measurements.map { m in
            m.usable ? String(format: "%@ %.0f", m.core, m.gflops!) : "\(m.core) unusable"
        }.joined(separator: ", ") + " GFLOP/s"
    }
}
