import ArgumentParser
import Foundation
import Tensor

/// `--precision f32|bf16` for every command and service that runs a model.
public struct PrecisionOptions: ParsableArguments {
    @Option(help: """
        GEMM precision: f32 (default: exact) or bf16 (oneDNN bf16 matmuls with f32 accumulation; \
        only on CPUs with native bf16, AVX512_BF16 or AMX — refused elsewhere, never emulated; \
        measured LiteMedSAM mask IoU vs f32: min 0.980, mean 0.995). Env SEGFLOW_PRECISION.
        """)
    public var precision: String?
    @Option(help: "Library for f32 GEMMs: openblas (default), onednn, or auto (measure both at start-up, keep the faster). Env SEGFLOW_GEMM_ENGINE.")
    public var gemmEngine: String?

    public init() {}

    /// The chosen precision, applied process-wide; a clear error when bf16 is not native here.
    @discardableResult
    public func apply() throws -> GEMMPrecision {
        let name = precision ?? ProcessInfo.processInfo.environment["SEGFLOW_PRECISION"] ?? GEMMPrecision.f32.rawValue
        guard let p = GEMMPrecision(rawValue: name.lowercased()) else {
            throw ValidationError("--precision must be f32 or bf16, got '\(name)'")
        }
        do { try TensorRuntime.setPrecision(p) } catch { throw ValidationError("--precision \(name): \(error)") }
        switch (gemmEngine ?? ProcessInfo.processInfo.environment["SEGFLOW_GEMM_ENGINE"] ?? "openblas").lowercased() {
        case "openblas": _ = TensorRuntime.selectF32Engine(.fixed(.openBLAS))
        case "onednn": _ = TensorRuntime.selectF32Engine(.fixed(.oneDNN))
        case "auto": _ = TensorRuntime.selectF32Engine(.automatic)
        case let other: throw ValidationError("--gemm-engine must be openblas, onednn or auto, got '\(other)'")
        }
        return p
    }
}
