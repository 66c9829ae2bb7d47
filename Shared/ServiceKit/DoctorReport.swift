import Foundation
import Tensor

/// What `segflow doctor` reports; Codable so tests and tooling read the JSON form.
public struct DoctorReport: Codable, Sendable {
    public var blasCore: String
    public var blasSelection: String
    public var detectedCoreBeforeSelection: String?
    public var coreTypeEnvironment: String?
    public var blasThreads: Int
    public var blasThreadTimeout: String?
    public var cpuAVX2: Bool
    public var cpuAVX512: Bool
    public var sgemmGFLOPS: Double
    public var gemmSize: Int
    public var gemmChecks: [BLASDiagnostics.GEMMCheck]
    public var gemmChecksPassed: Bool
    /// GEMM precision/engine settings, oneDNN version and implementations, bf16 support.
    public var gemmRuntime: GEMMRuntimeInfo
    /// GFLOP/s per GEMM backend (OpenBLAS f32, oneDNN f32, oneDNN bf16 when native) at gemmSize³.
    public var gemmEngines: [GEMMBenchmark.Row]
    /// How the core was chosen: "cache" / "measured" (BLASCoreChoice), "user", "library", "generic-replaced".
    public var coreChoiceSource: String
    /// The cached measurement for this machine (nil: none yet, or measuring is off).
    public var coreChoice: BLASCoreChoice.CacheFile?
    public var coreChoiceCache: String

    public static func collect(gemmSize: Int) -> DoctorReport {
        let env = ProcessInfo.processInfo.environment
        let cpu = BLASRuntime.CPUFeatures.current()
        let checks = BLASDiagnostics.verifyGEMM()
        return DoctorReport(
            blasCore: BLASRuntime.loadedCoreName,
            blasSelection: BLASRuntime.selectionSummary,
            detectedCoreBeforeSelection: env[BLASRuntime.detectedCoreVariable],
            coreTypeEnvironment: env[BLASRuntime.coreTypeVariable],
            blasThreads: BLASRuntime.threads,
            blasThreadTimeout: env[BLASRuntime.threadTimeoutVariable],
            cpuAVX2: cpu.avx2, cpuAVX512: cpu.avx512,
            sgemmGFLOPS: BLASDiagnostics.measureGFLOPS(size: gemmSize),
            gemmSize: gemmSize,
            gemmChecks: checks,
            gemmChecksPassed: checks.allSatisfy(\.passed),
            gemmRuntime: GEMMRuntimeInfo.current(),
            gemmEngines: GEMMBenchmark.measure(shapes: [GEMMBenchmark.Shape(m: gemmSize, n: gemmSize, k: gemmSize)]),
            coreChoiceSource: env[BLASCoreChoice.sourceVariable]
                ?? (env[BLASRuntime.detectedCoreVariable] != nil ? "generic-replaced"
                    : (env[BLASRuntime.coreTypeVariable].map { !$0.isEmpty } ?? false) ? "user" : "library"),
            coreChoice: BLASCoreChoice.cached(environment: env),
            coreChoiceCache: BLASCoreChoice.cacheURL(environment: env).path)
    }

    public var text: String {
        let worst = gemmChecks.map(\.relativeError).max() ?? 0
        return """
            OpenBLAS core:   \(blasSelection)
            core choice:     \(coreChoiceSource)\(coreChoice.map { " — measured \($0.measuredAt): " + BLASCoreChoice.summary($0.measurements) + " at \($0.shape.map(String.init).joined(separator: "×")), chose \($0.chosenCore)" } ?? " (no measurement cached at \(coreChoiceCache))")
            threads:         \(blasThreads) (worker spin timeout 2^\(blasThreadTimeout ?? "28 (OpenBLAS default)") cycles)
            CPU:             AVX2 \(cpuAVX2 ? "yes" : "no"), AVX-512 \(cpuAVX512 ? "yes" : "no")
            SGEMM check:     \(gemmChecksPassed ? "ok" : "FAILED") (\(gemmChecks.count) cases, worst relative error \(String(format: "%.2e", worst)), tolerance \(String(format: "%.0e", BLASDiagnostics.gemmRelativeTolerance)))
            SGEMM speed:     \(String(format: "%.1f", sgemmGFLOPS)) GFLOP/s (\(gemmSize)³, median of 5)
            \(gemmRuntime.text)
            GEMM engines:    \(gemmEngines.map { "\($0.backend.rawValue) \(String(format: "%.0f", $0.gflops))" }.joined(separator: ", ")) GFLOP/s (\(gemmSize)³ linear layout, median of 5)
            """
    }
}
