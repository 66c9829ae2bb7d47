import ArgumentParser
import Foundation
import Pipeline
import SAM
import Serving
import Client
import Embedded
import ServiceKit

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the image encoder and the prompt decoder (median of N runs after warm-up).",
        discussion: """
            Reports preprocessing, encoder and decoder (1 point, 1 box, a batch of 16 prompts) \
            with median/min/max/sd, SGEMM GFLOP/s and the share of time in SGEMM, the OpenBLAS \
            core and threads, and peak memory. Use --random-weights to time an architecture \
            whose checkpoint you do not have (same shapes as the official files).
            Compare with Tests/Reference/bench_torch.py on the same machine.
            """
    )

    @Option(help: "Model: \(SAMBackend.family.models.map(\.name).joined(separator: ", ")).") var model = ModelRegistry.defaultModel
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Flag(help: "Use deterministic random weights with the official shapes instead of a checkpoint.") var randomWeights = false
    @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice, all cores).") var threads: Int?
    @Option(help: "Timed encoder runs.") var runs = 5
    @Option(help: "Timed decoder runs per stage.") var decoderRuns = 20
    @Option(help: "Warm-up runs per stage (not timed).") var warmup = 1
    @Flag(help: "Print JSON instead of a markdown table.") var json = false
    @Flag(help: "Benchmark the Kafka pipeline instead: end-to-end latency via the embedded broker vs in-process, messaging overhead per prompt, the 4 MiB embedding hop, and decoder throughput with 1 vs 2 decoder processes.")
    var pipeline = false

    func run() async throws {
        if pipeline {
            let binDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            let report = try await PipelineBenchmark.run(model: try SAMBackend.kind(named: model), checkpoint: checkpoint,
                                                         runs: runs, binDir: binDir) { stage in
                FileHandle.standardError.write("bench: \(stage)…\n".data(using: .utf8)!)
            }
            return try show(report, markdown: report.markdown)
        }
        var o = Benchmark.Options(model: try SAMBackend.kind(named: model))
        o.checkpoint = checkpoint; o.randomWeights = randomWeights; o.threads = threads
        o.encoderRuns = runs; o.decoderRuns = decoderRuns; o.warmup = warmup
        let report = try Benchmark.run(o) { stage in
            FileHandle.standardError.write("bench: \(stage)…\n".data(using: .utf8)!)
        }
        try show(report, markdown: report.markdown)
    }

    /// JSON with --json, else the OpenBLAS core and a markdown table.
    func show(_ report: some Encodable, markdown: String) throws {
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print("OpenBLAS: \(BLASRuntime.selectionSummary)")
            print(markdown)
        }
    }
}
