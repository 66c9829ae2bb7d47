/// Reading `torch.save` zip checkpoints.
/// ref: torch/serialization.py `_save` (zip layout: <archive>/data.pkl, <archive>/data/<key>,
///      <archive>/byteorder, <archive>/version) and `_load` (persistent_load, byteorder
///      check); caffe2/serialize/inline_container.cc (archive name = first entry's folder).
extension StateDict {
    /// Deepest container nesting flattened into names (`a.b.c…`).
    static let maxNestingDepth = 32
    /// Upper bound on container entries visited while flattening; a pickle can reference
    /// the same dict from many places (memo), so the walk is budgeted, not just the depth.
    static let maxFlattenVisits = 1 << 22

    convenience init(pytorch bytes: CheckpointBytes) throws(CheckpointError) {
        let file = ByteReader(bytes.buffer, context: "checkpoint file")
        let zip = try ZipArchive(file)
        guard let first = zip.entries.first else {
            throw CheckpointError.invalidZip(offset: 0, reason: "archive has no entries")
        }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw CheckpointError.invalidZip(offset: first.localHeaderOffset,
                                             reason: "first entry '\(first.name)' is not inside an archive folder (not a torch.save file)")
        }
        let prefix = String(first.name[...slash])

        if zip.entry(named: prefix + "byteorder") != nil {
            let range = try zip.dataRange(of: prefix + "byteorder")
            let order = String(decoding: UnsafeRawBufferPointer(rebasing: bytes.buffer[range]), as: UTF8.self)
            guard order == "little" else {
                throw CheckpointError.invalidZip(offset: range.lowerBound, reason: "byteorder '\(order.prefix(16))' is not supported (only little-endian)")
            }
        }

        let pickleRange = try zip.dataRange(of: prefix + "data.pkl")
        let pickle = ByteReader(UnsafeRawBufferPointer(rebasing: bytes.buffer[pickleRange]),
                                context: "pickle \(prefix)data.pkl", origin: pickleRange.lowerBound)

        let entries = try Self.tensors(fromPickle: pickle) { (dtype, key, elementCount) throws(CheckpointError) -> StorageRef in
            let record = prefix + "data/" + key
            let range = try zip.dataRange(of: record)
            let (expected, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, expected == range.count else {
                throw CheckpointError.storageSizeMismatch(record: record, expectedBytes: overflow ? Int.max : expected,
                                                          actualBytes: range.count)
            }
            return StorageRef(key: key, dtype: dtype, elementCount: elementCount, fileOffset: range.lowerBound)
        }
        try self.init(format: .pytorch, entries: entries, metadata: [:], bytes: bytes)
    }

    /// Runs the restricted unpickler and turns every tensor it finds into a validated
    /// layout. `resolveStorage` maps persistent ids to bytes of the file.
    static func tensors(fromPickle pickle: ByteReader, resolveStorage: @escaping StorageResolver)
        throws(CheckpointError) -> [(name: String, layout: TensorLayout)] {
        var unpickler = Unpickler(pickle, resolveStorage: resolveStorage)
        let root = try unpickler.load()

        var found: [(name: String, ref: TensorRef)] = []
        var visits = 0
        try Self.flatten(root, name: "", depth: 0, arena: unpickler.arena, visits: &visits, into: &found)

        var entries: [(name: String, layout: TensorLayout)] = []
        entries.reserveCapacity(found.count)
        for (name, t) in found {
            let layout = try TensorLayout.validated(
                name: name, dtype: t.storage.dtype, shape: t.shape, strides: t.strides, storageOffset: t.storageOffset,
                storageElements: t.storage.elementCount, storageByteOffset: t.storage.fileOffset)
            entries.append((name, layout))
        }
        return entries
    }

    /// Collects tensors from nested dicts/lists, joining keys with '.'; other values
    /// (ints, strings, optimizer hyper-parameters, tuples) are skipped.
    private static func flatten(_ value: PickleValue, name: String, depth: Int, arena: [PickleContainer],
                                visits: inout Int, into out: inout [(name: String, ref: TensorRef)]) throws(CheckpointError) {
        visits += 1
        guard visits <= maxFlattenVisits else {
            throw CheckpointError.malformedPickle(offset: 0, opcode: "STOP", reason: "object graph exceeds \(maxFlattenVisits) entries")
        }
        func child(_ key: String) -> String { name.isEmpty ? key : name + "." + key }
        switch value {
        case let .tensor(t):
            out.append((name, t))
        case let .dict(id):
            guard depth < maxNestingDepth else {
                throw CheckpointError.malformedPickle(offset: 0, opcode: "STOP", reason: "containers nested deeper than \(maxNestingDepth) at '\(name)'")
            }
            guard case let .dict(d) = arena[id] else { return }
            for (key, v) in zip(d.keys, d.values) {
                switch key {
                case let .string(s): try flatten(v, name: child(s), depth: depth + 1, arena: arena, visits: &visits, into: &out)
                case let .int(i): try flatten(v, name: child(String(i)), depth: depth + 1, arena: arena, visits: &visits, into: &out)
                default: continue
                }
            }
        case let .list(id):
            guard depth < maxNestingDepth else {
                throw CheckpointError.malformedPickle(offset: 0, opcode: "STOP", reason: "containers nested deeper than \(maxNestingDepth) at '\(name)'")
            }
            guard case let .list(items) = arena[id] else { return }
            for (i, v) in items.enumerated() {
                try flatten(v, name: child(String(i)), depth: depth + 1, arena: arena, visits: &visits, into: &out)
            }
        default:
            return
        }
    }
}
