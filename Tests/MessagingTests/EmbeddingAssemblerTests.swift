import Messaging
import XCTest

final class EmbeddingAssemblerTests: XCTestCase {
    private func embedding(_ id: String, bytes: Int = 40, request: String = "req") -> ImageEmbedding {
        var e = Samples.embedding(dataBytes: (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &+ id.count) }, shape: [UInt32(bytes / 4)])
        e.imageID = id
        e.requestID = request
        return e
    }

    func testReassemblesInterleavedOutOfOrderChunksWithDuplicates() throws {
        let a = embedding("a"), b = embedding("b", bytes: 44)
        let chunksA = a.chunked(maxChunkBytes: 16), chunksB = b.chunked(maxChunkBytes: 8)
        XCTAssertEqual(chunksA.count, 3)
        XCTAssertEqual(chunksB.count, 6)
        var assembler = EmbeddingAssembler()
        XCTAssertEqual(try assembler.add(chunksA[2], partition: 0, offset: 10), .incomplete(received: 1, of: 3))
        XCTAssertEqual(try assembler.add(chunksB[0], partition: 1, offset: 20), .incomplete(received: 1, of: 6))
        XCTAssertEqual(try assembler.add(chunksA[0], partition: 0, offset: 11), .incomplete(received: 2, of: 3))
        XCTAssertEqual(try assembler.add(chunksA[0], partition: 0, offset: 12), .duplicate)
        XCTAssertEqual(assembler.commitFloor(partition: 0), 10)
        XCTAssertEqual(assembler.commitFloor(partition: 1), 20)
        XCTAssertEqual(try assembler.add(chunksA[1], partition: 0, offset: 13), .complete(a))
        XCTAssertNil(assembler.commitFloor(partition: 0), "nothing pending in partition 0 any more")
        for chunk in chunksB.dropFirst().dropLast() { _ = try assembler.add(chunk, partition: 1, offset: 21) }
        XCTAssertEqual(try assembler.add(chunksB.last!, partition: 1, offset: 30), .complete(b))
        XCTAssertEqual(assembler.pendingCount, 0)
        XCTAssertEqual(assembler.pendingBytes, 0)
    }

    func testWholeEmbeddingPassesThrough() throws {
        var assembler = EmbeddingAssembler()
        let whole = embedding("w")
        XCTAssertEqual(try assembler.add(whole), .complete(whole))
        XCTAssertEqual(assembler.pendingCount, 0)
    }

    func testInconsistentChunkIsRejectedWithReason() throws {
        var assembler = EmbeddingAssembler()
        let chunks = embedding("x").chunked(maxChunkBytes: 16)
        _ = try assembler.add(chunks[0])
        var other = chunks[1]
        other.model = "other_model"
        XCTAssertThrowsError(try assembler.add(other)) { error in
            XCTAssertEqual((error as? MessagingError)?.errorCode, .invalidEmbedding)
            XCTAssertTrue("\(error)".contains("model other_model"), "\(error)")
        }
    }

    func testMemoryBoundEvictsOldestIncomplete() throws {
        var assembler = EmbeddingAssembler(maxPendingBytes: 64, maxPendingEmbeddings: 10)
        let first = embedding("first").chunked(maxChunkBytes: 16)
        let second = embedding("second").chunked(maxChunkBytes: 16)
        let third = embedding("third").chunked(maxChunkBytes: 16)
        _ = try assembler.add(first[0])
        _ = try assembler.add(first[1])
        _ = try assembler.add(second[0])
        _ = try assembler.add(second[1])  // 64 bytes pending
        XCTAssertEqual(assembler.pendingBytes, 64)
        _ = try assembler.add(third[0])  // must evict "first"
        XCTAssertLessThanOrEqual(assembler.pendingBytes, 64)
        XCTAssertEqual(assembler.takeEvicted().map(\.imageID), ["first"])
        XCTAssertEqual(assembler.takeEvicted(), [], "taking empties the list")
        // The survivor still completes.
        _ = try assembler.add(second[2])
        XCTAssertEqual(assembler.pendingCount, 1)

        var counted = EmbeddingAssembler(maxPendingBytes: 1 << 20, maxPendingEmbeddings: 2)
        for id in ["p", "q", "r"] { _ = try counted.add(embedding(id).chunked(maxChunkBytes: 16)[0]) }
        XCTAssertEqual(counted.pendingCount, 2)
        XCTAssertEqual(counted.takeEvicted().map(\.imageID), ["p"])

        var tiny = EmbeddingAssembler(maxPendingBytes: 16)
        XCTAssertThrowsError(try tiny.add(embedding("big").chunked(maxChunkBytes: 8)[0])) { error in
            XCTAssertTrue("\(error)".contains("exceeds the assembler bound of 16 bytes"), "\(error)")
        }
    }
}
