import Foundation
import Tensor

/// Name, dtype and shape of one stored tensor.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public var elementCount: Int { shape.reduce(1, *) }
}

/// The tensors of a checkpoint, by name, in file order, converted to Float32 on demand.
///
/// The file is memory-mapped; `tensor(named:)` converts one tensor at a time, so a
/// model only pays for what it loads. All structure (header, zip, pickle, every
/// tensor's byte range) is validated when the `StateDict` is created, so accessing a
/// listed tensor cannot read out of bounds.
public final class StateDict: Sendable {
    public enum Format: String, Sendable {
        case safetensors
        /// `torch.save` zip archive (.pth / .pt / .bin).
        case pytorch
    }

    public let format: Format
    /// Every tensor in file order (safetensors header order; pickle order for PyTorch,
    /// which is `state_dict()` order). Nested containers are flattened with dots:
    /// `{"model": {"w": t}}` → `model.w`.
    public let tensors: [TensorInfo]
    /// safetensors `__metadata__` (empty for PyTorch checkpoints).
    public let metadata: [String: String]

    let layouts: [TensorLayout]
    private let index: [String: Int]
    private let bytes: CheckpointBytes

    init(format: Format, entries: [(name: String, layout: TensorLayout)], metadata: [String: String],
         bytes: CheckpointBytes) throws(CheckpointError) {
        var index: [String: Int] = [:]
        index.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() {
            guard index.updateValue(i, forKey: e.name) == nil else { throw .duplicateTensor(name: e.name) }
        }
        self.format = format
        self.tensors = entries.map { TensorInfo(name: $0.name, dtype: $0.layout.dtype, shape: $0.layout.shape) }
        self.layouts = entries.map(\.layout)
        self.index = index
        self.metadata = metadata
        self.bytes = bytes
    }

    /// Opens a checkpoint, detecting the format from its leading bytes.
    public convenience init(contentsOf url: URL) throws(CheckpointError) {
        try self.init(contentsOfFile: url.path)
    }

    public convenience init(contentsOfFile path: String) throws(CheckpointError) {
        try self.init(checkpointBytes: try CheckpointBytes(mapping: path))
    }

    /// Parses an in-memory checkpoint (the bytes are copied).
    public convenience init(bytes: some Collection<UInt8>) throws(CheckpointError) {
        try self.init(checkpointBytes: CheckpointBytes(copying: bytes))
    }

    private convenience init(checkpointBytes bytes: CheckpointBytes) throws(CheckpointError) {
        switch try Self.detectFormat(bytes.buffer) {
        case .safetensors: try self.init(safetensors: bytes)
        case .pytorch: try self.init(pytorch: bytes)
        }
    }

    /// Zip magic → PyTorch; a leading pickle PROTO → legacy PyTorch (refused); otherwise
    /// a plausible safetensors header (u64 length followed by '{').
    /// ref: torch/serialization.py `_is_zipfile`, `_legacy_load` (MAGIC_NUMBER pickle first)
    static func detectFormat(_ b: UnsafeRawBufferPointer) throws(CheckpointError) -> Format {
        let lead = Array(b.prefix(16))
        if lead.starts(with: [0x50, 0x4b, 0x03, 0x04]) || lead.starts(with: [0x50, 0x4b, 0x05, 0x06]) {
            return .pytorch
        }
        // Checked before the pickle test: a 128…255-byte header length starts with 0x80 too.
        if lead.count > 8 && lead[8] == UInt8(ascii: "{") { return .safetensors }
        // PROTO 2, then LONG1 of MAGIC_NUMBER 0x1950a86a20f9469cfc6c (or any protocol-2 pickle).
        if lead.starts(with: [0x80, 0x02]) { throw .legacyPyTorchFormat }
        throw .unknownFormat(leadingBytes: lead)
    }

    public var names: [String] { tensors.map(\.name) }
    public var count: Int { tensors.count }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public func info(named name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// The tensor converted to Float32 (row-major, non-contiguous views materialised).
    public func tensor(named name: String) throws(CheckpointError) -> Tensor {
        guard let i = index[name] else { throw .missingTensor(path: name, expectedShape: nil) }
        return layouts[i].materialize(from: bytes.buffer)
    }
}
