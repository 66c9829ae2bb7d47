import ArgumentParser
import Foundation
import ServiceKit

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show the OpenBLAS core and threads, verify SGEMM against a reference, measure GFLOP/s.",
        discussion: """
            When OPENBLAS_CORETYPE is unset and OpenBLAS falls back to a generic core on a CPU \
            with AVX2/AVX-512, segflow re-executes itself with the right core; a value you set \
            is always respected. Exit status is non-zero if the SGEMM check fails.
            """
    )

    @Flag(help: "Print a JSON object instead of text.") var json = false
    @Option(help: "Matrix size for the GFLOP/s measurement.") var gemmSize = 1024

    func run() async throws {
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
}
