/// Log metadata keys (swift-log metadata, dotted like swift-kafka-client's): the data of a
/// log line goes here, not into its message. One place, so dashboards can rely on them.
public enum LogKey {
    public static let requestID = "seg.request.id"
    public static let imageID = "seg.image.id"
    public static let model = "seg.model"
    public static let errorCode = "seg.error.code"
    public static let encoderMs = "seg.encoder.ms"
    public static let blasCore = "blas.core"
    public static let precision = "gemm.precision"
    public static let topic = "kafka.topic"
    public static let partition = "kafka.partition"
    public static let offset = "kafka.offset"
}
