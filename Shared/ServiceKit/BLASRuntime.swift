import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Chooses the OpenBLAS compute core before any math runs.
///
/// Debian's OpenBLAS 0.3.21 is a DYNAMIC_ARCH build that picks its kernels from CPUID
/// when the library loads. On CPUs newer than the library it can fail to recognise the
/// model and fall back to a generic SSE3 core (Prescott), about 5× slower than the
/// AVX-512 kernels the CPU supports. `OPENBLAS_CORETYPE` overrides the choice, but the
/// library reads it in its load-time constructor, so setting it inside `main` is too
/// late: the process must be re-executed with the variable set.
///
/// Rules:
/// - A value the user or the machine has set is never overridden.
/// - We intervene only when the library reports a core without AVX2 kernels on a CPU
///   that has AVX2 or AVX-512; a library that recognised the CPU keeps its own choice.
/// - Re-execution happens at most once (guarded by `SEGFLOW_BLAS_DETECTED_CORE`).
public enum BLASRuntime {
    /// Environment variable OpenBLAS reads at load time.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Set by Segflow on re-exec: the core the library had detected by itself.
    public static let detectedCoreVariable = "SEGFLOW_BLAS_DETECTED_CORE"
    /// OpenBLAS worker threads spin (sched_yield) for 2^n cycles after each call before
    /// sleeping (default n = 28, ~0.1 s). Segflow's own parallel loops run between BLAS
    /// calls and lose their core to that spinning; 2^4 lets the workers sleep at once
    /// (it shortens the encoder and decoder; rerun `segflow bench` to see). Read at load time
    /// like the core type, so it is set on the same re-exec, and never overrides a value.
    public static let threadTimeoutVariable = "OPENBLAS_THREAD_TIMEOUT"
    public static let preferredThreadTimeout = "4"
    /// The same for oneDNN's OpenMP team (Debian's libdnnl uses libgomp): after each
    /// parallel region its threads spin for GOMP_SPINCOUNT iterations before sleeping, and
    /// on 2 cores that spinning was 22 % of the CPU samples of a LiteMedSAM bf16 encode
    /// (perf), taking the core from the GELU/norm loops between GEMMs. PASSIVE lets them
    /// sleep at once. Read by libgomp at load time: set on the same re-exec, never
    /// overriding a value the user set.
    public static let ompWaitPolicyVariable = "OMP_WAIT_POLICY"
    public static let preferredOMPWaitPolicy = "PASSIVE"
    /// Set by Segflow on its one re-exec.
    public static let reexecMarkerVariable = "SEGFLOW_BLAS_REEXEC"

    /// Testing aid: pretend the library detected this core (lets tests exercise the
    /// re-exec path on machines whose OpenBLAS recognises the CPU).
    public static let pretendDetectedVariable = "SEGFLOW_BLAS_PRETEND_DETECTED_CORE"

    /// OpenBLAS core names (dynamic.c `corename[]`) whose SGEMM kernels use AVX2/FMA or better.
    static let avx2Cores: Set<String> = ["haswell", "zen", "excavator", "skylakex", "cooperlake", "sapphirerapids"]

    public struct CPUFeatures: Sendable, Equatable {
        public var avx2: Bool
        public var fma: Bool
        public var avx512: Bool   // F + CD + BW + DQ + VL, what OpenBLAS's SkylakeX kernels need

        public init(avx2: Bool, fma: Bool, avx512: Bool) {
            self.avx2 = avx2; self.fma = fma; self.avx512 = avx512
        }

        /// Parses the `flags` line of /proc/cpuinfo.
        public init(cpuinfoFlags flags: Set<String>) {
            avx2 = flags.contains("avx2")
            fma = flags.contains("fma")
            avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        }

        public static func current() -> CPUFeatures { CPUFeatures(cpuinfoFlags: currentFlags()) }

        /// The `flags` of /proc/cpuinfo's first CPU (empty if unreadable).
        public static func currentFlags() -> Set<String> {
            guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                  let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
                  let colon = line.firstIndex(of: ":") else { return [] }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }

        /// The best OpenBLAS 0.3.21 core for these features, or nil if nothing beats generic.
        public var preferredCore: String? {
            if avx512 { return "SkylakeX" }
            if avx2 && fma { return "Haswell" }
            return nil
        }
    }

    public enum Decision: Equatable, Sendable {
        /// The user or machine set OPENBLAS_CORETYPE: respected as is.
        case respectUserSetting(String)
        /// Already re-executed once; never loop.
        case alreadySelected(detected: String)
        /// The library's own choice is good (or the CPU offers nothing better).
        case keepLibraryChoice(String)
        /// Re-execute with OPENBLAS_CORETYPE set to `core`.
        case reexec(core: String, detected: String)
    }

    /// Pure decision function; see the type's documentation for the rules.
    public static func decide(environment: [String: String], detectedCore: String, cpu: CPUFeatures) -> Decision {
        if let set = environment[coreTypeVariable], !set.isEmpty {
            if let detected = environment[detectedCoreVariable] { return .alreadySelected(detected: detected) }
            return .respectUserSetting(set)
        }
        if let detected = environment[detectedCoreVariable] { return .alreadySelected(detected: detected) }
        let detected = environment[pretendDetectedVariable] ?? detectedCore
        guard !avx2Cores.contains(detected.lowercased()), let better = cpu.preferredCore else {
            return .keepLibraryChoice(detected)
        }
        return .reexec(core: better, detected: detected)
    }

    /// The core the loaded library is running.
    public static var loadedCoreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Call first thing in `main` of every executable. Either returns (the current core is
    /// the one to use) or replaces the process with itself, `OPENBLAS_CORETYPE` set.
    ///
    /// With no user setting, the core is the one measured fastest on this machine
    /// (`BLASCoreChoice`: cached, measured on the first start); with measuring off or
    /// failed, the rule above (replace a generic core, else keep the library's choice).
    public static func selectCoreOrReexec() {
        BLASCoreChoice.runProbeIfRequested()  // a measuring child: never returns
        let env = ProcessInfo.processInfo.environment
        guard env[reexecMarkerVariable] == nil else { return }  // at most one re-exec
        let loaded = loadedCoreName
        let decision = decide(environment: env, detectedCore: loaded, cpu: .current())
        var core = "", detected = "", source = ""
        if case let .reexec(c, d) = decision { core = c; detected = d }
        switch decision {
        case .keepLibraryChoice, .reexec:
            if let (chosen, how) = measuredChoice(environment: env, libraryCore: env[pretendDetectedVariable] ?? loaded) {
                source = how
                if chosen.lowercased() != loaded.lowercased() || !core.isEmpty {
                    core = chosen
                    detected = env[pretendDetectedVariable] ?? loaded
                }
            }
        case .respectUserSetting, .alreadySelected:
            break
        }
        let needsTimeout = env[threadTimeoutVariable] == nil
        let needsWaitPolicy = env[ompWaitPolicyVariable] == nil
        guard !core.isEmpty || needsTimeout || needsWaitPolicy else {
            // The loaded core is the measured one: no re-exec just to say so.
            if !source.isEmpty { setenv(BLASCoreChoice.sourceVariable, source, 1) }
            return
        }
        if !core.isEmpty {
            setenv(coreTypeVariable, core, 1)
            setenv(detectedCoreVariable, detected, 1)
        }
        if !source.isEmpty { setenv(BLASCoreChoice.sourceVariable, source, 1) }
        if needsTimeout { setenv(threadTimeoutVariable, preferredThreadTimeout, 1) }
        if needsWaitPolicy { setenv(ompWaitPolicyVariable, preferredOMPWaitPolicy, 1) }
        setenv(reexecMarkerVariable, "1", 1)
        fflush(nil)  // flush every C stream: nothing buffered may be lost by exec
        // /proc/self/exe is the running binary even if argv[0] is relative or was renamed.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with the slow core rather than not at all, but say so.
        let message = "segflow: warning: could not re-exec to configure OpenBLAS (errno \(errno)); running on core \(loadedCoreName)\n"
        FileHandle.standardError.write(message.data(using: .utf8)!)
        if !core.isEmpty { unsetenv(coreTypeVariable); unsetenv(detectedCoreVariable) }
        if needsTimeout { unsetenv(threadTimeoutVariable) }
        if needsWaitPolicy { unsetenv(ompWaitPolicyVariable) }
        unsetenv(BLASCoreChoice.sourceVariable)
        unsetenv(reexecMarkerVariable)
    }

    /// The cached or freshly measured fastest core and how it was found ("cache",
    /// "measured"), or nil (measuring off or nothing usable). Warnings go to stderr.
    static func measuredChoice(environment env: [String: String], libraryCore: String) -> (String, String)? {
        let flags = CPUFeatures.currentFlags()
        let candidates = BLASCoreChoice.candidates(flags: flags, libraryCore: libraryCore)
        let url = BLASCoreChoice.cacheURL(environment: env)
        let key = BLASCoreChoice.currentKey()
        let first = BLASCoreChoice.resolve(environment: env, key: key, libraryCore: libraryCore, candidates: candidates,
                                           cacheURL: url, measure: { _ in [] })
        let resolution: BLASCoreChoice.Resolution
        if case .use = first {
            resolution = first
        } else if env[BLASCoreChoice.measureVariable] == "0" || candidates.isEmpty {
            return nil
        } else {
            // Another process may be measuring right now: wait for it, then read its result.
            resolution = BLASCoreChoice.withMeasureLock(url) { _ in
                if case .hit(let f) = BLASCoreChoice.readCache(at: url, key: key) {
                    return .use(core: f.chosenCore, source: "cache", warnings: [])
                }
                FileHandle.standardError.write("segflow: measuring OpenBLAS cores \(candidates.joined(separator: ", ")) once for this machine (cached in \(url.path); \(BLASCoreChoice.measureVariable)=0 turns this off)…\n".data(using: .utf8)!)
                return BLASCoreChoice.resolve(environment: env, key: key, libraryCore: libraryCore, candidates: candidates,
                                              cacheURL: url, measure: { BLASCoreChoice.measure(cores: $0) })
            }
        }
        switch resolution {
        case let .use(core, source, warnings):
            for w in warnings { FileHandle.standardError.write("segflow: warning: \(w)\n".data(using: .utf8)!) }
            return (core, source)
        case let .fallBack(warnings):
            for w in warnings { FileHandle.standardError.write("segflow: warning: \(w)\n".data(using: .utf8)!) }
            return nil
        }
    }

    /// A one-line account of how the core was chosen, for diagnostics and benchmarks.
    public static var selectionSummary: String {
        let env = ProcessInfo.processInfo.environment
        let core = loadedCoreName
        if let source = env[BLASCoreChoice.sourceVariable] {
            let library = env[detectedCoreVariable] ?? core
            let numbers = BLASCoreChoice.cached(environment: env).map { "; " + BLASCoreChoice.summary($0.measurements) } ?? ""
            let how = source == "cache" ? "measured fastest on this CPU, from \(BLASCoreChoice.cacheURL(environment: env).path)"
                                        : "measured fastest on this CPU just now"
            return "\(core) (\(how); OpenBLAS's own pick \(library)\(numbers))"
        }
        if let detected = env[detectedCoreVariable] {
            return "\(core) (selected by segflow: OpenBLAS detected \(detected), a generic core)"
        }
        if let set = env[coreTypeVariable], !set.isEmpty {
            return "\(core) (\(coreTypeVariable)=\(set) set by the user or machine; respected)"
        }
        return "\(core) (detected by OpenBLAS)"
    }
}
