import CProtobufC
import CSegflowProto

/// On an ImageRequest: answer this image in-context (SegGPT, Painter) from examples
/// registered on the prompt-pairs topic, instead of computing its embedding.
public struct InContextRequest: Sendable, Hashable {
    /// Limits checked on decode, before anything is looked up (a forged record must not
    /// make the encoder gather thousands of examples).
    public static let maxPrompts = 16
    public static let maxPromptIDBytes = 256

    public var promptIDs: [String]
    /// seggpt: "instance" (default) or "semantic"; painter: "semantic" (default), "depth", "restore".
    public var task: String
    /// 0: binary prompt masks; else class-index masks with this many classes.
    public var numLabels: UInt32
    public var outputFormat: OutputFormat
    public var returnRaw: Bool

    public init(promptIDs: [String], task: String = "", numLabels: UInt32 = 0, outputFormat: OutputFormat = .rle,
                returnRaw: Bool = false) {
        self.promptIDs = promptIDs; self.task = task; self.numLabels = numLabels
        self.outputFormat = outputFormat; self.returnRaw = returnRaw
    }

    func c(_ arena: CArena) -> UnsafeMutablePointer<Segflow__V1__InContextRequest> {
        let m = arena.message(segflow__v1__in_context_request__init)
        let ids: [UnsafeMutablePointer<CChar>?] = promptIDs.map { arena.string($0) }
        m.pointee.n_prompt_ids = ids.count
        m.pointee.prompt_ids = arena.array(ids)
        m.pointee.task = arena.string(task)
        m.pointee.num_labels = numLabels
        m.pointee.output_format = Segflow__V1__OutputFormat(rawValue: numericCast(outputFormat.rawValue))
        m.pointee.return_raw = returnRaw ? 1 : 0
        return m
    }

    static func read(_ pointer: UnsafeMutablePointer<Segflow__V1__InContextRequest>?, _ reader: FieldReader) throws -> InContextRequest? {
        guard let m = pointer?.pointee else { return nil }
        guard m.n_prompt_ids > 0 else { throw MessagingError.missingField(message: reader.message, field: "in_context.prompt_ids") }
        guard m.n_prompt_ids <= maxPrompts else {
            throw reader.invalid("in_context.prompt_ids", "\(m.n_prompt_ids) ids", "at most \(maxPrompts) prompt pairs per request",
                                 code: .invalidPrompt)
        }
        var ids: [String] = []
        for i in 0..<m.n_prompt_ids {
            let id = try reader.requiredString(m.prompt_ids?[i], "in_context.prompt_ids[\(i)]")
            guard id.utf8.count <= maxPromptIDBytes else {
                throw reader.invalid("in_context.prompt_ids[\(i)]", "\(id.utf8.count) bytes", "at most \(maxPromptIDBytes) bytes",
                                     code: .invalidPrompt)
            }
            ids.append(id)
        }
        let rawFormat = Int32(truncatingIfNeeded: Int64(m.output_format.rawValue))
        guard rawFormat == 0 || OutputFormat(rawValue: rawFormat) != nil else {
            throw reader.invalid("in_context.output_format", rawFormat, "expected OUTPUT_FORMAT_RLE (1) or OUTPUT_FORMAT_PNG (2)",
                                 code: .unsupported)
        }
        guard m.num_labels <= PromptPair.maxLabels else {
            throw reader.invalid("in_context.num_labels", m.num_labels, "at most \(PromptPair.maxLabels) classes", code: .invalidPrompt)
        }
        return InContextRequest(promptIDs: ids, task: try reader.string(m.task, "in_context.task"), numLabels: m.num_labels,
                                outputFormat: OutputFormat(rawValue: rawFormat) ?? .rle, returnRaw: m.return_raw != 0)
    }
}

/// client → `PREFIX.prompt-pairs` (compacted, key = prompt id): an example image and its
/// mask, registered once and referenced by id.
public struct PromptPair: Sendable, Hashable {
    /// Class-index masks hold at most this many classes (one byte per pixel).
    public static let maxLabels: UInt32 = 256

    public var promptID: String
    /// PNG, JPEG or WebP bytes.
    public var image: [UInt8]
    /// PNG: nonzero = foreground, or class indices when `numLabels` > 0.
    public var mask: [UInt8]
    public var numLabels: UInt32
    public var createdAtMs: Int64

    public init(promptID: String, image: [UInt8], mask: [UInt8], numLabels: UInt32 = 0, createdAtMs: Int64 = 0) {
        self.promptID = promptID; self.image = image; self.mask = mask; self.numLabels = numLabels; self.createdAtMs = createdAtMs
    }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__prompt_pair__init)
        m.pointee.prompt_id = arena.string(promptID)
        m.pointee.image = arena.bytes(image)
        m.pointee.mask = arena.bytes(mask)
        m.pointee.num_labels = numLabels
        m.pointee.created_at_ms = createdAtMs
        return packMessage(m, size: segflow__v1__prompt_pair__get_packed_size, pack: segflow__v1__prompt_pair__pack)
    }

    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "PromptPair")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__prompt_pair__unpack,
                                 free: segflow__v1__prompt_pair__free_unpacked) { m in
            let image = reader.bytes(m.image), mask = reader.bytes(m.mask)
            if image.isEmpty { throw MessagingError.missingField(message: reader.message, field: "image") }
            if mask.isEmpty { throw MessagingError.missingField(message: reader.message, field: "mask") }
            guard m.num_labels <= Self.maxLabels else {
                throw reader.invalid("num_labels", m.num_labels, "at most \(Self.maxLabels) classes", code: .invalidPrompt)
            }
            return PromptPair(promptID: try reader.requiredString(m.prompt_id, "prompt_id"), image: image, mask: mask,
                              numLabels: m.num_labels, createdAtMs: m.created_at_ms)
        }
    }
}
