import CProtobufC
import CSegflowProto

/// prompt-decoder → `segflow.masks` or the prompt's reply topic.
/// Either `error` (and no masks), or no error and `masks` — possibly empty (an
/// "everything" request whose masks all fail the filters). Checked on decode.
public struct MaskResult: Sendable, Hashable {
    public struct BoundingBox: Sendable, Hashable {
        public var x: UInt32
        public var y: UInt32
        public var w: UInt32
        public var h: UInt32
        public init(x: UInt32, y: UInt32, w: UInt32, h: UInt32) {
            self.x = x
            self.y = y
            self.w = w
            self.h = h
        }
    }

    public struct Mask: Sendable, Hashable {
        public enum Encoding: Sendable, Hashable {
            /// COCO compressed RLE counts string.
            case rle(counts: String, height: UInt32, width: UInt32)
            case png([UInt8])
        }

        public var encoding: Encoding
        public var predictedIoU: Float
        public var stabilityScore: Float
        public var bbox: BoundingBox
        public var area: UInt64
        public var lowResLogits: FloatTensor?
        /// Automatic mask generation only: the producing point prompt (x, y pairs in image
        /// pixels) and the crop (XYWH) — upstream's `point_coords` and `crop_box`.
        public var pointCoords: [Double]
        public var cropBox: BoundingBox?
        /// Class-map answers: the class index this mask is (0 = binary).
        public var label: UInt32
        /// Tracked streams: the object (0 = not a tracked stream) and how it was found.
        public var objectID: UInt32 = 0
        public var trackStatus: TrackStatus = .none

        public init(encoding: Encoding, predictedIoU: Float, stabilityScore: Float, bbox: BoundingBox,
                    area: UInt64, lowResLogits: FloatTensor? = nil, pointCoords: [Double] = [], cropBox: BoundingBox? = nil,
                    label: UInt32 = 0) {
            self.label = label
            self.encoding = encoding
            self.predictedIoU = predictedIoU
            self.stabilityScore = stabilityScore
            self.bbox = bbox
            self.area = area
            self.lowResLogits = lowResLogits
            self.pointCoords = pointCoords
            self.cropBox = cropBox
        }
    }

    public struct Timings: Sendable, Hashable {
        public var queueMs: Double
        public var decodeMs: Double
        public var totalMs: Double
        /// The image encoder's run for this image (0 = not known).
        public var encodeMs: Double
        public init(queueMs: Double = 0, decodeMs: Double = 0, totalMs: Double = 0, encodeMs: Double = 0) {
            self.queueMs = queueMs
            self.decodeMs = decodeMs
            self.totalMs = totalMs
            self.encodeMs = encodeMs
        }
    }

    /// The error a requester sees; `code` is stable, `message` is for humans.
    public struct Failure: Sendable, Hashable {
        public var code: ErrorCode
        public var message: String
        public init(code: ErrorCode, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var requestID: String
    public var imageID: String
    public var masks: [Mask]
    public var timings: Timings
    public var error: Failure?
    public var model: String
    public var frame: VideoFrame?
    /// In-context answers asked with `return_raw`: the raw query-half output `[3, h, w]`.
    public var rawOutput: FloatTensor?

    public init(requestID: String, imageID: String, masks: [Mask] = [], timings: Timings = Timings(),
                error: Failure? = nil, model: String = "", frame: VideoFrame? = nil, rawOutput: FloatTensor? = nil) {
        self.rawOutput = rawOutput
        self.requestID = requestID
        self.imageID = imageID
        self.masks = masks
        self.timings = timings
        self.error = error
        self.model = model
        self.frame = frame
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__mask_result__init)
        m.pointee.request_id = arena.string(requestID)
        m.pointee.image_id = arena.string(imageID)
        let cMasks: [UnsafeMutablePointer<Segflow__V1__Mask>?] = masks.map { mask in
            let c = arena.message(segflow__v1__mask__init)
            switch mask.encoding {
            case let .rle(counts, height, width):
                let rle = arena.message(segflow__v1__rle__init)
                rle.pointee.counts = arena.string(counts)
                rle.pointee.height = height
                rle.pointee.width = width
                c.pointee.encoding_case = SEGFLOW__V1__MASK__ENCODING_RLE
                c.pointee.rle = rle
            case let .png(bytes):
                c.pointee.encoding_case = SEGFLOW__V1__MASK__ENCODING_PNG
                c.pointee.png = arena.bytes(bytes)
            }
            c.pointee.predicted_iou = mask.predictedIoU
            c.pointee.stability_score = mask.stabilityScore
            let bbox = arena.message(segflow__v1__bounding_box__init)
            bbox.pointee.x = mask.bbox.x
            bbox.pointee.y = mask.bbox.y
            bbox.pointee.w = mask.bbox.w
            bbox.pointee.h = mask.bbox.h
            c.pointee.bbox = bbox
            c.pointee.area = mask.area
            c.pointee.low_res_logits = mask.lowResLogits?.c(arena)
            c.pointee.label = mask.label
            c.pointee.object_id = mask.objectID
            c.pointee.track_status = Segflow__V1__TrackStatus(rawValue: numericCast(mask.trackStatus.rawValue))
            c.pointee.n_point_coords = mask.pointCoords.count
            c.pointee.point_coords = arena.array(mask.pointCoords)
            if let crop = mask.cropBox {
                let b = arena.message(segflow__v1__bounding_box__init)
                b.pointee.x = crop.x; b.pointee.y = crop.y; b.pointee.w = crop.w; b.pointee.h = crop.h
                c.pointee.crop_box = b
            }
            return c
        }
        m.pointee.n_masks = cMasks.count
        m.pointee.masks = arena.array(cMasks)
        let timingsC = arena.message(segflow__v1__timings__init)
        timingsC.pointee.queue_ms = timings.queueMs
        timingsC.pointee.decode_ms = timings.decodeMs
        timingsC.pointee.total_ms = timings.totalMs
        timingsC.pointee.encode_ms = timings.encodeMs
        m.pointee.timings = timingsC
        if let error {
            let e = arena.message(segflow__v1__error__init)
            e.pointee.code = error.code.c
            e.pointee.message = arena.string(error.message)
            m.pointee.error = e
        }
        m.pointee.model = arena.string(model)
        m.pointee.frame = frame?.c(arena)
        m.pointee.raw_output = rawOutput?.c(arena)
        return packMessage(m, size: segflow__v1__mask_result__get_packed_size,
                           pack: segflow__v1__mask_result__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "MaskResult")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__mask_result__unpack,
                                 free: segflow__v1__mask_result__free_unpacked) { m in
            let masks = try reader.messages(m.masks, m.n_masks, "masks").enumerated().map { index, c -> Mask in
                let encoding: Mask.Encoding
                switch c.encoding_case {
                case SEGFLOW__V1__MASK__ENCODING_RLE:
                    guard let rle = c.rle?.pointee else { throw MessagingError.missingField(message: reader.message, field: "masks[\(index)].rle") }
                    if rle.height == 0 || rle.width == 0 {
                        throw reader.invalid("masks[\(index)].rle.height×width", "\(rle.height)×\(rle.width)",
                                             "dimensions must be positive", code: .shapeMismatch)
                    }
                    encoding = .rle(counts: try reader.requiredString(rle.counts, "masks[\(index)].rle.counts"),
                                    height: rle.height, width: rle.width)
                case SEGFLOW__V1__MASK__ENCODING_PNG:
                    let png = reader.bytes(c.png)
                    if png.isEmpty { throw MessagingError.missingField(message: reader.message, field: "masks[\(index)].png") }
                    encoding = .png(png)
                default:
                    throw MessagingError.missingField(message: reader.message, field: "masks[\(index)].encoding (rle or png)")
                }
                let box = c.bbox?.pointee
                let points = reader.array(c.point_coords, c.n_point_coords)
                if points.count % 2 != 0 || !points.allSatisfy(\.isFinite) {
                    throw reader.invalid("masks[\(index)].point_coords", "\(points.count) values", "x, y pairs of finite numbers",
                                         code: .invalidProtobuf)
                }
                var mask = Mask(encoding: encoding, predictedIoU: c.predicted_iou, stabilityScore: c.stability_score,
                            bbox: BoundingBox(x: box?.x ?? 0, y: box?.y ?? 0, w: box?.w ?? 0, h: box?.h ?? 0),
                            area: c.area,
                            lowResLogits: try FloatTensor.read(c.low_res_logits, reader, field: "masks[\(index)].low_res_logits"),
                            pointCoords: points,
                            cropBox: c.crop_box.map { BoundingBox(x: $0.pointee.x, y: $0.pointee.y, w: $0.pointee.w, h: $0.pointee.h) },
                            label: c.label)
                mask.objectID = c.object_id
                // A status from a newer peer reads as .none (still a valid mask).
                mask.trackStatus = TrackStatus(rawValue: Int32(truncatingIfNeeded: Int64(c.track_status.rawValue))) ?? .none
                return mask
            }
            var failure: Failure?
            if let e = m.error?.pointee {
                let code = ErrorCode(c: e.code)
                if code == .unspecified {
                    throw reader.invalid("error.code", code, "an error result needs a code", code: .invalidProtobuf)
                }
                failure = Failure(code: code, message: try reader.string(e.message, "error.message"))
            }
            if failure != nil && !masks.isEmpty {
                throw reader.invalid("masks", "\(masks.count) masks and error \(failure.map { "\($0.code)" } ?? "")",
                                     "an error result carries no masks", code: .invalidProtobuf)
            }
            let t = m.timings?.pointee
            return MaskResult(requestID: try reader.requiredString(m.request_id, "request_id"),
                              imageID: try reader.string(m.image_id, "image_id"),
                              masks: masks,
                              timings: Timings(queueMs: t?.queue_ms ?? 0, decodeMs: t?.decode_ms ?? 0, totalMs: t?.total_ms ?? 0,
                                               encodeMs: t?.encode_ms ?? 0),
                              error: failure,
                              model: try reader.string(m.model, "model"),
                              frame: try VideoFrame.read(m.frame, reader, field: "frame"),
                              rawOutput: try FloatTensor.read(m.raw_output, reader, field: "raw_output"))
        }
    }
}
