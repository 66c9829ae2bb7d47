import COpenBLAS
import Tensor
import Foundation

/// Measurements `segflow doctor` and `segflow bench` report about the BLAS in use.
public enum BLASDiagnostics {
    public struct GEMMCheck: Codable, Sendable {
        public var m: Int, n: Int, k: Int
        public var transA: Bool, transB: Bool
        /// max |fast - reference| / max |reference|
        public var relativeError: Double
        public var passed: Bool
    }

    /// SGEMM accumulates in Float32; over K ≤ 2048 terms of O(1) values the rounding
    /// error of a correct kernel stays below ~1e-5 of the result's scale (we see ~1e-6).
    /// A wrong kernel (the failure mode of a mis-selected core) is off by O(1).
    public static let gemmRelativeTolerance = 1e-5

    /// Odd, tiny and blocked shapes that exercise every edge path of the micro-kernels.
    public static let checkShapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 13, 5), (17, 1, 33), (1, 31, 9), (64, 64, 64), (127, 255, 63),
        (256, 96, 768), (513, 257, 1025), (4096, 12, 64), (33, 2048, 17),
    ]

    /// Runs cblas_sgemm against a Double-accumulating reference on `checkShapes`, with all
    /// four transpose combinations on the smaller shapes.
    public static func verifyGEMM() -> [GEMMCheck] {
        var results: [GEMMCheck] = []
        var rng = SplitMix64(seed: 0x5e9f)
        for (m, n, k) in checkShapes {
            let combos: [(Bool, Bool)] = m * n * k <= 1 << 22
                ? [(false, false), (true, false), (false, true), (true, true)] : [(false, false)]
            for (ta, tb) in combos {
                let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
                let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
                var c = [Float](repeating: 0, count: m * n)
                // Stored layouts: A is m×k (or k×m when transposed), B is k×n (or n×k).
                let lda = ta ? m : k, ldb = tb ? k : n
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, &c, Int32(n))
                var maxErr = 0.0, maxRef = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var acc = 0.0
                        for p in 0..<k {
                            let av = ta ? a[p * m + i] : a[i * k + p]
                            let bv = tb ? b[j * k + p] : b[p * n + j]
                            acc += Double(av) * Double(bv)
                        }
                        maxErr = max(maxErr, abs(acc - Double(c[i * n + j])))
                        maxRef = max(maxRef, abs(acc))
                    }
                }
                let rel = maxErr / max(maxRef, 1e-30)
                results.append(GEMMCheck(m: m, n: n, k: k, transA: ta, transB: tb,
                                         relativeError: rel, passed: rel <= gemmRelativeTolerance && rel.isFinite))
            }
        }
        return results
    }

    /// Square SGEMM throughput: one warm-up, then the median of `repetitions` runs.
    public static func measureGFLOPS(size n: Int = 1024, repetitions: Int = 5) -> Double {
        let a = [Float](repeating: 0.001, count: n * n)
        let b = [Float](repeating: 0.002, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        func run() {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        }
        return 2.0 * Double(n * n * n) / GEMMBenchmark.medianSeconds(repetitions: repetitions, run) / 1e9
    }
}


