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

    /// A restarted decoder's restore reads its window, not the topic: each round adds a
    /// backlog of older records (progress notices, the cheapest record a decoder reads; the
    /// mock broker keeps only ~5 MiB per partition, so real embeddings cannot pile up here)
    /// and then one new image; the restarted decoder skips the backlog, reads at most its
    /// window and answers the new image without re-encoding. Prints restart-to-answer time
    /// per backlog (issue 15's restore-time measurement).
    func testRestoreReadsTheWindowHoweverLongTheTopic() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 1)
        defer { cluster.stop() }
        try cluster.start("segflow-image-encoder", name: "encoder")
        let cacheArgs = ["--cache-mb", "5"]
        try cluster.start("segflow-prompt-decoder", name: "decoder-0", extra: cacheArgs)
        let png = try Fixtures.png("chelsea_crop")
        var backlog = 0
        var rows: [String] = []
        for (round, extra) in [0, 10_000, 20_000].enumerated() {
            for start in stride(from: 0, to: extra, by: 5000) {
                try await cluster.send((start..<min(extra, start + 5000)).map {
                    ProducerRecord(topic: SegflowTopics.embeddings, key: "backlog-\($0)", value: [],
                                   headers: [KafkaHeader(name: KafkaHeader.encodingName, string: "backlog-\($0)")])
                })
            }
            backlog += extra
            let id = "recent-\(round)"
            try await cluster.send([record(SegflowTopics.images, key: id, ImageRequest(requestID: "\(id)-img", imageID: id, image: .png(png)).encode(), requestID: "\(id)-img")])
            func ask(_ tag: String) async throws -> MaskResult? {
                let p = PromptRequest(requestID: "\(id)-\(tag)", imageID: id, boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 90)])
                try await cluster.send([record(SegflowTopics.prompts, key: id, p.encode(), requestID: p.requestID)])
                let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { results($0).contains { $0.requestID == p.requestID } }
                return results(got).first { $0.requestID == p.requestID }
            }
            let before = try await ask("before")
            XCTAssertNil(before?.error, "\(id): \(before?.error?.message ?? "")")
            // Past one background commit: a restore starts at the window or at the committed
            // offset, whichever is older (never past an unanswered frame), so what a kill
            // leaves uncommitted (at most one commit interval of records) is read again.
            try await Task.sleep(for: .seconds(2))  // ServiceLoop commits every 500 ms
            cluster.kill9("decoder-\(round)")
            let restart = Date()
            try cluster.start("segflow-prompt-decoder", name: "decoder-\(round + 1)", extra: cacheArgs)
            let after = try await ask("after")
            let seconds = Date().timeIntervalSince(restart)
            XCTAssertNil(after?.error, "\(id): \(after?.error?.message ?? "no answer")")
            XCTAssertEqual(after.map { rleCounts($0.masks) }, before.map { rleCounts($0.masks) }, "\(id): the restored embedding answers as before")
            // "restoring embeddings high=H kafka.offset=O … skipped=S": the records read are H − O.
            let log = cluster.log("decoder-\(round + 1)")
            let line = log.split(separator: "\n").first { $0.contains("restoring embeddings") && $0.contains("high=") && !$0.contains("high=0 ") }
            let done = log.split(separator: "\n").first { $0.contains("restored embeddings") }
            func field(_ name: String, of text: Substring? = nil) -> Int? {
                (text ?? line)?.split(separator: " ").first { $0.hasPrefix("\(name)=") }.flatMap { Int($0.dropFirst(name.count + 1)) }
            }
            let (high, offset, skipped) = (field("high") ?? -1, field("kafka.offset") ?? -1, field("skipped") ?? -1)
            let restoreMs = field("ms", of: done) ?? -1
            XCTAssertNotNil(line, "no restore line in decoder-\(round + 1)'s log")
            XCTAssertLessThanOrEqual(high - offset, 10, "the restore reads at most its window (5 MiB of 512 KiB chunks: 10 records): \(line ?? "")")
            // The mock deletes a partition's oldest records past ~5 MiB, so the topic holds
            // fewer records than were sent; the restore skipped all of them but its window.
            if round > 0 { XCTAssertGreaterThan(skipped, 5000, "the backlog was on the topic and skipped: \(line ?? "")") }
            rows.append(String(format: "%6d records sent before, %6d on the topic: restore read %d records in %@, skipped %d; restart (kill -9) to answer %.1f s",
                               backlog, high - (offset - skipped), high - offset, restoreMs < 0 ? "(not logged)" : "\(restoreMs) ms", skipped, seconds))
        }
        XCTAssertEqual(cluster.log("encoder").components(separatedBy: "] encoded").count - 1, 3, "no image was re-encoded")
        for row in rows { print("restore: \(row)") }
    }
}
