/// A minimal read-only zip reader for `torch.save` archives: central directory
/// (including ZIP64), stored entries only. Entry data is returned as byte ranges into
/// the (memory-mapped) file — nothing is copied.
/// ref: PKWARE APPNOTE.TXT §4.3 (layout), §4.4 (fields), §4.5.3 (ZIP64 extra field);
///      caffe2/serialize/inline_container.cc (PyTorchStreamReader: archive name, 64-byte
///      aligned records via local-header padding).
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let flags: UInt16
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
    }

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50
    private static let centralHeaderSize = 46
    private static let localHeaderSize = 30

    let entries: [Entry]
    private let index: [String: Int]
    private let reader: ByteReader

    init(_ reader: ByteReader) throws(CheckpointError) {
        self.reader = reader
        let (count, cdOffset, cdSize) = try Self.findCentralDirectory(reader)
        // Each central header is at least 46 bytes, so the count is bounded by the file.
        guard cdOffset <= reader.count, cdSize <= reader.count - cdOffset else {
            throw CheckpointError.invalidZip(offset: cdOffset, reason: "central directory (\(cdSize) bytes) extends past the end of the file")
        }
        guard count <= cdSize / Self.centralHeaderSize else {
            throw CheckpointError.invalidZip(offset: cdOffset, reason: "\(count) entries cannot fit in a \(cdSize)-byte central directory")
        }
        let cd = ByteReader(try reader.slice(cdOffset, cdSize), context: "zip central directory", origin: cdOffset)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var index: [String: Int] = [:]
        var p = 0
        for _ in 0 ..< count {
            let at = cdOffset + p
            guard try cd.u32(p) == Self.centralSignature else {
                throw CheckpointError.invalidZip(offset: at, reason: "missing central directory header signature")
            }
            let flags = try cd.u16(p + 8)
            let method = try cd.u16(p + 10)
            var compressed = UInt64(try cd.u32(p + 20))
            var uncompressed = UInt64(try cd.u32(p + 24))
            let nameLength = Int(try cd.u16(p + 28))
            let extraLength = Int(try cd.u16(p + 30))
            let commentLength = Int(try cd.u16(p + 32))
            var localOffset = UInt64(try cd.u32(p + 42))
            let nameBytes = try cd.slice(p + Self.centralHeaderSize, nameLength)
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw CheckpointError.invalidZip(offset: at, reason: "entry name is not valid UTF-8")
            }
            // ZIP64 extended information: present values replace the 0xFFFFFFFF fields, in order.
            let extra = ByteReader(try cd.slice(p + Self.centralHeaderSize + nameLength, extraLength),
                                   context: "zip extra field of '\(name)'", origin: at + Self.centralHeaderSize + nameLength)
            var q = 0
            while q + 4 <= extra.count {
                let id = try extra.u16(q)
                let size = Int(try extra.u16(q + 2))
                if id == 0x0001 {
                    var r = q + 4
                    let end = q + 4 + size
                    func next() throws(CheckpointError) -> UInt64 {
                        guard r + 8 <= end else {
                            throw CheckpointError.invalidZip(offset: extra.origin + r, reason: "ZIP64 extra field too short for '\(name)'")
                        }
                        defer { r += 8 }
                        return try extra.u64(r)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                q += 4 + size
            }
            guard compressed <= UInt64(reader.count), uncompressed <= UInt64(Int.max),
                  localOffset <= UInt64(reader.count) else {
                throw CheckpointError.invalidZip(offset: at, reason: "entry '\(name)' has sizes/offsets beyond the file")
            }
            guard index[name] == nil else {
                throw CheckpointError.invalidZip(offset: at, reason: "duplicate entry '\(name)'")
            }
            index[name] = entries.count
            entries.append(Entry(name: name, method: method, flags: flags, compressedSize: Int(compressed),
                                 uncompressedSize: Int(uncompressed), localHeaderOffset: Int(localOffset)))
            p += Self.centralHeaderSize + nameLength + extraLength + commentLength
        }
        self.entries = entries
        self.index = index
    }

    /// Locates the central directory through the end-of-central-directory record,
    /// following the ZIP64 locator when a field is saturated.
    private static func findCentralDirectory(_ reader: ByteReader) throws(CheckpointError) -> (count: Int, offset: Int, size: Int) {
        guard reader.count >= 22 else {
            throw CheckpointError.invalidZip(offset: 0, reason: "file of \(reader.count) bytes is too small for a zip archive")
        }
        // The EOCD is 22 bytes plus a comment of at most 65535 bytes, at the very end.
        var eocd = -1
        var candidate = reader.count - 22
        let lowest = max(0, reader.count - 22 - 0xFFFF)
        while candidate >= lowest {
            if try reader.u32(candidate) == eocdSignature,
               Int(try reader.u16(candidate + 20)) == reader.count - candidate - 22 {
                eocd = candidate
                break
            }
            candidate -= 1
        }
        guard eocd >= 0 else {
            throw CheckpointError.invalidZip(offset: reader.count, reason: "end of central directory record not found")
        }
        var count = UInt64(try reader.u16(eocd + 10))
        var size = UInt64(try reader.u32(eocd + 12))
        var offset = UInt64(try reader.u32(eocd + 16))
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            let locator = eocd - 20
            guard locator >= 0, try reader.u32(locator) == zip64LocatorSignature else {
                throw CheckpointError.invalidZip(offset: eocd, reason: "saturated EOCD fields but no ZIP64 locator")
            }
            let recordOffset = try reader.u64(locator + 8)
            guard recordOffset <= UInt64(reader.count) else {
                throw CheckpointError.invalidZip(offset: locator, reason: "ZIP64 end record offset \(recordOffset) beyond the file")
            }
            let record = Int(recordOffset)
            guard try reader.u32(record) == zip64EOCDSignature else {
                throw CheckpointError.invalidZip(offset: record, reason: "missing ZIP64 end of central directory signature")
            }
            count = try reader.u64(record + 32)
            size = try reader.u64(record + 40)
            offset = try reader.u64(record + 48)
        }
        guard count <= UInt64(reader.count), size <= UInt64(reader.count), offset <= UInt64(reader.count) else {
            throw CheckpointError.invalidZip(offset: eocd, reason: "central directory fields exceed the file size")
        }
        return (Int(count), Int(offset), Int(size))
    }

    func entry(named name: String) -> Entry? {
        index[name].map { entries[$0] }
    }

    /// Absolute byte range of a stored entry's data, validated against the local header.
    func dataRange(of name: String) throws(CheckpointError) -> Range<Int> {
        guard let e = entry(named: name) else { throw CheckpointError.missingZipEntry(name: name) }
        guard e.method == 0 else { throw CheckpointError.compressedZipEntry(name: name, method: Int(e.method)) }
        guard e.flags & 0x1 == 0 else {
            throw CheckpointError.invalidZip(offset: e.localHeaderOffset, reason: "entry '\(name)' is encrypted")
        }
        guard e.compressedSize == e.uncompressedSize else {
            throw CheckpointError.invalidZip(offset: e.localHeaderOffset,
                                             reason: "stored entry '\(name)' has compressed size \(e.compressedSize) ≠ size \(e.uncompressedSize)")
        }
        let h = e.localHeaderOffset
        guard try reader.u32(h) == Self.localSignature else {
            throw CheckpointError.invalidZip(offset: h, reason: "missing local header signature for '\(name)'")
        }
        let nameLength = Int(try reader.u16(h + 26))
        let extraLength = Int(try reader.u16(h + 28))
        let localName = try reader.slice(h + Self.localHeaderSize, nameLength)
        guard localName.elementsEqual(name.utf8) else {
            throw CheckpointError.invalidZip(offset: h, reason: "local header name differs from central directory name '\(name)'")
        }
        let start = h + Self.localHeaderSize + nameLength + extraLength
        guard start <= reader.count, e.compressedSize <= reader.count - start else {
            throw CheckpointError.truncated(context: "zip entry '\(name)'", offset: start, needed: e.compressedSize,
                                            available: max(0, reader.count - start))
        }
        return start ..< start + e.compressedSize
    }
}
