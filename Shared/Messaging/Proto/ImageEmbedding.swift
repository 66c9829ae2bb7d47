import CProtobufC
import CSegflowProto

/// image-encoder → `segflow.embeddings`: an image embedding, or one chunk of it.
///
/// A whole embedding has `chunkCount == 1` and `data.count == totalBytes`. Use
/// `chunked(maxChunkBytes:)` before producing and `EmbeddingAssembler` when consuming
/// (see EmbeddingChunking.swift for why embeddings are chunked).
public struct ImageEmbedding: Sendable, Hashable {
    public var requestID: String
    public var imageID: String
    public var model: String
    public var originalHeight: UInt32
    public var originalWidth: UInt32
    public var inputHeight: UInt32
    public var inputWidth: UInt32
    public var dtype: DType
    public var shape: [UInt32]
    /// Tensor bytes (little-endian, row-major): all of them, or this chunk's slice.
    public var data: [UInt8]
    public var encoderMs: Double
    public var chunkIndex: UInt32
    public var chunkCount: UInt32
    public var totalBytes: UInt64
    public var frame: VideoFrame?
    public var createdAtMs: Int64

    /// A whole (unchunked) embedding; `totalBytes` is `data.count`.
    public init(requestID: String, imageID: String, model: String,
                originalHeight: UInt32, originalWidth: UInt32, inputHeight: UInt32, inputWidth: UInt32,
                dtype: DType, shape: [UInt32], data: [UInt8], encoderMs: Double = 0,
                frame: VideoFrame? = nil, createdAtMs: Int64 = 0) {
        self.init(requestID: requestID, imageID: imageID, model: model, originalHeight: originalHeight,
                  originalWidth: originalWidth, inputHeight: inputHeight, inputWidth: inputWidth, dtype: dtype,
                  shape: shape, data: data, encoderMs: encoderMs, chunkIndex: 0, chunkCount: 1,
                  totalBytes: UInt64(data.count), frame: frame, createdAtMs: createdAtMs)
    }

    /// Every field explicit, for chunks.
    public init(requestID: String, imageID: String, model: String,
                originalHeight: UInt32, originalWidth: UInt32, inputHeight: UInt32, inputWidth: UInt32,
                dtype: DType, shape: [UInt32], data: [UInt8], encoderMs: Double,
                chunkIndex: UInt32, chunkCount: UInt32, totalBytes: UInt64,
                frame: VideoFrame?, createdAtMs: Int64) {
        self.requestID = requestID
        self.imageID = imageID
        self.model = model
        self.originalHeight = originalHeight
        self.originalWidth = originalWidth
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.encoderMs = encoderMs
        self.chunkIndex = chunkIndex
        self.chunkCount = chunkCount
        self.totalBytes = totalBytes
        self.frame = frame
        self.createdAtMs = createdAtMs
    }

    /// True for a complete embedding (one chunk holding every byte).
    public var isComplete: Bool { chunkCount == 1 && UInt64(data.count) == totalBytes }

    public func encode() -> [UInt8] {
        let arena = CArena()
        let m = arena.message(segflow__v1__image_embedding__init)
        m.pointee.request_id = arena.string(requestID)
        m.pointee.image_id = arena.string(imageID)
        m.pointee.model = arena.string(model)
        m.pointee.original_height = originalHeight
        m.pointee.original_width = originalWidth
        m.pointee.input_height = inputHeight
        m.pointee.input_width = inputWidth
        m.pointee.dtype = Segflow__V1__DType(rawValue: numericCast(dtype.rawValue))
        m.pointee.n_shape = shape.count
        m.pointee.shape = arena.array(shape)
        m.pointee.data = arena.bytes(data)
        m.pointee.encoder_ms = encoderMs
        m.pointee.chunk_index = chunkIndex
        m.pointee.chunk_count = chunkCount
        m.pointee.total_bytes = totalBytes
        m.pointee.frame = frame?.c(arena)
        m.pointee.created_at_ms = createdAtMs
        return packMessage(m, size: segflow__v1__image_embedding__get_packed_size,
                           pack: segflow__v1__image_embedding__pack)
    }

    /// Decodes and validates ids, model, dtype, shape against `total_bytes`, and chunk
    /// bookkeeping, so a reassembled embedding is guaranteed to match its shape.
    public init(bytes: [UInt8]) throws {
        let reader = FieldReader(message: "ImageEmbedding")
        self = try unpackMessage(bytes, name: reader.message, unpack: segflow__v1__image_embedding__unpack,
                                 free: segflow__v1__image_embedding__free_unpacked) { m in
            let requestID = try reader.requiredString(m.request_id, "request_id")
            let imageID = try reader.requiredString(m.image_id, "image_id")
            let model = try reader.requiredString(m.model, "model")
            let rawDType = Int32(truncatingIfNeeded: Int64(m.dtype.rawValue))
            guard let dtype = DType(rawValue: rawDType) else {
                throw reader.invalid("dtype", rawDType, "expected DTYPE_F32 (1) or DTYPE_F16 (2)", code: .invalidEmbedding)
            }
            let shape = reader.array(m.shape, m.n_shape)
            if shape.isEmpty || shape.contains(0) {
                throw reader.invalid("shape", shape, "every dimension must be positive and the shape non-empty", code: .shapeMismatch)
            }
            guard let expected = byteCount(shape: shape, elementSize: dtype.byteSize), UInt64(expected) == m.total_bytes else {
                throw reader.invalid("total_bytes", m.total_bytes,
                                     "shape \(shape) of \(dtype) needs \(byteCount(shape: shape, elementSize: dtype.byteSize).map(String.init) ?? "an overflowing number of") bytes",
                                     code: .shapeMismatch)
            }
            if m.chunk_count == 0 {
                throw reader.invalid("chunk_count", 0, "must be at least 1", code: .invalidEmbedding)
            }
            if m.chunk_index >= m.chunk_count {
                throw reader.invalid("chunk_index", m.chunk_index, "must be below chunk_count \(m.chunk_count)", code: .invalidEmbedding)
            }
            if UInt64(m.chunk_count) > max(m.total_bytes, 1) {
                throw reader.invalid("chunk_count", m.chunk_count, "more chunks than the \(m.total_bytes) tensor bytes", code: .invalidEmbedding)
            }
            let data = reader.bytes(m.data)
            if m.chunk_count == 1 ? UInt64(data.count) != m.total_bytes : UInt64(data.count) > m.total_bytes {
                throw reader.invalid("data", "\(data.count) bytes",
                                     m.chunk_count == 1 ? "an unchunked embedding must carry all \(m.total_bytes) bytes"
                                                        : "a chunk cannot exceed total_bytes \(m.total_bytes)",
                                     code: .shapeMismatch)
            }
            return ImageEmbedding(requestID: requestID, imageID: imageID, model: model,
                                  originalHeight: m.original_height, originalWidth: m.original_width,
                                  inputHeight: m.input_height, inputWidth: m.input_width,
                                  dtype: dtype, shape: shape, data: data, encoderMs: m.encoder_ms,
                                  chunkIndex: m.chunk_index, chunkCount: m.chunk_count, totalBytes: m.total_bytes,
                                  frame: try VideoFrame.read(m.frame, reader, field: "frame"),
                                  createdAtMs: m.created_at_ms)
        }
    }
}
