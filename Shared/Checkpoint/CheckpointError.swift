#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while reading a checkpoint or binding weights.
///
/// Each case carries the offending value (path, tensor name, byte offset, opcode,
/// shapes) so that the message alone is enough to find the problem.
public enum CheckpointError: Error, Equatable, Sendable {
    /// The file could not be opened, stat'ed or mapped (`errno` from the failing call).
    case fileUnreadable(path: String, errno: Int32)
    /// A read of `needed` bytes at `offset` runs past the end of `context` (`available` bytes).
    case truncated(context: String, offset: Int, needed: Int, available: Int)
    /// Neither a zip (PyTorch) nor a safetensors file.
    case unknownFormat(leadingBytes: [UInt8])
    /// The pre-1.6 `torch.save(..., _use_new_zipfile_serialization=False)` format.
    case legacyPyTorchFormat
    /// The safetensors JSON header is malformed (`offset` is relative to the header start).
    case invalidHeader(offset: Int, reason: String)
    /// The zip container is malformed.
    case invalidZip(offset: Int, reason: String)
    /// A zip entry uses compression (torch.save stores entries uncompressed).
    case compressedZipEntry(name: String, method: Int)
    /// A record the pickle refers to is not in the archive.
    case missingZipEntry(name: String)
    /// A pickle opcode outside the restricted set.
    case unsupportedOpcode(opcode: UInt8, offset: Int)
    /// A GLOBAL outside the allow-list (e.g. `os.system`).
    case forbiddenGlobal(module: String, name: String, offset: Int)
    /// The pickle is structurally wrong at `offset` (stack underflow, wrong argument types, …).
    case malformedPickle(offset: Int, opcode: String, reason: String)
    /// A dtype name this reader does not convert.
    case unsupportedDType(name: String, tensor: String)
    /// A storage record's byte size disagrees with the element count the pickle declares.
    case storageSizeMismatch(record: String, expectedBytes: Int, actualBytes: Int)
    /// A tensor's shape/stride/offset (or byte range) does not fit its storage.
    case invalidTensorLayout(tensor: String, reason: String)
    /// Element or byte counts overflow or exceed what this reader will materialise.
    case tensorTooLarge(tensor: String, shape: [Int])
    /// Two tensors resolve to the same name.
    case duplicateTensor(name: String)
    /// `StateDict.tensor(named:)` / `WeightLoader.tensor` for a name that is not present.
    case missingTensor(path: String, expectedShape: [Int]?)
    /// The stored shape differs from the one the model expects.
    case shapeMismatch(path: String, expected: [Int], actual: [Int])
    /// The stored dtype differs from the one the caller required.
    case dtypeMismatch(path: String, expected: DType, actual: DType)
    /// `WeightLoader.finish()` found tensors that no layer consumed.
    case unusedTensors(names: [String])
}

extension CheckpointError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .fileUnreadable(path, err):
            return "cannot read checkpoint '\(path)': \(String(cString: strerror(err))) (errno \(err))"
        case let .truncated(context, offset, needed, available):
            return "truncated \(context): need \(needed) byte(s) at offset \(offset), only \(available) available"
        case let .unknownFormat(lead):
            let hex = lead.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ")
            return "unknown checkpoint format (leading bytes \(hex)); expected a PyTorch zip (.pth/.pt) or .safetensors file"
        case .legacyPyTorchFormat:
            return "legacy (pre-1.6, non-zip) PyTorch checkpoint; re-save it with torch.save(obj, path) from a current PyTorch"
        case let .invalidHeader(offset, reason):
            return "invalid safetensors header at header offset \(offset): \(reason)"
        case let .invalidZip(offset, reason):
            return "invalid zip archive at offset \(offset): \(reason)"
        case let .compressedZipEntry(name, method):
            return "zip entry '\(name)' is compressed (method \(method)); only stored entries are supported (torch.save stores uncompressed)"
        case let .missingZipEntry(name):
            return "archive has no entry '\(name)'"
        case let .unsupportedOpcode(opcode, offset):
            let name = PickleOpcode(rawValue: opcode).map { " \($0)" } ?? ""
            return "pickle opcode 0x\(String(opcode, radix: 16).leftPadded(to: 2))\(name) at offset \(offset) is not allowed in a weights-only checkpoint"
        case let .forbiddenGlobal(module, name, offset):
            return "pickle GLOBAL '\(module).\(name)' at offset \(offset) is not in the allow-list; refusing to load"
        case let .malformedPickle(offset, opcode, reason):
            return "malformed pickle at offset \(offset) (\(opcode)): \(reason)"
        case let .unsupportedDType(name, tensor):
            return "tensor '\(tensor)': unsupported dtype '\(name)'"
        case let .storageSizeMismatch(record, expected, actual):
            return "storage record '\(record)' holds \(actual) byte(s) but the checkpoint declares \(expected)"
        case let .invalidTensorLayout(tensor, reason):
            return "tensor '\(tensor)': \(reason)"
        case let .tensorTooLarge(tensor, shape):
            return "tensor '\(tensor)': shape \(shape) is too large to load"
        case let .duplicateTensor(name):
            return "duplicate tensor name '\(name)'"
        case let .missingTensor(path, shape):
            return "missing tensor '\(path)'" + (shape.map { " (expected shape \($0))" } ?? "")
        case let .shapeMismatch(path, expected, actual):
            return "tensor '\(path)': expected shape \(expected), checkpoint has \(actual)"
        case let .dtypeMismatch(path, expected, actual):
            return "tensor '\(path)': expected dtype \(expected), checkpoint has \(actual)"
        case let .unusedTensors(names):
            let shown = names.prefix(10).joined(separator: ", ")
            return "\(names.count) checkpoint tensor(s) not used by the model: \(shown)\(names.count > 10 ? ", …" : "")"
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
