import ArgumentParser
import Foundation
import ServiceKit

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show the OpenBLAS core and threads, verify SGEMM against a reference, measure GFLOP/s.",
        discussion: """
            When OPENBLAS_CORETYPE is unset, segflow runs the OpenBLAS core measured fastest \
            on this machine: on the first start each core the CPU can run is measured in a \
            child process (SGEMM check + a ViT-sized SGEMM) and the winner is cached \
            (SEGFLOW_BLAS_CACHE, default ~/.cache/segflow/blas-core.json, keyed by CPU and \
            OpenBLAS version; SEGFLOW_BLAS_MEASURE=0 turns it off). --measure-cores measures \
            again now. A value you set is always respected. Exit status is non-zero if the \
            SGEMM check fails.
            """
    )

    @Flag(help: "Print a JSON object instead of text.") var json = false
    @Option(help: "Matrix size for the GFLOP/s measurement.") var gemmSize = 1024
    @Flag(help: "Measure every OpenBLAS core this CPU can run now (each in a child process), cache the fastest for later starts, and report.")
    var measureCores = false

    func run() async throws {
        if measureCores { try measure() }
        let report = DoctorReport.collect(gemmSize: gemmSize)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        if !report.gemmChecksPassed { throw ExitCode(1) }
    }

    func measure() throws {
        let env = ProcessInfo.processInfo.environment
        let library = env[BLASRuntime.detectedCoreVariable] ?? (env[BLASRuntime.coreTypeVariable] == nil ? BLASRuntime.loadedCoreName : "unknown")
        let candidates = BLASCoreChoice.candidates(flags: BLASRuntime.CPUFeatures.currentFlags(), libraryCore: library)
        guard !candidates.isEmpty else {
            FileHandle.standardError.write("segflow doctor: this CPU runs no OpenBLAS core better than the generic one; nothing to measure\n".data(using: .utf8)!)
            return
        }
        let url = BLASCoreChoice.cacheURL(environment: env)
        FileHandle.standardError.write("measuring OpenBLAS cores \(candidates.joined(separator: ", ")) (\(BLASCoreChoice.rounds) rounds)…\n".data(using: .utf8)!)
        let measurements = BLASCoreChoice.measure(cores: candidates)
        guard let chosen = BLASCoreChoice.choose(measurements, libraryCore: library) else {
            FileHandle.standardError.write("segflow doctor: no core could be measured: \(measurements.map { "\($0.core): \($0.error ?? "check failed")" })\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        let file = BLASCoreChoice.cacheFile(key: BLASCoreChoice.currentKey(), chosenCore: chosen, libraryCore: library, measurements: measurements)
        try BLASCoreChoice.writeCache(file, to: url)
        let userSet = env[BLASRuntime.coreTypeVariable] != nil && env[BLASRuntime.detectedCoreVariable] == nil
        FileHandle.standardError.write(("measured: \(BLASCoreChoice.summary(measurements)); chose \(chosen) (OpenBLAS's own pick: \(library)); cached in \(url.path)"
            + (userSet ? " — your OPENBLAS_CORETYPE still wins" : "") + "\n").data(using: .utf8)!)
    }
}
