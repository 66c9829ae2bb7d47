import ArgumentParser
import ServiceCommandLine
import Foundation
import Pipeline
import Imaging
import SAM
import SegGPT
import SAM2
import Tensor
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

    @OptionGroup var precisionOptions: PrecisionOptions
    @Option(help: "Model: \((SAMBackend.family.models + Sam2Backend.family.models + SegGPTBackend.family.models).map(\.name).joined(separator: ", ")).") var model = ModelRegistry.defaultModel
    @Option(help: "SegGPT: prompt pairs per query (several = feature ensemble).") var prompts = 1
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Flag(help: "Use deterministic random weights with the official shapes instead of a checkpoint.") var randomWeights = false
    @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice, all cores).") var threads: Int?
    @Option(help: "Timed encoder runs.") var runs = 5
    @Option(help: "Timed decoder runs per stage.") var decoderRuns = 20
    @Option(help: "Warm-up runs per stage (not timed).") var warmup = 1
    @Flag(help: "Print JSON instead of a markdown table.") var json = false
    @Flag(help: "No progress line on stderr (it is shown only when stderr is a terminal).") var quiet = false
    @Flag(help: "Benchmark the Kafka pipeline instead: end-to-end latency via the embedded broker vs in-process, messaging overhead per prompt, the 4 MiB embedding hop, and decoder throughput with 1 vs 2 decoder processes.")
    var pipeline = false
    @Flag(help: "Benchmark a tracked video stream instead: frames/s and per-frame latency through the embedded broker (encoder working ahead) next to the in-process ceiling, for 1 and 3 objects.")
    var video = false
    @Option(help: "--video: the image a synthetic camera pan is cut from (default: a synthetic 1024×768 image).") var image: String?
    @Option(help: "--video: frames in the stream; SAM 2: tracked frames per object count (median over frames 2…).") var frames = 24
    @Option(help: "--video: frames in flight over Kafka.") var window = 8

    func run() async throws {
        let precision = try precisionOptions.apply()
        if ModelRegistry.info(model)?.family == SegGPTBackend.family.name {
            return try benchInContext(precision: precision)
        }
        if ModelRegistry.info(model)?.family == Sam2Backend.family.name {
            return try benchSam2(precision: precision)
        }
        let progress = ProgressReporter(total: 0, label: "bench", quiet: quiet)
        if pipeline {
            let binDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            let report = try await PipelineBenchmark.run(model: try SAMBackend.kind(named: model), checkpoint: checkpoint,
                                                         runs: runs, binDir: binDir) { stage in progress.status(stage + "…") }
            progress.finish()
            return try show(report, markdown: report.markdown)
        }
        if video {
            guard frames >= 2 else { throw ValidationError("--frames must be at least 2") }
            let backend = try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint))
            let source = try image.map { try ImageInput.read($0).image }
                ?? RGBImage(width: 1024, height: 768, pixels: Benchmark.syntheticImage(width: 1024, height: 768))
            let (w, h) = (source.width * 3 / 4 / 2 * 2, source.height * 3 / 4 / 2 * 2)
            let pan = try StreamBenchmark.pan(source, count: frames, width: w, height: h)
            let report = try await StreamBenchmark.run(backend: backend, frames: pan, window: window, precision: "\(precision)") { stage in
                progress.status(stage + "…")
            }
            progress.finish()
            return try show(report, markdown: report.markdown)
        }
        var o = Benchmark.Options(model: try SAMBackend.kind(named: model))
        o.checkpoint = checkpoint; o.randomWeights = randomWeights; o.threads = threads
        o.encoderRuns = runs; o.decoderRuns = decoderRuns; o.warmup = warmup
        let report = try Benchmark.run(o) { stage in progress.status(stage + "…") }
        progress.finish()
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

    /// SegGPT / Painter: one whole forward (ViT-L 896×448 for --random-weights) per run.
    func benchInContext(precision: GEMMPrecision) throws {
        if let threads { try TensorRuntime.setGEMMThreads(threads) }
        guard let kind = SegGPT.Kind(rawValue: model) else { throw ValidationError("unknown in-context model \(model)") }
        let result: SegGPTBenchmark.Result
        if randomWeights {
            FileHandle.standardError.write("bench: building random full-size \(model) weights…\n".data(using: .utf8)!)
            result = try SegGPTBenchmark.randomFullSize(kind: kind, prompts: prompts, runs: runs, warmup: warmup)
        } else {
            guard let checkpoint else { throw ValidationError("--model \(model) needs --checkpoint or --random-weights") }
            result = try SegGPTBenchmark.forward(try SegGPT.load(url: URL(fileURLWithPath: checkpoint), kind: kind),
                                                 prompts: prompts, runs: runs, warmup: warmup)
        }
        let report = InContextBenchReport(model: model, weights: randomWeights ? "random" : checkpoint ?? "",
                                          precision: precision.rawValue, blasCore: BLASRuntime.selectionSummary,
                                          threads: TensorRuntime.gemmThreads, prompts: prompts, seconds: result.seconds,
                                          medianSeconds: result.median, buildSeconds: result.buildSeconds,
                                          gemmGFLOP: result.gemmFlops / 1e9,
                                          gemmShare: result.median > 0 ? result.gemmSeconds / result.median : 0,
                                          peakRSSMiB: Self.peakRSSMiB())
        try show(report, markdown: report.markdown)
    }

    /// SAM 2: the image encoder and the per-frame tracking step (1 and 3 objects), random
    /// full-size weights or a transformers Sam2VideoModel directory.
    func benchSam2(precision: GEMMPrecision) throws {
        if let threads { try TensorRuntime.setGEMMThreads(threads) }
        let video: Sam2Video
        var build = 0.0
        if randomWeights {
            guard let preset = Sam2Backend.presets.first(where: { $0.name == model }) else { throw ValidationError("unknown SAM 2 model \(model)") }
            FileHandle.standardError.write("bench: building random full-size \(model) weights…\n".data(using: .utf8)!)
            let t0 = ContinuousClock.now
            video = try Sam2Benchmark.randomModel(config: preset.config)
            let d = ContinuousClock.now - t0
            build = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        } else {
            guard let checkpoint else { throw ValidationError("--model \(model) needs --random-weights or --checkpoint <Sam2VideoModel directory>") }
            video = try Sam2Video.load(directory: URL(fileURLWithPath: (checkpoint as NSString).expandingTildeInPath))
        }
        let progress = ProgressReporter(total: 0, label: "bench", quiet: quiet)
        var report = try Sam2Benchmark.run(model: model, video, precision: precision.rawValue, threads: TensorRuntime.gemmThreads,
                                           encoderRuns: runs, frames: frames, buildSeconds: build) { progress.status($0 + "…") }
        progress.finish()
        report.buildSeconds = build
        try show(report, markdown: report.markdown)
    }

    /// VmHWM of this process (Linux), MiB.
    static func peakRSSMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}

struct InContextBenchReport: Codable {
    var model: String, weights: String, precision: String, blasCore: String, threads: Int, prompts: Int
    var seconds: [Double], medianSeconds: Double, buildSeconds: Double?, gemmGFLOP: Double, gemmShare: Double, peakRSSMiB: Double

    var markdown: String {
        """
        | model | precision | threads | prompts | forward median | runs | GEMM | GEMM share | peak RSS |
        |---|---|---:|---:|---:|---|---:|---:|---:|
        | \(model) (\(weights)) | \(precision) | \(threads) | \(prompts) | \(String(format: "%.2f s", medianSeconds)) | \(seconds.map { String(format: "%.2f", $0) }.joined(separator: " / ")) | \(String(format: "%.0f GFLOP (%.0f GFLOP/s)", gemmGFLOP, gemmGFLOP / max(medianSeconds, 1e-9))) | \(String(format: "%.0f%%", gemmShare * 100)) | \(String(format: "%.0f MiB", peakRSSMiB)) |
        """
    }
}
