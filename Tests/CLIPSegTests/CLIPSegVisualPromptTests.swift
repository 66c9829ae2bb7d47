import Checkpoint
import CLIPSeg
import Foundation
import Imaging
import Tensor
import TestSupport
import XCTest

/// One-shot CLIPSeg: the example image + mask engineered like the CLIPSeg authors'
/// 'crop_blur_highlight352', then transformers' CLIPSegForImageSegmentation with
/// `conditional_pixel_values` (goldens: Tests/Reference/make_clipseg_fixtures.py).
final class CLIPSegVisualPromptTests: XCTestCase {
    func testEngineeredPromptPixelsMatchTheNumpyReference() throws {
        let g = try Fixtures.visualPromptGolden()
        let pairs = try Fixtures.visualPromptPairs()
        // Pair 0: an ellipse touching the left edge (crop clamped at 0, reflect-101 border, upsampled prompt).
        let a = try CLIPSegVisualPrompt.pixelValues(image: pairs[0].image, mask: pairs[0].mask, size: 96)
        assertClose(a, try g.t("engineered.0"), tolerance: Tolerance.engineeredPixels, "engineered prompt 0")
        // Pair 1: a tall rectangle in a larger image, mask stored as 0/1 (padded sideways, downsampled prompt).
        let b = try CLIPSegVisualPrompt.pixelValues(image: pairs[1].image, mask: pairs[1].mask, size: 96)
        let sub = Ops.slice(Ops.slice(b, axis: 2, step: 3), axis: 3, step: 3)
        assertClose(sub, try g.t("engineered.1_every3"), tolerance: Tolerance.engineeredPixels, "engineered prompt 1 (every 3rd)")
    }

    /// The tiny model, its vision encoder, the one-shot goldens and the two example pairs.
    func loaded() throws -> (model: CLIPSegForImageSegmentation, vision: CLIPSegVisionEncoder, g: StateDict,
                             pairs: [(image: RGBImage, mask: GrayImage)]) {
        let model = try Fixtures.model.get()
        return (model, try XCTUnwrap(model.visionEncoder), try Fixtures.visualPromptGolden(), try Fixtures.visualPromptPairs())
    }

    func testOneExampleLogitsMatchConditionalPixelValues() throws {
        let (model, vision, g, pairs) = try loaded()
        let cond = try vision.visualPromptEmbedding([pairs[0]])
        assertClose(cond, try g.t("features.0"), tolerance: Tolerance.conditionalEmbeddings, "visual prompt embedding 0")
        let query = try Fixtures.golden().t("pixel_values")
        let logits = try model(pixelValues: query, conditioning: .embeddings(cond))
        assertClose(logits, try g.t("logits.0"), tolerance: Tolerance.logits, "one-shot logits")
    }

    func testTwoExamplesAverageTheirEmbeddings() throws {
        let (model, vision, g, pairs) = try loaded()
        assertClose(try vision.visualPromptEmbedding([pairs[1]]), try g.t("features.1"),
                    tolerance: Tolerance.conditionalEmbeddings, "visual prompt embedding 1")
        let mean = try vision.visualPromptEmbedding(pairs)
        assertClose(mean, try g.t("features_mean"), tolerance: Tolerance.conditionalEmbeddings, "mean of two embeddings")
        let logits = try model(pixelValues: try Fixtures.golden().t("pixel_values"), conditioning: .embeddings(mean))
        assertClose(logits, try g.t("logits_mean"), tolerance: Tolerance.logits, "two-shot logits")
    }

    func testBadMasksAreRefusedWithWhatWasWrong() throws {
        let image = try Fixtures.image("visual_prompt")
        let empty = try GrayImage(width: image.width, height: image.height, pixels: .init(repeating: 0, count: image.width * image.height))
        XCTAssertThrowsError(try CLIPSegVisualPrompt.pixelValues(image: image, mask: empty, size: 96)) {
            XCTAssertEqual($0 as? CLIPSegVisualPrompt.Error, .emptyMask(atInputSize: nil))
        }
        let small = try GrayImage(width: 10, height: 10, pixels: .init(repeating: 1, count: 100))
        XCTAssertThrowsError(try CLIPSegVisualPrompt.pixelValues(image: image, mask: small, size: 96)) {
            XCTAssertEqual($0 as? CLIPSegVisualPrompt.Error, .sizeMismatch(image: [88, 72], mask: [10, 10]))
            XCTAssertTrue("\($0)".contains("10x10"), "\($0)")
        }
        // One foreground pixel that nearest resizing to 96×96 skips (source columns 0, 2, 4, …).
        let big = try RGBImage(width: 192, height: 192, pixels: .init(repeating: 128, count: 192 * 192 * 3))
        var pixels = [UInt8](repeating: 0, count: 192 * 192)
        pixels[1 * 192 + 1] = 255
        XCTAssertThrowsError(try CLIPSegVisualPrompt.pixelValues(image: big, mask: try GrayImage(width: 192, height: 192, pixels: pixels), size: 96)) {
            XCTAssertEqual($0 as? CLIPSegVisualPrompt.Error, .emptyMask(atInputSize: 96))
        }
    }

    func testReflect101AndNearestIndexRules() {
        // cv2 BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba
        XCTAssertEqual((-3...10).map { CLIPSegVisualPrompt.reflect101($0, 8) }, [3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4])
        // torch nearest: floor(dst · in/out)
        XCTAssertEqual(CLIPSegVisualPrompt.nearestIndices(from: 5, to: 3), [0, 1, 3])
        XCTAssertEqual(CLIPSegVisualPrompt.nearestIndices(from: 2, to: 5), [0, 0, 0, 1, 1])
    }
}
