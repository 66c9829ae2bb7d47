import ArgumentParser
import Foundation
import Imaging
import Pipeline
import SAM

struct SegmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment an image from point and box prompts.",
        discussion: """
            Coordinates are pixels of the original image. Each --box is one prompt (carrying \
            all --point values); with no box, the points form one prompt. --out gets the union \
            of each prompt's best mask (0/255 PNG); --json gets every mask as COCO RLE with its \
            predicted IoU and stability score.

            Examples:
              segflow segment cat.png --model litemedsam --box 60,10,330,290 --out mask.png --overlay overlay.png
              segflow segment cat.png --model sam-vit-b --checkpoint sam_vit_b_01ec64.pth --point 190,150 --multimask --json r.json
            """
    )

    @Argument(help: "Input image (PNG).") var image: String
    @Option(help: "Model: \(SamModelKind.allCases.map(\.rawValue).joined(separator: ", ")).") var model = "litemedsam"
    @Option(help: "Checkpoint path (default for litemedsam: the cached lite_medsam.pth).") var checkpoint: String?
    @Option(name: .customLong("point"), help: "Point prompt x,y[,label] (label 1 foreground, 0 background); repeatable.")
    var points: [String] = []
    @Option(name: .customLong("box"), help: "Box prompt x0,y0,x1,y1; repeatable (one prompt per box).") var boxes: [String] = []
    @Option(help: "Low-res logits from a previous run (--save-logits) fed back as SAM's mask input.") var maskInput: String?
    @Flag(help: "Return 3 masks per prompt with IoU predictions (best one goes to --out).") var multimask = false
    @Option(help: "Binary mask PNG to write.") var out: String?
    @Option(help: "Overlay PNG (image with masks blended) to write.") var overlay: String?
    @Option(help: "Result JSON to write (COCO RLE masks, scores, timings).") var json: String?
    @Option(help: "Write the first prompt's best low-res logits (raw float32) for use as --mask-input.") var saveLogits: String?

    func validate() throws {
        if out == nil && overlay == nil && json == nil && saveLogits == nil {
            throw ValidationError("nothing to write: give --out, --overlay, --json or --save-logits")
        }
    }

    func run() async throws {
        let kind = try ModelStore.kind(named: model)
        var prompts = try PromptParsing.prompts(points: points, boxes: boxes, multimask: multimask)
        let img = try PNG.decodeRGB(contentsOfFile: image)
        let t0 = InProcessSegmenter.now()
        let sam = try ModelStore.load(kind, checkpoint: checkpoint)
        let loadMs = InProcessSegmenter.now() - t0
        if let maskInput {
            let logits = try InProcessSegmenter.readLogits(path: maskInput, side: sam.promptEncoder.imageEmbeddingSize * 4)
            for i in prompts.indices { prompts[i].maskInput = logits }
        }
        let emb = try sam.embed(rgb: img.pixels, width: img.width, height: img.height)
        let t1 = InProcessSegmenter.now()
        let preds = try sam.predict(emb, prompts)
        let t2 = InProcessSegmenter.now()
        let result = try SegmentationResult(model: kind, width: img.width, height: img.height, prompts: prompts,
                                            predictions: preds,
                                            timingsMs: ["load": loadMs, "encode": t1 - t0 - loadMs, "decode": t2 - t1])
        try InProcessSegmenter.write(result, image: img, out: out, overlay: overlay, json: json)
        if let saveLogits, let first = preds.first {
            let side = first.lowResLogits.shape[1]
            let best = first.bestMaskIndex
            let slice = Array(first.lowResLogits.data[(best * side * side)..<((best + 1) * side * side)])
            try InProcessSegmenter.writeLogits(.init(shape: [side, side], data: slice), path: saveLogits)
        }
        for (i, p) in result.prompts.enumerated() {
            let scores = p.masks.map { String(format: "iou %.3f stability %.3f area %d", $0.predictedIoU, $0.stabilityScore, $0.area) }
            print("prompt \(i): " + scores.enumerated().map { "\($0.offset == p.best ? "*" : " ")[\($0.offset)] \($0.element)" }.joined(separator: "  "))
        }
        print(String(format: "model %@  load %.0f ms  encode %.0f ms  decode %.1f ms", kind.rawValue,
                     result.timingsMs["load"]!, result.timingsMs["encode"]!, result.timingsMs["decode"]!))
        for (flag, path) in [("mask", out), ("overlay", overlay), ("json", json), ("logits", saveLogits)] {
            if let path { print("wrote \(flag): \(path)") }
        }
    }
}
