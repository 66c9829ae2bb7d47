#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Immutable bytes of a checkpoint: either a read-only memory map of the file or an
/// owned copy (tests, fuzzing, in-memory blobs). Lives as long as any `StateDict` made
/// from it, so tensors can be converted lazily.
final class CheckpointBytes: @unchecked Sendable {
    // @unchecked: the memory is never written after init and is released only in deinit.
    let base: UnsafeRawPointer?
    let count: Int
    private let release: Release

    private enum Release {
        case unmap
        case deallocate
        case none
    }

    /// Maps `path` read-only. Empty files are represented without a mapping
    /// (mmap of length 0 fails with EINVAL).
    init(mapping path: String) throws(CheckpointError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .fileUnreadable(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .fileUnreadable(path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .fileUnreadable(path: path, errno: EISDIR) }
        let size = Int(info.st_size)
        if size == 0 {
            base = nil
            count = 0
            release = .none
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != MAP_FAILED else { throw .fileUnreadable(path: path, errno: errno) }
        base = UnsafeRawPointer(mapped)
        count = size
        release = .unmap
    }

    /// Copies `bytes`.
    init(copying bytes: some Collection<UInt8>) {
        let n = bytes.count
        if n == 0 {
            base = nil
            count = 0
            release = .none
            return
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 16)
        buffer.copyBytes(from: bytes)
        base = UnsafeRawPointer(buffer.baseAddress!)
        count = n
        release = .deallocate
    }

    deinit {
        switch release {
        case .unmap: munmap(UnsafeMutableRawPointer(mutating: base), count)
        case .deallocate: base?.deallocate()
        case .none: break
        }
    }

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// Bounds-checked little-endian reads from a byte range. Every accessor validates
/// `offset + size` against the range before touching memory.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    /// Used in error messages ("zip central directory", "pickle", …).
    let context: String
    /// Offset of `bytes` inside the file, added to reported offsets.
    let origin: Int

    init(_ bytes: UnsafeRawBufferPointer, context: String, origin: Int = 0) {
        self.bytes = bytes
        self.context = context
        self.origin = origin
    }

    var count: Int { bytes.count }

    @inline(__always)
    func check(_ offset: Int, _ size: Int) throws(CheckpointError) {
        guard offset >= 0, size >= 0, offset <= bytes.count, size <= bytes.count - offset else {
            throw .truncated(context: context, offset: origin + max(offset, 0), needed: size,
                             available: max(0, bytes.count - max(offset, 0)))
        }
    }

    func u8(_ offset: Int) throws(CheckpointError) -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    func u16(_ offset: Int) throws(CheckpointError) -> UInt16 {
        try check(offset, 2)
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) throws(CheckpointError) -> UInt32 {
        try check(offset, 4)
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) throws(CheckpointError) -> UInt64 {
        try check(offset, 8)
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func slice(_ offset: Int, _ size: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        try check(offset, size)
        return UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + size])
    }
}

#if _endian(big)
#error("Checkpoint readers assume a little-endian host (x86_64, arm64)")
#endif
