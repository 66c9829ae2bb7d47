import CProtobufC
import CSegflowProto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns every C allocation made while filling a protobuf-c struct for packing.
///
/// protobuf-c packs from plain C structs holding raw pointers. Copying each Swift value
/// into malloc'd memory that lives exactly as long as the arena keeps the pointers
/// valid without nesting dozens of `withUnsafe…` closures, at the price of one copy
/// (negligible next to the network for our largest payload, a 4 MiB embedding).
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    private func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        // calloc zero-fills, so generated structs start in a defined state before __init.
        guard let pointer = calloc(1, max(byteCount, 1)) else {
            fatalError("CArena: out of memory allocating \(byteCount) bytes")
        }
        allocations.append(pointer)
        return pointer
    }

    /// A NUL-terminated copy. protobuf-c strings end at the first NUL, so text after an
    /// embedded NUL character is not transmitted.
    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(value.utf8)
        let pointer = allocate(utf8.count + 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
        utf8.withUnsafeBufferPointer { source in
            if let base = source.baseAddress {
                UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: utf8.count)
            }
        }
        pointer[utf8.count] = 0
        return pointer
    }

    func bytes(_ value: [UInt8]) -> ProtobufCBinaryData {
        if value.isEmpty { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = allocate(value.count).bindMemory(to: UInt8.self, capacity: value.count)
        value.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: value.count) }
        return ProtobufCBinaryData(len: value.count, data: pointer)
    }

    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        if values.isEmpty { return nil }
        let pointer = allocate(MemoryLayout<T>.stride * values.count).bindMemory(to: T.self, capacity: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// A zeroed struct initialised by the generated `__init`, returned for filling in.
    func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(MemoryLayout<T>.size).bindMemory(to: T.self, capacity: 1)
        initialize(pointer)
        return pointer
    }
}

/// Packs a filled protobuf-c struct with its generated size/pack pair.
func packMessage<T>(
    _ message: UnsafeMutablePointer<T>,
    size: (UnsafePointer<T>) -> Int,
    pack: (UnsafePointer<T>, UnsafeMutablePointer<UInt8>) -> Int
) -> [UInt8] {
    let byteCount = size(message)
    return [UInt8](unsafeUninitializedCapacity: max(byteCount, 1)) { buffer, initialized in
        let written = byteCount == 0 ? 0 : pack(message, buffer.baseAddress!)
        precondition(written == byteCount, "protobuf-c packed \(written) bytes, expected \(byteCount)")
        initialized = written
    }
}

/// Unpacks `bytes` with a generated `__unpack`, reads the struct, then frees it.
///
/// protobuf-c returns NULL for anything it cannot parse (truncated input, bad wire
/// types, overlong varints, lengths past the end) and never reads outside the buffer,
/// so this is the single place where malformed input turns into a thrown error.
/// ref: protobuf-c.h, protobuf_c_message_unpack(): "Returns NULL on failure".
func unpackMessage<T, R>(
    _ bytes: [UInt8],
    name: String,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<T>?,
    free freeUnpacked: (UnsafeMutablePointer<T>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void,
    read: (T) throws -> R
) throws -> R {
    let parsed: UnsafeMutablePointer<T>? = bytes.withUnsafeBufferPointer { buffer in
        // An empty buffer may have a nil base address; protobuf-c accepts (0, NULL)
        // but pass a valid pointer anyway to stay clear of UB in memcpy-style paths.
        if let base = buffer.baseAddress { return unpack(nil, buffer.count, base) }
        var zero: UInt8 = 0
        return unpack(nil, 0, &zero)
    }
    guard let parsed else { throw MessagingError.invalidProtobuf(message: name, byteCount: bytes.count) }
    defer { freeUnpacked(parsed, nil) }
    return try read(parsed.pointee)
}

/// Reading helpers for unpacked structs; `message` names the protobuf type in errors.
struct FieldReader {
    let message: String

    func string(_ pointer: UnsafeMutablePointer<CChar>?, _ field: String) throws -> String {
        guard let pointer else { return "" }
        // proto3 requires string fields to be UTF-8; protobuf-c 1.4 does not check.
        guard let value = String(validatingCString: pointer) else {
            throw MessagingError.invalidField(message: message, field: field, value: "<\(strlen(pointer)) bytes>",
                                              reason: "not valid UTF-8", code: .invalidProtobuf)
        }
        return value
    }

    func requiredString(_ pointer: UnsafeMutablePointer<CChar>?, _ field: String) throws -> String {
        let value = try string(pointer, field)
        if value.isEmpty { throw MessagingError.missingField(message: message, field: field) }
        return value
    }

    func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    func array<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
        guard count > 0, let pointer else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    func messages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int, _ field: String) throws -> [T] {
        guard count > 0, let pointer else { return [] }
        return try (0..<count).map { index in
            guard let element = pointer[index] else {
                throw MessagingError.missingField(message: message, field: "\(field)[\(index)]")
            }
            return element.pointee
        }
    }

    func invalid(_ field: String, _ value: some CustomStringConvertible, _ reason: String, code: ErrorCode) -> MessagingError {
        .invalidField(message: message, field: field, value: "\(value)", reason: reason, code: code)
    }
}

/// Product of a shape times an element size, nil on overflow (hostile shapes must not trap).
func byteCount(shape: [UInt32], elementSize: Int) -> Int? {
    var total = elementSize
    for dimension in shape {
        let (product, overflow) = total.multipliedReportingOverflow(by: Int(dimension))
        if overflow { return nil }
        total = product
    }
    return total
}
