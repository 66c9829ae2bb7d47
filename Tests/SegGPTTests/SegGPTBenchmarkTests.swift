import Foundation
import SegGPT
import XCTest

/// Full-size timing (random ViT-L weights, 896×448 canvas, one prompt), off by default:
/// `SEGFLOW_SEGGPT_BENCH=1 swift test -c release --skip-build --filter SegGPTBenchmarkTests`.
/// Compare with `Tests/Reference/bench_seggpt_torch.py` on the same machine and threads.
final class SegGPTBenchmarkTests: XCTestCase {
    func testFullSizeForwardTiming() throws {
        guard let v = ProcessInfo.processInfo.environment["SEGFLOW_SEGGPT_BENCH"], v == "1" else {
            throw XCTSkip("set SEGFLOW_SEGGPT_BENCH=1 to time the full-size forward")
        }
        let runs = Int(ProcessInfo.processInfo.environment["SEGFLOW_SEGGPT_BENCH_RUNS"] ?? "") ?? 3
        let prompts = Int(ProcessInfo.processInfo.environment["SEGFLOW_SEGGPT_BENCH_PROMPTS"] ?? "") ?? 1
        let r = try SegGPTBenchmark.randomFullSize(prompts: prompts, runs: runs, warmup: 1)
        print("[SegGPT bench] ViT-L 896x448, \(prompts) prompt(s): runs \(r.seconds.map { String(format: "%.2f", $0) }) s, "
              + "median \(String(format: "%.2f", r.median)) s, build \(String(format: "%.1f", r.buildSeconds ?? 0)) s, "
              + "GEMM \(String(format: "%.0f", r.gemmFlops / 1e9)) GFLOP in \(String(format: "%.2f", r.gemmSeconds)) thread-s")
        XCTAssertEqual(r.seconds.count, runs)
    }
}
