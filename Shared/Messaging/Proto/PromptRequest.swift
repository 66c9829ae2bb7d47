import CProtobufC
import CSegflowProto

/// client → `segflow.prompts` (or `segflow.text` for text prompts): prompts for one image.
///
/// Decoding checks structure (ids, tensor byte counts, known output format). Whether
/// coordinates are finite and inside the image, and whether labels are valid, needs the
/// image size, so the prompt-decoder checks that and reports INVALID_PROMPT.
public struct PromptRequest: Sendable, Hashable {
    /// SAM point prompt in original-image pixels; label 1 foreground, 0 background.
    public struct Point: Sendable, Hashable {
        public var x: Float
        public var y: Float
        public var label: Int32
        public init(x: Float, y: Float, label: Int32) {
            self.x = x
            self.y = y
            self.label = label
        }
    }

    /// Box prompt in original-image pixels, (x0, y0) top-left to (x1, y1) bottom-right.
    public struct Box: Sendable, Hashable {
        public var x0: Float
        public var y0: Float
        public var x1: Float
        public var y1: Float
        public init(x0: Float, y0: Float, x1: Float, y1: Float) {
            self.x0 = x0
            self.y0 = y0
            self.x1 = x1
            self.y1 = y1
        }
    }

    public var requestID: String
    public var imageID: String
    public var points: [Point]
    public var boxes: [Box]
    /// SAM's mask input: previous low-res logits, e.g. shape [1, 256, 256].
    public var maskInput: FloatTensor?
    public var multimask: Bool
    public var outputFormat: OutputFormat
    /// Empty means `segflow.masks`.
    public var replyTopic: String
    /// nil when there is no text prompt (sent as the empty string).
    public var text: String?
    public var textEmbedding: FloatTensor?
    /// Empty means the decoder's default model.
    public var model: String
    public var createdAtMs: Int64
    public var returnLowResLogits: Bool
    public var frame: VideoFrame?
    /// Non-nil: run the automatic mask generator instead of point/box prompts.
    public var everything: AutomaticMaskParams?

    public init(requestID: String, imageID: String, points: [Point] = [], boxes: [Box] = [],
                maskInput: FloatTensor? = nil, multimask: Bool = false, outputFormat: OutputFormat = .rle,
                replyTopic: String = "", text: String? = nil, textEmbedding: FloatTensor? = nil,
                model: String = "", createdAtMs: Int64 = 0, returnLowResLogits: Bool = false,
                frame: VideoFrame? = nil, everything: AutomaticMaskParams? = nil) {
        self.requestID = requestID
        self.imageID = imageID
        self.points = points
        self.boxes = boxes
        self.maskInput = maskInput
        self.multimask = multimask
        self.outputFormat = outputFormat
        self.replyTopic = replyTopic
        self.text = text
        self.textEmbedding = textEmbedding
        self.model = model
        self.createdAtMs = createdAtMs
        self.returnLowResLogits = returnLowResLogits
        self.frame = frame
        self.everything = everything
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__prompt_request__init)
        m.pointee.request_id = arena.string(requestID)
        m.pointee.image_id = arena.string(imageID)
        let cPoints: [UnsafeMutablePointer<Segflow__V1__Point>?] = points.map { point in
            let c = arena.message(segflow__v1__point__init)
            c.pointee.x = point.x
            c.pointee.y = point.y
            c.pointee.label = point.label
            return c
        }
        m.pointee.n_points = cPoints.count
        m.pointee.points = arena.array(cPoints)
        let cBoxes: [UnsafeMutablePointer<Segflow__V1__Box>?] = boxes.map { box in
            let c = arena.message(segflow__v1__box__init)
            c.pointee.x0 = box.x0
            c.pointee.y0 = box.y0
            c.pointee.x1 = box.x1
            c.pointee.y1 = box.y1
            return c
        }
        m.pointee.n_boxes = cBoxes.count
        m.pointee.boxes = arena.array(cBoxes)
        m.pointee.mask_input = maskInput?.c(arena)
        m.pointee.multimask = multimask ? 1 : 0
        m.pointee.output_format = Segflow__V1__OutputFormat(rawValue: numericCast(outputFormat.rawValue))
        m.pointee.reply_topic = arena.string(replyTopic)
        m.pointee.text = arena.string(text ?? "")
        m.pointee.text_embedding = textEmbedding?.c(arena)
        m.pointee.model = arena.string(model)
        m.pointee.created_at_ms = createdAtMs
        m.pointee.return_low_res_logits = returnLowResLogits ? 1 : 0
        m.pointee.frame = frame?.c(arena)
        m.pointee.everything = everything?.c(arena)
        return packMessage(m, size: segflow__v1__prompt_request__get_packed_size,
                           pack: segflow__v1__prompt_request__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "PromptRequest")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__prompt_request__unpack,
                                 free: segflow__v1__prompt_request__free_unpacked) { m in
            let points = try reader.messages(m.points, m.n_points, "points").map {
                Point(x: $0.x, y: $0.y, label: $0.label)
            }
            let boxes = try reader.messages(m.boxes, m.n_boxes, "boxes").map {
                Box(x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1)
            }
            let rawFormat = Int32(truncatingIfNeeded: Int64(m.output_format.rawValue))
            let format: OutputFormat
            if rawFormat == 0 {
                format = .rle
            } else if let known = OutputFormat(rawValue: rawFormat) {
                format = known
            } else {
                throw reader.invalid("output_format", rawFormat, "expected OUTPUT_FORMAT_RLE (1) or OUTPUT_FORMAT_PNG (2)", code: .unsupported)
            }
            let text = try reader.string(m.text, "text")
            return PromptRequest(requestID: try reader.requiredString(m.request_id, "request_id"),
                                 imageID: try reader.requiredString(m.image_id, "image_id"),
                                 points: points, boxes: boxes,
                                 maskInput: try FloatTensor.read(m.mask_input, reader, field: "mask_input"),
                                 multimask: m.multimask != 0, outputFormat: format,
                                 replyTopic: try reader.string(m.reply_topic, "reply_topic"),
                                 text: text.isEmpty ? nil : text,
                                 textEmbedding: try FloatTensor.read(m.text_embedding, reader, field: "text_embedding"),
                                 model: try reader.string(m.model, "model"),
                                 createdAtMs: m.created_at_ms,
                                 returnLowResLogits: m.return_low_res_logits != 0,
                                 frame: try VideoFrame.read(m.frame, reader, field: "frame"),
                                 everything: try AutomaticMaskParams.read(m.everything, reader))
        }
    }
}

/// Parameters of SAM's automatic mask generator. nil (and 0 for the counts) = upstream's
/// default; an explicit threshold, 0 included, is sent as such (the wire's Threshold
/// sub-messages) and also in the legacy float fields for older readers.
public struct AutomaticMaskParams: Sendable, Hashable {
    public var pointsPerSide: UInt32
    public var pointsPerBatch: UInt32
    public var predIoUThresh: Float?
    public var stabilityScoreThresh: Float?
    public var stabilityScoreOffset: Float?
    public var boxNMSThresh: Float?
    public var minMaskRegionArea: UInt32

    public init(pointsPerSide: UInt32 = 0, pointsPerBatch: UInt32 = 0, predIoUThresh: Float? = nil, stabilityScoreThresh: Float? = nil,
                stabilityScoreOffset: Float? = nil, boxNMSThresh: Float? = nil, minMaskRegionArea: UInt32 = 0) {
        self.pointsPerSide = pointsPerSide; self.pointsPerBatch = pointsPerBatch; self.predIoUThresh = predIoUThresh
        self.stabilityScoreThresh = stabilityScoreThresh; self.stabilityScoreOffset = stabilityScoreOffset
        self.boxNMSThresh = boxNMSThresh; self.minMaskRegionArea = minMaskRegionArea
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__AutomaticMaskParams> {
        func threshold(_ v: Float?) -> UnsafeMutablePointer<Segflow__V1__Threshold>? {
            guard let v else { return nil }
            let t = arena.message(segflow__v1__threshold__init)
            t.pointee.value = v
            return t
        }
        let p = arena.message(segflow__v1__automatic_mask_params__init)
        p.pointee.points_per_side = pointsPerSide
        p.pointee.points_per_batch = pointsPerBatch
        p.pointee.pred_iou_thresh = predIoUThresh ?? 0
        p.pointee.stability_score_thresh = stabilityScoreThresh ?? 0
        p.pointee.stability_score_offset = stabilityScoreOffset ?? 0
        p.pointee.box_nms_thresh = boxNMSThresh ?? 0
        p.pointee.min_mask_region_area = minMaskRegionArea
        p.pointee.pred_iou = threshold(predIoUThresh)
        p.pointee.stability_score = threshold(stabilityScoreThresh)
        p.pointee.stability_offset = threshold(stabilityScoreOffset)
        p.pointee.box_nms = threshold(boxNMSThresh)
        return p
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__AutomaticMaskParams>?, _ reader: FieldReader) throws -> AutomaticMaskParams? {
        guard let p = pointer?.pointee else { return nil }
        // The Threshold sub-message when present (even 0); else the legacy float, 0 = unset.
        func value(_ name: String, _ explicit: UnsafeMutablePointer<Segflow__V1__Threshold>?, _ legacy: Float) throws -> Float? {
            let v: Float? = explicit.map { $0.pointee.value } ?? (legacy == 0 ? nil : legacy)
            if let v, !v.isFinite { throw reader.invalid("everything.\(name)", v, "must be a finite number", code: .invalidPrompt) }
            return v
        }
        return AutomaticMaskParams(pointsPerSide: p.points_per_side, pointsPerBatch: p.points_per_batch,
                                   predIoUThresh: try value("pred_iou_thresh", p.pred_iou, p.pred_iou_thresh),
                                   stabilityScoreThresh: try value("stability_score_thresh", p.stability_score, p.stability_score_thresh),
                                   stabilityScoreOffset: try value("stability_score_offset", p.stability_offset, p.stability_score_offset),
                                   boxNMSThresh: try value("box_nms_thresh", p.box_nms, p.box_nms_thresh),
                                   minMaskRegionArea: p.min_mask_region_area)
    }
}
