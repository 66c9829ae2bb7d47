import Tensor

/// safetensors reader.
/// ref: https://github.com/huggingface/safetensors — format: u64 little-endian header
///      length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
///      "__metadata__": {str: str}}, then the data section; offsets are relative to the
///      data section. Validation mirrors safetensors/src/tensor.rs `Metadata::validate`:
///      byte ranges must tile the data section exactly (no gap, no overlap).
enum SafeTensors {
    /// safetensors rejects headers above 100 MB (`MAX_HEADER_SIZE`).
    static let maxHeaderSize = 100_000_000

    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    static func parseHeader(_ file: ByteReader) throws(CheckpointError) -> (entries: [Entry], metadata: [String: String], dataStart: Int) {
        let rawLength = try file.u64(0)
        guard rawLength <= UInt64(maxHeaderSize) else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "header length \(rawLength) exceeds the \(maxHeaderSize)-byte limit")
        }
        let headerLength = Int(rawLength)
        let header = try file.slice(8, headerLength)
        let dataStart = 8 + headerLength
        let dataLength = file.count - dataStart

        guard case let .object(members) = try JSONParser.parse(header) else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "header is not a JSON object")
        }
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw CheckpointError.invalidHeader(offset: 0, reason: "__metadata__ is a \(value.typeName), not an object")
                }
                for (k, v) in pairs {
                    guard case let .string(s) = v else {
                        throw CheckpointError.invalidHeader(offset: 0, reason: "__metadata__ value for '\(k)' is a \(v.typeName), not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries.append(try entry(name: name, value, dataLength: dataLength))
        }
        try checkTiling(entries, dataLength: dataLength)
        return (entries, metadata, dataStart)
    }

    private static func entry(name: String, _ value: JSONValue, dataLength: Int) throws(CheckpointError) -> Entry {
        guard case let .object(fields) = value else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)' is a \(value.typeName), not an object")
        }
        func field(_ key: String) throws(CheckpointError) -> JSONValue {
            guard let v = fields.first(where: { $0.key == key })?.value else {
                throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)' has no '\(key)'")
            }
            return v
        }
        func integers(_ key: String) throws(CheckpointError) -> [Int] {
            guard case let .array(items) = try field(key) else {
                throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)': '\(key)' is not an array")
            }
            var out: [Int] = []
            for item in items {
                guard case let .integer(i) = item, i >= 0 else {
                    throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)': '\(key)' must hold non-negative integers")
                }
                out.append(i)
            }
            return out
        }
        guard case let .string(dtypeName) = try field("dtype") else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)': 'dtype' is not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw CheckpointError.unsupportedDType(name: dtypeName, tensor: name) }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "entry '\(name)': data_offsets must be [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        var count = 1
        for d in shape {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw CheckpointError.tensorTooLarge(tensor: name, shape: shape) }
            count = m
        }
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o else { throw CheckpointError.tensorTooLarge(tensor: name, shape: shape) }
        guard begin <= end, end <= dataLength else {
            throw CheckpointError.invalidTensorLayout(tensor: name, reason: "data_offsets [\(begin), \(end)] outside the \(dataLength)-byte data section")
        }
        guard end - begin == bytes else {
            throw CheckpointError.invalidTensorLayout(tensor: name, reason: "shape \(shape) of \(dtype) needs \(bytes) bytes, data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func checkTiling(_ entries: [Entry], dataLength: Int) throws(CheckpointError) {
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        var previous: String?
        for e in sorted {
            if e.begin < cursor {
                throw CheckpointError.invalidTensorLayout(tensor: e.name, reason: "bytes [\(e.begin), \(e.end)) overlap tensor '\(previous ?? "")'")
            }
            if e.begin > cursor {
                throw CheckpointError.invalidTensorLayout(tensor: e.name, reason: "gap of \(e.begin - cursor) byte(s) before its data at \(e.begin)")
            }
            cursor = e.end
            previous = e.name
        }
        guard cursor == dataLength else {
            throw CheckpointError.invalidHeader(offset: 0, reason: "data section has \(dataLength - cursor) byte(s) not covered by any tensor")
        }
    }
}

extension StateDict {
    convenience init(safetensors bytes: CheckpointBytes) throws(CheckpointError) {
        let file = ByteReader(bytes.buffer, context: "safetensors file")
        let (entries, metadata, dataStart) = try SafeTensors.parseHeader(file)
        var layouts: [(name: String, layout: TensorLayout)] = []
        layouts.reserveCapacity(entries.count)
        for e in entries {
            let layout = try TensorLayout.validated(
                name: e.name, dtype: e.dtype, shape: e.shape, strides: Tensor.strides(of: e.shape), storageOffset: 0,
                storageElements: (e.end - e.begin) / e.dtype.byteSize, storageByteOffset: dataStart + e.begin)
            layouts.append((e.name, layout))
        }
        try self.init(format: .safetensors, entries: layouts, metadata: metadata, bytes: bytes)
    }
}
