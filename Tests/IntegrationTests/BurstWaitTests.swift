import Foundation
import Imaging
import Messaging
import XCTest

/// A burst of images outruns the prompt wait unless the wait follows the encoder's progress
/// (issue 15): prompts sent with their images must all be answered while the encoder works
/// through the burst, even when the burst takes several times --max-wait-ms.
final class BurstWaitTests: XCTestCase {
    func testPromptsBehindABurstWaitWhileTheEncoderProgresses() async throws {
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 2)
        defer { cluster.stop() }
        let waitMs = 4000
        try cluster.start("segflow-image-encoder", name: "encoder")
        try cluster.start("segflow-prompt-decoder", name: "decoder", extra: ["--max-wait-ms", "\(waitMs)", "--max-park-ms", "180000"])
        // Both services ready (group joined) before the burst: the wait is what is tested.
        let warm = ImageRequest(requestID: "warm-img", imageID: "warm", image: .png(try Fixtures.png("chelsea_crop")))
        let warmPrompt = PromptRequest(requestID: "warm-p", imageID: "warm", boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 100)])
        try await cluster.send([record(SegflowTopics.prompts, key: "warm", warmPrompt.encode(), requestID: "warm-p"),
                                record(SegflowTopics.images, key: "warm", warm.encode(), requestID: "warm-img")])
        _ = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(120)) { results($0).contains { $0.requestID == "warm-p" } }

        let full = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        var records: [ProducerRecord] = []
        var ids: Set<String> = []
        let t0 = Date()
        for i in 0..<14 {
            let (w, h, x0) = (320, 260, 4 * i)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = full.pixels[((y + 20) * full.width + x0 + x) * 3 + c] } } }
            let png = try PNG.encode(try RGBImage(width: w, height: h, pixels: px))
            let imageID = "burst-\(i)"
            let p = PromptRequest(requestID: "\(imageID)-p", imageID: imageID, boxes: [.init(x0: 40, y0: 10, x1: 280, y1: 250)])
            ids.insert(p.requestID)
            records.append(record(SegflowTopics.prompts, key: imageID, p.encode(), requestID: p.requestID))
            records.append(record(SegflowTopics.images, key: imageID, ImageRequest(requestID: "\(imageID)-img", imageID: imageID, image: .png(png)).encode(),
                                  requestID: "\(imageID)-img"))
        }
        try await cluster.send(records)
        let got = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(240)) { seen in
            Set(results(seen).map(\.requestID)).isSuperset(of: ids)
        }
        let elapsed = Date().timeIntervalSince(t0)
        let answers = Dictionary(results(got).filter { ids.contains($0.requestID) }.map { ($0.requestID, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(answers.keys), ids)
        for (id, r) in answers { XCTAssertNil(r.error, "\(id): \(r.error?.message ?? "")") }
        // The test means something only if the burst outlasted the plain wait.
        XCTAssertGreaterThan(elapsed, Double(waitMs) / 1000 * 1.5, "the burst finished too fast to exercise the wait (\(elapsed) s)")
    }
}
