/// Per-request bounds of the prompt-decoder (README, "Limits"). A request past one is
/// answered with INVALID_PROMPT naming the bound; memory per request does not grow with
/// the request beyond them.
public enum RequestLimits {
    /// Boxes in one PromptRequest. Each box is one SAM decode whose full-resolution masks
    /// take about 17 MB for a 1000×563 image with multimask (measured: 500 boxes held
    /// 8.9 GB when decoded as one batch); more objects go in more requests.
    public static let maxBoxes = 64
    /// Points in one PromptRequest (all of them join every box's prompt; SAM's prompt
    /// encoder attends over them, so the decoder's cost grows with their number).
    public static let maxPoints = 64
    /// Prompts decoded at once: their masks are encoded (RLE/PNG) before the next group
    /// is decoded, so the full-resolution float masks of at most this many are alive.
    public static let decodeGroup = 8
    /// "Everything" grids: at most 64 × 64 points (upstream's default is 32; the decode
    /// cost grows with the square) in batches of at most 64 (upstream's default; each
    /// point of a batch holds three mask planes at the embedding's input size).
    public static let maxPointsPerSide = 64
    public static let maxPointsPerBatch = 64
    /// A result record must fit a stock broker's record limit (message.max.bytes
    /// 1,000,000, librdkafka's and Kafka's default), less room for headers and framing.
    public static let maxResultBytes = 1_000_000 - 16 * 1024
}
