extension Producer {
    /// Produces a complete embedding as chunks (see EmbeddingChunking.swift), keyed by
    /// image id so every chunk lands on the partition its prompts use, with content-type
    /// and request-id headers. Returns one delivery report per chunk, in chunk order.
    public func sendEmbedding(_ embedding: ImageEmbedding, topic: String = SegflowTopics.embeddings,
                              maxChunkBytes: Int = ImageEmbedding.defaultMaxChunkBytes,
                              headers: [KafkaHeader] = []) async throws -> [DeliveryReport] {
        let records = embedding.chunked(maxChunkBytes: maxChunkBytes).map { chunk in
            ProducerRecord(topic: topic, key: embedding.imageID, value: chunk.encode(),
                           headers: [.contentType(protobuf: "ImageEmbedding"), .requestID(embedding.requestID)] + headers)
        }
        return try await send(records)
    }
}
