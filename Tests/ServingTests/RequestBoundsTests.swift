import Backends
import Messaging
import Serving
import Tensor
import XCTest

/// Per-request bounds and routing checks the services apply before any compute.
final class RequestBoundsTests: XCTestCase {
    func testBoxesPointsAndGridsPastTheirBoundsAreInvalidPrompts() throws {
        let box = PromptRequest.Box(x0: 1, y0: 1, x1: 9, y1: 9)
        XCTAssertEqual(try Conversions.prompts(PromptRequest(requestID: "ok", imageID: "i", boxes: .init(repeating: box, count: RequestLimits.maxBoxes)),
                                               maskSide: 256).count, RequestLimits.maxBoxes)
        for (name, request) in [
            ("boxes", PromptRequest(requestID: "b", imageID: "i", boxes: .init(repeating: box, count: RequestLimits.maxBoxes + 1))),
            ("points", PromptRequest(requestID: "p", imageID: "i", points: .init(repeating: .init(x: 1, y: 1, label: 1), count: RequestLimits.maxPoints + 1))),
        ] {
            XCTAssertThrowsError(try Conversions.prompts(request, maskSide: 256), name) { error in
                XCTAssertEqual((error as? ServingError)?.code, .invalidPrompt)
                XCTAssertTrue("\(error)".contains("at most"), "\(error)")
            }
        }
        XCTAssertNoThrow(try Conversions.amgParameters(AutomaticMaskParams(pointsPerSide: UInt32(RequestLimits.maxPointsPerSide), pointsPerBatch: UInt32(RequestLimits.maxPointsPerBatch))))
        for params in [AutomaticMaskParams(pointsPerSide: UInt32(RequestLimits.maxPointsPerSide + 1)),
                       AutomaticMaskParams(pointsPerBatch: UInt32(RequestLimits.maxPointsPerBatch + 1)),
                       AutomaticMaskParams(pointsPerSide: .max, pointsPerBatch: .max)] {
            XCTAssertThrowsError(try Conversions.amgParameters(params)) { XCTAssertEqual(($0 as? ServingError)?.code, .invalidPrompt) }
        }
    }

    func testRawImagesOfAnySizeAreCheckedWithoutOverflow() throws {
        var rng = SplitMix64(seed: 99)
        let extremes: [UInt32] = [0, 1, 3, 4096, 65_536, 1 << 31, .max]
        for _ in 0..<500 {
            let w = extremes[Int(rng.next() % 7)], h = extremes[Int(rng.next() % 7)]
            let raw = RawImage(rgb8: [UInt8](repeating: 0, count: Int(rng.next() % 50)), width: w, height: h)
            do {
                let image = try WireImage.decode(.raw(raw), maxPixels: 1 << 24)
                XCTAssertEqual(image.width * image.height * 3, raw.rgb8.count, "\(w)x\(h) accepted with \(raw.rgb8.count) bytes")
            } catch {
                XCTAssertTrue([.invalidImage, .imageTooLarge].contains(error.code), "\(w)x\(h): \(error)")
            }
        }
        let ok = try WireImage.decode(.raw(RawImage(rgb8: [UInt8](repeating: 9, count: 12), width: 2, height: 2)), maxPixels: 4)
        XCTAssertEqual([ok.width, ok.height], [2, 2])
    }

    func testReplyTopicsMustBeLegalAndNotTheServicesOwn() throws {
        let topics = ServingTopics(prefix: "acme")
        XCTAssertEqual(try topics.reply(to: ""), "acme.masks")
        XCTAssertEqual(try topics.reply(to: "team-a.replies_1"), "team-a.replies_1")
        XCTAssertEqual(try topics.reply(to: "acme.masks"), "acme.masks")
        for bad in ["acme.images", "acme.embeddings", "acme.prompts", "acme.text", "acme.prompt-pairs", "acme.dead-letter",
                    "with space", "slash/x", "..", String(repeating: "a", count: 250)] {
            XCTAssertThrowsError(try topics.reply(to: bad), bad) { XCTAssertEqual(($0 as? ServingError)?.code, .invalidPrompt, bad) }
        }
    }
}
