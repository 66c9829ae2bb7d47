extension Producer {
    /// Produces a complete embedding as chunks (see EmbeddingChunking.swift), keyed by
    /// image id so every chunk lands on the partition its prompts use — or, for a frame of
    /// a tracked stream, by stream id, so the stream's frames stay in order on the partition
    /// whose decoder holds the stream's state — with content-type and request-id headers.
    /// Returns one delivery report per chunk, in chunk order.
    public func sendEmbedding(_ embedding: ImageEmbedding, topic: String = SegflowTopics.embeddings,
                              maxChunkBytes: Int = ImageEmbedding.defaultMaxChunkBytes,
                              headers: [KafkaHeader] = []) async throws -> [DeliveryReport] {
        let records = embedding.chunked(maxChunkBytes: maxChunkBytes).map { chunk in
            ProducerRecord(topic: topic, key: embedding.partitionKey, value: chunk.encode(),
                           headers: [.contentType(protobuf: "ImageEmbedding"), .requestID(embedding.requestID)] + headers)
        }
        return try await send(records)
    }
}

extension ImageEmbedding {
    /// The record key: the stream id for a tracked stream's frame, else the image id.
    public var partitionKey: String {
        if let frame, frame.track != nil { return frame.streamID }
        return imageID
    }
}
