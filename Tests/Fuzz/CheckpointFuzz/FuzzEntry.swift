// libFuzzer entry point for the checkpoint readers. Built by ../run-checkpoint-fuzz.sh
// directly with swiftc over Shared/Checkpoint (same module, so internal parsers are
// reachable) and Shared/Tensor (separate module) — not through SwiftPM.
import Tensor

/// Backing bytes for storages referenced by raw pickles (fuzzed without a zip around them).
private let syntheticStorage = CheckpointBytes(copying: (0 ..< 4096).map { UInt8(truncatingIfNeeded: $0 &* 37) })

@_cdecl("LLVMFuzzerTestOneInput")
public func checkpointFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)

    // 1. The public path: format detection, zip / safetensors, every tensor materialised.
    do {
        let sd = try StateDict(bytes: input)
        for name in sd.names {
            let t = try sd.tensor(named: name)
            precondition(t.count == sd.info(named: name)!.elementCount)
        }
        let vb = try WeightLoader(sd, stripPrefix: "module.")
        _ = vb.unusedTensors
    } catch {
        _ = error.description
    }

    // 2. The input as a bare pickle (reaches opcode handling without needing a valid zip).
    do {
        let reader = ByteReader(input, context: "fuzz pickle")
        let entries = try StateDict.tensors(fromPickle: reader) { (dtype, key, count) throws(CheckpointError) -> StorageRef in
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, bytes <= syntheticStorage.count else {
                throw .storageSizeMismatch(record: key, expectedBytes: overflow ? Int.max : bytes, actualBytes: syntheticStorage.count)
            }
            return StorageRef(key: key, dtype: dtype, elementCount: count, fileOffset: 0)
        }
        for (_, layout) in entries {
            let t = layout.materialize(from: syntheticStorage.buffer)
            precondition(t.count == layout.elementCount)
        }
    } catch {
        _ = error.description
    }

    // 3. The input as a safetensors JSON header.
    do {
        _ = try JSONParser.parse(input)
    } catch {
        _ = error.description
    }
    return 0
}
