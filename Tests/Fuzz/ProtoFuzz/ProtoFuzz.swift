// libFuzzer harness for the segflow.v1 protobuf decoders (built by ../run-proto-fuzz.sh
// together with Shared/Messaging/Proto/*.swift and the generated protobuf-c code).
//
// Properties checked on every input, for each of the five message types:
//   1. decoding never crashes (ASan catches out-of-bounds reads/writes and leaks);
//   2. any error thrown is a MessagingError;
//   3. anything that decodes re-encodes to bytes that decode and re-encode to the same
//      bytes (a canonical fixed point; compared as bytes because NaN != NaN).

private func check<T>(_ name: String, _ bytes: [UInt8], _ decode: ([UInt8]) throws -> T, _ encode: (T) -> [UInt8]) {
    let value: T
    do {
        value = try decode(bytes)
    } catch is MessagingError {
        return
    } catch {
        fatalError("\(name): unexpected error type \(type(of: error)): \(error)")
    }
    let once = encode(value)
    do {
        let twice = encode(try decode(once))
        if twice != once { fatalError("\(name): re-encoding is not stable (\(once.count) vs \(twice.count) bytes)") }
    } catch {
        fatalError("\(name): own encoding does not decode: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func protoFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    check("ImageRequest", bytes, ImageRequest.init(bytes:), { $0.encode() })
    check("ImageEmbedding", bytes, ImageEmbedding.init(bytes:), { $0.encode() })
    check("PromptRequest", bytes, PromptRequest.init(bytes:), { $0.encode() })
    check("MaskResult", bytes, MaskResult.init(bytes:), { $0.encode() })
    check("ErrorReport", bytes, ErrorReport.init(bytes:), { $0.encode() })
    check("StreamSnapshot", bytes, StreamSnapshot.init(bytes:), { $0.encode() })
    check("EmbeddingLocation", bytes, EmbeddingLocation.init(bytes:), { $0.encode() })
    // Chunk reassembly with whatever decodes as an embedding chunk.
    if let chunk = try? ImageEmbedding(bytes: bytes), !chunk.isComplete {
        var assembler = EmbeddingAssembler(maxPendingBytes: 1 << 16, maxPendingEmbeddings: 4)
        _ = try? assembler.add(chunk, partition: 0, offset: 0)
        _ = try? assembler.add(chunk, partition: 0, offset: 1)
    }
    return 0
}
