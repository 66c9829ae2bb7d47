import Foundation
import Imaging
import Messaging
import XCTest

/// Restart cost bounded by the cache, and old images still answered (issue 15): a restarted
/// decoder replays only its window, and a prompt for an image it does not hold (evicted, or
/// older than the window) is answered by fetching the embedding at its indexed offsets —
/// never by re-encoding.
final class EmbeddingFetchTests: XCTestCase {
    func testPromptsForImagesTheCacheDoesNotHoldAreFetchedNotReencoded() async throws {
        try Fixtures.requireCheckpoint()
        let partitions = 8
        let cluster = try await TestCluster(partitions: partitions)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")   // f16: 2 MiB per embedding
        // 5 MiB holds one decoded (f32, 4 MiB) embedding.
        try cluster.start("segflow-prompt-decoder", name: "decoder-1", extra: ["--cache-mb", "5"])
        // Four images on four partitions (librdkafka's mock keeps ~5 MiB per partition).
        var ids: [String] = []
        var used = Set<Int32>()
        var n = 0
        while ids.count < 4 {
            let id = "old-\(n)"; n += 1
            let p = KafkaPartitioner.murmur2Partition(key: Array(id.utf8), partitions: partitions)
            if used.insert(p).inserted { ids.append(id) }
        }
        let full = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        var records: [ProducerRecord] = []
        for (i, id) in ids.enumerated() {
            let (w, h, x0) = (300, 240, 10 * i)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = full.pixels[((y + 20) * full.width + x0 + x) * 3 + c] } } }
            records.append(record(SegflowTopics.images, key: id, ImageRequest(requestID: "\(id)-img", imageID: id,
                                                                               image: .png(try PNG.encode(try RGBImage(width: w, height: h, pixels: px)))).encode(),
                                  requestID: "\(id)-img"))
        }
        try await cluster.send(records)
        func ask(_ tag: String) async throws -> [String: MaskResult] {
            let prompts = ids.map { PromptRequest(requestID: "\($0)-\(tag)", imageID: $0, boxes: [.init(x0: 40, y0: 10, x1: 260, y1: 230)]) }
            try await cluster.send(prompts.map { record(SegflowTopics.prompts, key: $0.imageID, $0.encode(), requestID: $0.requestID) })
            let want = Set(prompts.map(\.requestID))
            let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { Set(results($0).map(\.requestID)).isSuperset(of: want) }
            return Dictionary(results(got).filter { want.contains($0.requestID) }.map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        }
        let first = try await ask("p1")
        XCTAssertEqual(first.count, 4)
        for r in first.values { XCTAssertNil(r.error, "\(r.requestID): \(r.error?.message ?? "")") }

        cluster.kill9("decoder-1")
        let restart = Date()
        try cluster.start("segflow-prompt-decoder", name: "decoder-2", extra: ["--cache-mb", "5"])
        let second = try await ask("p2")
        let answered = Date().timeIntervalSince(restart)
        XCTAssertEqual(second.count, 4)
        for id in ids {
            let r = second["\(id)-p2"]
            XCTAssertNil(r?.error, "\(id): \(r?.error?.message ?? "no answer"); decoder-2:\n\(cluster.log("decoder-2").suffix(3000))")
            XCTAssertEqual(r.map { rleCounts($0.masks) }, first["\(id)-p1"].map { rleCounts($0.masks) }, "\(id): the fetched embedding answers as before")
        }
        let log = cluster.log("decoder-2")
        XCTAssertGreaterThanOrEqual(log.components(separatedBy: "fetched an indexed embedding").count - 1, 3,
                                    "the cache holds one embedding: the others came from the index\n\(log.suffix(3000))")
        XCTAssertEqual(cluster.log("encoder").components(separatedBy: "] encoded").count - 1, 4, "no image was re-encoded")
        print("restart to four answers (one cached, three fetched): \(String(format: "%.1f", answered)) s")
    }
}
