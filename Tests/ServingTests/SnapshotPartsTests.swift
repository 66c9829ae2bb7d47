import Foundation
import Messaging
import Serving
import XCTest

/// Stream states over one record's share travel as parts (SnapshotParts): the store
/// reassembles them when the snapshot naming them arrives.
final class SnapshotPartsTests: XCTestCase {
    func records(_ state: [UInt8], stream: String, generation: UInt64, partBytes: Int) -> [(key: String, value: [UInt8])] {
        let (parts, manifest) = SnapshotParts.split(state, generation: generation, partBytes: partBytes)
        var out: [(String, [UInt8])] = parts.enumerated().map { k, p in
            let key = SnapshotParts.partKey(stream: stream, generation: generation, part: k)
            return (key, StreamSnapshot(streamID: key, lastFrameIndex: 9, model: "m", trackerState: p, updatedAtMs: 0, lastRequestID: "").encode())
        }
        out.append((stream, StreamSnapshot(streamID: stream, lastFrameIndex: 9, model: "m", trackerState: manifest, updatedAtMs: 0,
                                           lastRequestID: "r9").encode()))
        return out
    }

    func testPartsReassembleAcrossGenerationsAndSlots() async throws {
        let store = StreamStateStore()
        let big = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var offset: Int64 = 0
        for (k, v) in records(big, stream: "cam", generation: 1, partBytes: 1024) {
            try await store.apply(key: k, value: v, partition: 0, offset: offset); offset += 1
        }
        let s1 = await store.snapshot("cam")
        XCTAssertEqual(s1?.trackerState, big)
        let m1 = await store.manifest("cam")
        XCTAssertEqual(m1, SnapshotParts.Manifest(generation: 1, parts: 10, totalBytes: 10_000))
        // Generation 2 (the other slot), written part by part; a crash before its manifest
        // leaves generation 1's snapshot in place.
        let next = Array(big.reversed().prefix(3000))
        let recs = records(next, stream: "cam", generation: 2, partBytes: 1024)
        for (k, v) in recs.dropLast() { try await store.apply(key: k, value: v, partition: 0, offset: offset); offset += 1 }
        let s1b = await store.snapshot("cam")
        XCTAssertEqual(s1b?.trackerState, big, "parts alone change nothing")
        try await store.apply(key: recs.last!.key, value: recs.last!.value, partition: 0, offset: offset); offset += 1
        let s2 = await store.snapshot("cam")
        XCTAssertEqual(s2?.trackerState, next)
        // A part's tombstone does not end the stream.
        try await store.apply(key: SnapshotParts.partKey(stream: "cam", generation: 2, part: 0), value: [], partition: 0, offset: offset)
        offset += 1
        let ended = await store.hasEnded("cam")
        XCTAssertFalse(ended)
        let still = await store.snapshot("cam")
        XCTAssertEqual(still?.trackerState, next)
    }

    func testAManifestWithoutItsPartsIsRefusedNamingThePart() async throws {
        let store = StreamStateStore()
        let recs = records([UInt8](repeating: 7, count: 5000), stream: "cam", generation: 3, partBytes: 1000)
        for (i, (k, v)) in recs.enumerated() where i != 2 {
            do { try await store.apply(key: k, value: v, partition: 0, offset: Int64(i)) } catch {
                XCTAssertTrue("\(error)".contains("lacks part 2 of 5"), "\(error)")
                let none = await store.snapshot("cam")
                XCTAssertNil(none)
                return
            }
        }
        XCTFail("a manifest without part 2 was accepted")
    }

    func testForgedManifestsAndPartsAreBounded() throws {
        var forged = Array("SGSM".utf8)
        forged += [1, 0, 0, 0, 0, 0, 0, 0] + [0xff, 0xff, 0xff, 0x7f] + [0, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertThrowsError(try SnapshotParts.manifest(forged))
        XCTAssertNil(try SnapshotParts.manifest(Array("S2T1xxxx".utf8)), "a whole state is not a manifest")
        XCTAssertThrowsError(try SnapshotParts.part(Array("SGPP".utf8) + [1, 2]))
        XCTAssertEqual(SnapshotParts.stream(ofPartKey: SnapshotParts.partKey(stream: "a/b", generation: 5, part: 3)), "a/b")
        XCTAssertNil(SnapshotParts.stream(ofPartKey: "plain-stream"))
    }
}
