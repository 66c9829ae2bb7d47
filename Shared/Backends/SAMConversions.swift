import Foundation
import Imaging
import Messaging
import SAM
import Tensor

/// SAM-family wire ↔ model conversions. Errors carry the stable wire code for the requester.
public enum Conversions {
    /// SAM embedding → wire message (f16 halves the bytes on the wire; README, Large embeddings).
    public static func wire(_ e: SAM.ImageEmbedding, requestID: String, imageID: String, dtype: Messaging.DType,
                            encoderMs: Double, frame: VideoFrame?, createdAtMs: Int64) -> Messaging.ImageEmbedding {
        let data = dtype == .f16 ? LittleEndian.f16Bytes(e.embedding.data) : LittleEndian.f32Bytes(e.embedding.data)
        return Messaging.ImageEmbedding(
            requestID: requestID, imageID: imageID, model: e.model.rawValue,
            originalHeight: UInt32(e.originalSize.height), originalWidth: UInt32(e.originalSize.width),
            inputHeight: UInt32(e.inputSize.height), inputWidth: UInt32(e.inputSize.width),
            dtype: dtype == .f16 ? .f16 : .f32, shape: e.embedding.shape.dropFirst().map { UInt32($0) }, data: data,
            encoderMs: encoderMs, frame: frame, createdAtMs: createdAtMs)
    }

    /// Wire message (complete) → SAM embedding, validated against the model it claims.
    public static func model(_ w: Messaging.ImageEmbedding) throws(ServingError) -> SAM.ImageEmbedding {
        guard let kind = SamModelKind(rawValue: w.model) else { throw ServingError(.unknownModel, "embedding for unknown model '\(w.model)'") }
        let shape = [1] + w.shape.map { Int($0) }
        let n = shape.reduce(1, *)
        let width = w.dtype == .f16 ? 2 : 4
        guard w.shape.count == 3, n > 0, w.data.count == n * width else {
            throw ServingError(.shapeMismatch, "embedding \(w.imageID): shape \(w.shape) needs \(n * width) bytes, got \(w.data.count)")
        }
        guard w.originalHeight > 0, w.originalWidth > 0, w.inputHeight > 0, w.inputWidth > 0 else {
            throw ServingError(.invalidEmbedding, "embedding \(w.imageID): zero image size")
        }
        let values = width == 2 ? LittleEndian.floats(f16: w.data, count: n) : LittleEndian.floats(f32: w.data, count: n)
        return SAM.ImageEmbedding(model: kind, embedding: Tensor(shape: shape, data: values),
                                  originalSize: (Int(w.originalHeight), Int(w.originalWidth)),
                                  inputSize: (Int(w.inputHeight), Int(w.inputWidth)))
    }

    /// One SAM prompt per box (each carrying all points); with no box, one prompt of the
    /// points — the same rule as the command line (PromptParsing.prompts).
    public static func prompts(_ r: PromptRequest, maskSide: Int) throws(ServingError) -> [SamPrompt] {
        guard r.boxes.count <= RequestLimits.maxBoxes else {
            throw ServingError(.invalidPrompt, "prompt \(r.requestID) has \(r.boxes.count) boxes; at most \(RequestLimits.maxBoxes) per request (send more requests for more objects)")
        }
        guard r.points.count <= RequestLimits.maxPoints else {
            throw ServingError(.invalidPrompt, "prompt \(r.requestID) has \(r.points.count) points; at most \(RequestLimits.maxPoints) per request")
        }
        let points = r.points.map { SamPrompt.Point(x: $0.x, y: $0.y, label: Int($0.label)) }
        var mask: Tensor?
        if let m = r.maskInput {
            let values = m.values
            guard values.count == maskSide * maskSide, m.data.count == values.count * 4 else {
                throw ServingError(.shapeMismatch, "mask_input has shape \(m.shape) (\(m.data.count) bytes); expected [1, \(maskSide), \(maskSide)] float32")
            }
            guard values.allSatisfy(\.isFinite) else { throw ServingError(.invalidPrompt, "mask_input contains NaN or infinity") }
            mask = Tensor(shape: [1, 1, maskSide, maskSide], data: values)
        }
        if r.boxes.isEmpty {
            guard !points.isEmpty else { throw ServingError(.invalidPrompt, "prompt \(r.requestID) has no points and no boxes") }
            return [SamPrompt(points: points, maskInput: mask, multimask: r.multimask)]
        }
        return r.boxes.map { SamPrompt(points: points, box: ($0.x0, $0.y0, $0.x1, $0.y1), maskInput: mask, multimask: r.multimask) }
    }

    /// Predictions → wire masks, prompt-major: prompt i's masks are at
    /// [i·M, (i+1)·M) with M = 3 when multimask else 1.
    public static func masks(_ preds: [SamPrediction], width: Int, height: Int, format: OutputFormat,
                             lowResLogits: Bool) throws -> [MaskResult.Mask] {
        var out: [MaskResult.Mask] = []
        for p in preds {
            for i in 0..<p.maskCount {
                let mask = try BinaryMask(width: width, height: height, values: p.mask(i))
                var logits: FloatTensor?
                if lowResLogits {
                    let side = p.lowResLogits.shape[1]
                    logits = FloatTensor(shape: [1, UInt32(side), UInt32(side)],
                                         values: Array(p.lowResLogits.data[(i * side * side)..<((i + 1) * side * side)]))
                }
                out.append(try WireMask.encode(mask, format: format, predictedIoU: p.iouPredictions[i],
                                               stabilityScore: p.stabilityScore(i), lowResLogits: logits))
            }
        }
        return out
    }
}

extension Conversions {
    /// Wire parameters (unset = upstream default; an explicit 0 is 0) → generator
    /// parameters, validated by the generator.
    public static func amgParameters(_ p: AutomaticMaskParams) throws(ServingError) -> AutomaticMaskGenerator.Parameters {
        var a = AutomaticMaskGenerator.Parameters()
        if p.pointsPerSide > 0 { a.pointsPerSide = Int(p.pointsPerSide) }
        if p.pointsPerBatch > 0 { a.pointsPerBatch = Int(p.pointsPerBatch) }
        if let v = p.predIoUThresh { a.predIoUThresh = Double(v) }
        if let v = p.stabilityScoreThresh { a.stabilityScoreThresh = Double(v) }
        if let v = p.stabilityScoreOffset { a.stabilityScoreOffset = Double(v) }
        if let v = p.boxNMSThresh { a.boxNMSThresh = Double(v) }
        a.minMaskRegionArea = Int(p.minMaskRegionArea)
        a.outputMode = .cocoRLE
        guard a.pointsPerSide ?? 0 <= RequestLimits.maxPointsPerSide else {
            throw ServingError(.invalidPrompt, "points_per_side \(p.pointsPerSide) exceeds the bound of \(RequestLimits.maxPointsPerSide)")
        }
        guard a.pointsPerBatch <= RequestLimits.maxPointsPerBatch else {
            throw ServingError(.invalidPrompt, "points_per_batch \(p.pointsPerBatch) exceeds the bound of \(RequestLimits.maxPointsPerBatch)")
        }
        return a
    }

    /// Automatic-mask records → wire masks, in the generator's order.
    public static func masks(_ records: [AutomaticMaskGenerator.MaskRecord], width: Int, height: Int,
                             format: OutputFormat) throws -> [MaskResult.Mask] {
        try records.map { r in
            let encoding: MaskResult.Mask.Encoding = format == .png
                ? .png(try r.rle.decode().pngData())
                : .rle(counts: r.rle.compressedCounts, height: UInt32(height), width: UInt32(width))
            return MaskResult.Mask(encoding: encoding, predictedIoU: r.predictedIoU, stabilityScore: r.stabilityScore,
                                   bbox: .init(x: UInt32(r.bbox[0]), y: UInt32(r.bbox[1]), w: UInt32(r.bbox[2]), h: UInt32(r.bbox[3])),
                                   area: UInt64(r.area), pointCoords: r.pointCoords.flatMap { $0 },
                                   cropBox: .init(x: UInt32(r.cropBox[0]), y: UInt32(r.cropBox[1]), w: UInt32(r.cropBox[2]), h: UInt32(r.cropBox[3])))
        }
    }
}

extension Conversions {
    /// Wire masks of an "everything" answer → the generator's records (COCO-RLE mode), so
    /// `segflow everything --json` writes one schema whichever path computed the masks.
    public static func records(_ masks: [MaskResult.Mask]) throws -> [AutomaticMaskGenerator.MaskRecord] {
        try masks.map { m in
            let (h, w, counts) = try WireMask.rle(m)
            let rle = try COCORLE(height: h, width: w, compressedCounts: counts)
            let points = stride(from: 0, to: m.pointCoords.count - 1, by: 2).map { [m.pointCoords[$0], m.pointCoords[$0 + 1]] }
            let crop = m.cropBox.map { [Int($0.x), Int($0.y), Int($0.w), Int($0.h)] } ?? [0, 0, w, h]
            return AutomaticMaskGenerator.MaskRecord(
                segmentation: .cocoRLE(rle), rle: rle, area: Int(m.area),
                bbox: [Int(m.bbox.x), Int(m.bbox.y), Int(m.bbox.w), Int(m.bbox.h)], predictedIoU: m.predictedIoU,
                pointCoords: points, stabilityScore: m.stabilityScore, cropBox: crop)
        }
    }
}
