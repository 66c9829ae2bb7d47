import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM
import Serving
import Client
import Embedded
import XCTest

/// Video tracking: the previous frame's low-res logits and mask box prompt the next frame.
final class TrackingTests: XCTestCase {
    /// Three "frames": 300×240 windows of chelsea.png sliding right by 12 px per frame.
    func frames() throws -> [RGBImage] {
        let full = try PNG.decodeRGB(try Fixtures.png("chelsea"))
        return try (0..<3).map { f in
            let (w, h, x0) = (300, 240, 40 + 12 * f)
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = full.pixels[((y + 30) * full.width + x0 + x) * 3 + c] } } }
            return try RGBImage(width: w, height: h, pixels: px)
        }
    }

    func testTrackingOverKafkaEqualsInProcess() async throws {
        try Fixtures.requireCheckpoint()
        let sam = try Sam.load(.liteMedSAM, checkpoint: Fixtures.liteMedSAM)
        let images = try frames()
        let initial = SamPrompt(box: (40, 0, 260, 230))
        let local = try VideoTracker.track(sam, frames: images, initial: initial)
        XCTAssertEqual(local.count, 3, "object should be followed through every frame")
        // Later frames are prompted from the previous frame's result, not the initial box.
        XCTAssertNotNil(local[1].prompt.maskInput)

        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let stack = try await EmbeddedStack.start(backends: BackendSet([SAMBackend(sam)]), embeddingDType: .f32, logger: logger)
        let remote: [MaskResult]
        do {
            remote = try await SegflowClient(client: stack.client, logger: logger)
                .track(streamID: "cam-1", frames: try images.map { try PNG.encode($0) },
                       initial: PromptRequest(requestID: "", imageID: "", boxes: [.init(x0: 40, y0: 0, x1: 260, y1: 230)]),
                       model: "litemedsam", timeout: .seconds(120))
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
        XCTAssertEqual(remote.count, local.count)
        for (i, (r, l)) in zip(remote, local).enumerated() {
            guard case let .rle(counts, _, _) = r.masks.first?.encoding else { return XCTFail("frame \(i): no mask") }
            XCTAssertEqual(counts, COCORLE(mask: l.mask).compressedCounts, "frame \(i): Kafka and in-process masks differ")
            XCTAssertEqual(r.frame?.streamID, "cam-1")
            XCTAssertEqual(r.frame?.frameIndex, UInt64(i))
        }
    }
}
