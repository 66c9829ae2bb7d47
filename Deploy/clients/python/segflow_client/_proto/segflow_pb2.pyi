from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CORRECTED: TrackStatus
DESCRIPTOR: _descriptor.FileDescriptor
DTYPE_F16: DType
DTYPE_F32: DType
DTYPE_UNSPECIFIED: DType
EMBEDDING_NOT_FOUND: ErrorCode
ERROR_CODE_UNSPECIFIED: ErrorCode
FRAME_OUT_OF_ORDER: ErrorCode
IMAGE_TOO_LARGE: ErrorCode
INTERNAL: ErrorCode
INVALID_EMBEDDING: ErrorCode
INVALID_IMAGE: ErrorCode
INVALID_PROMPT: ErrorCode
INVALID_PROTOBUF: ErrorCode
LOST: TrackStatus
OUTPUT_FORMAT_PNG: OutputFormat
OUTPUT_FORMAT_RLE: OutputFormat
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
PROMPT_NOT_FOUND: ErrorCode
REACQUIRED: TrackStatus
SHAPE_MISMATCH: ErrorCode
STARTED: TrackStatus
STREAM_NOT_FOUND: ErrorCode
TIMEOUT: ErrorCode
TRACKED: TrackStatus
TRACK_STATUS_UNSPECIFIED: TrackStatus
UNKNOWN_MODEL: ErrorCode
UNSUPPORTED: ErrorCode

class AutomaticMaskParams(_message.Message):
    __slots__ = ["box_nms", "box_nms_thresh", "min_mask_region_area", "points_per_batch", "points_per_side", "pred_iou", "pred_iou_thresh", "stability_offset", "stability_score", "stability_score_offset", "stability_score_thresh"]
    BOX_NMS_FIELD_NUMBER: _ClassVar[int]
    BOX_NMS_THRESH_FIELD_NUMBER: _ClassVar[int]
    MIN_MASK_REGION_AREA_FIELD_NUMBER: _ClassVar[int]
    POINTS_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    POINTS_PER_SIDE_FIELD_NUMBER: _ClassVar[int]
    PRED_IOU_FIELD_NUMBER: _ClassVar[int]
    PRED_IOU_THRESH_FIELD_NUMBER: _ClassVar[int]
    STABILITY_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STABILITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    STABILITY_SCORE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STABILITY_SCORE_THRESH_FIELD_NUMBER: _ClassVar[int]
    box_nms: Threshold
    box_nms_thresh: float
    min_mask_region_area: int
    points_per_batch: int
    points_per_side: int
    pred_iou: Threshold
    pred_iou_thresh: float
    stability_offset: Threshold
    stability_score: Threshold
    stability_score_offset: float
    stability_score_thresh: float
    def __init__(self, points_per_side: _Optional[int] = ..., points_per_batch: _Optional[int] = ..., pred_iou_thresh: _Optional[float] = ..., stability_score_thresh: _Optional[float] = ..., stability_score_offset: _Optional[float] = ..., box_nms_thresh: _Optional[float] = ..., min_mask_region_area: _Optional[int] = ..., pred_iou: _Optional[_Union[Threshold, _Mapping]] = ..., stability_score: _Optional[_Union[Threshold, _Mapping]] = ..., stability_offset: _Optional[_Union[Threshold, _Mapping]] = ..., box_nms: _Optional[_Union[Threshold, _Mapping]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ["h", "w", "x", "y"]
    H_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    h: int
    w: int
    x: int
    y: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., w: _Optional[int] = ..., h: _Optional[int] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ["x0", "x1", "y0", "y1"]
    X0_FIELD_NUMBER: _ClassVar[int]
    X1_FIELD_NUMBER: _ClassVar[int]
    Y0_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    x0: float
    x1: float
    y0: float
    y1: float
    def __init__(self, x0: _Optional[float] = ..., y0: _Optional[float] = ..., x1: _Optional[float] = ..., y1: _Optional[float] = ...) -> None: ...

class EmbeddingLocation(_message.Message):
    __slots__ = ["chunk_count", "first_offset", "image_id", "last_offset", "model", "partition", "produced_at_ms", "request_id"]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    chunk_count: int
    first_offset: int
    image_id: str
    last_offset: int
    model: str
    partition: int
    produced_at_ms: int
    request_id: str
    def __init__(self, image_id: _Optional[str] = ..., request_id: _Optional[str] = ..., model: _Optional[str] = ..., partition: _Optional[int] = ..., first_offset: _Optional[int] = ..., last_offset: _Optional[int] = ..., chunk_count: _Optional[int] = ..., produced_at_ms: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ["code", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class ErrorReport(_message.Message):
    __slots__ = ["code", "key", "message", "offset", "partition", "payload", "payload_size", "payload_truncated", "reported_at_ms", "request_id", "service", "source_topic"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    key: bytes
    message: str
    offset: int
    partition: int
    payload: bytes
    payload_size: int
    payload_truncated: bool
    reported_at_ms: int
    request_id: str
    service: str
    source_topic: str
    def __init__(self, source_topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., service: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_truncated: bool = ..., payload_size: _Optional[int] = ..., request_id: _Optional[str] = ..., reported_at_ms: _Optional[int] = ...) -> None: ...

class FloatTensor(_message.Message):
    __slots__ = ["data_f32le", "shape"]
    DATA_F32LE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    data_f32le: bytes
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., data_f32le: _Optional[bytes] = ...) -> None: ...

class ImageEmbedding(_message.Message):
    __slots__ = ["chunk_count", "chunk_index", "created_at_ms", "data", "dtype", "encoder_ms", "frame", "image_id", "input_height", "input_width", "model", "original_height", "original_width", "request_id", "shape", "total_bytes"]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    ENCODER_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_WIDTH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk_count: int
    chunk_index: int
    created_at_ms: int
    data: bytes
    dtype: DType
    encoder_ms: float
    frame: VideoFrame
    image_id: str
    input_height: int
    input_width: int
    model: str
    original_height: int
    original_width: int
    request_id: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    total_bytes: int
    def __init__(self, request_id: _Optional[str] = ..., image_id: _Optional[str] = ..., model: _Optional[str] = ..., original_height: _Optional[int] = ..., original_width: _Optional[int] = ..., input_height: _Optional[int] = ..., input_width: _Optional[int] = ..., dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., encoder_ms: _Optional[float] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ..., total_bytes: _Optional[int] = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class ImageRequest(_message.Message):
    __slots__ = ["created_at_ms", "frame", "image_id", "in_context", "model", "png", "raw", "reply_topic", "request_id"]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    REPLY_TOPIC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    created_at_ms: int
    frame: VideoFrame
    image_id: str
    in_context: InContextRequest
    model: str
    png: bytes
    raw: RawImage
    reply_topic: str
    request_id: str
    def __init__(self, request_id: _Optional[str] = ..., image_id: _Optional[str] = ..., png: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., model: _Optional[str] = ..., reply_topic: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., in_context: _Optional[_Union[InContextRequest, _Mapping]] = ...) -> None: ...

class InContextRequest(_message.Message):
    __slots__ = ["num_labels", "output_format", "prompt_ids", "return_raw", "task"]
    NUM_LABELS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_IDS_FIELD_NUMBER: _ClassVar[int]
    RETURN_RAW_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    num_labels: int
    output_format: OutputFormat
    prompt_ids: _containers.RepeatedScalarFieldContainer[str]
    return_raw: bool
    task: str
    def __init__(self, prompt_ids: _Optional[_Iterable[str]] = ..., task: _Optional[str] = ..., num_labels: _Optional[int] = ..., output_format: _Optional[_Union[OutputFormat, str]] = ..., return_raw: bool = ...) -> None: ...

class Mask(_message.Message):
    __slots__ = ["area", "bbox", "crop_box", "label", "low_res_logits", "object_id", "png", "point_coords", "predicted_iou", "rle", "stability_score", "track_status"]
    AREA_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    CROP_BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LOW_RES_LOGITS_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    POINT_COORDS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_IOU_FIELD_NUMBER: _ClassVar[int]
    RLE_FIELD_NUMBER: _ClassVar[int]
    STABILITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    TRACK_STATUS_FIELD_NUMBER: _ClassVar[int]
    area: int
    bbox: BoundingBox
    crop_box: BoundingBox
    label: int
    low_res_logits: FloatTensor
    object_id: int
    png: bytes
    point_coords: _containers.RepeatedScalarFieldContainer[float]
    predicted_iou: float
    rle: RLE
    stability_score: float
    track_status: TrackStatus
    def __init__(self, rle: _Optional[_Union[RLE, _Mapping]] = ..., png: _Optional[bytes] = ..., predicted_iou: _Optional[float] = ..., stability_score: _Optional[float] = ..., bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., area: _Optional[int] = ..., low_res_logits: _Optional[_Union[FloatTensor, _Mapping]] = ..., point_coords: _Optional[_Iterable[float]] = ..., crop_box: _Optional[_Union[BoundingBox, _Mapping]] = ..., label: _Optional[int] = ..., object_id: _Optional[int] = ..., track_status: _Optional[_Union[TrackStatus, str]] = ...) -> None: ...

class MaskResult(_message.Message):
    __slots__ = ["error", "frame", "image_id", "masks", "model", "raw_output", "request_id", "timings"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RAW_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    error: Error
    frame: VideoFrame
    image_id: str
    masks: _containers.RepeatedCompositeFieldContainer[Mask]
    model: str
    raw_output: FloatTensor
    request_id: str
    timings: Timings
    def __init__(self, request_id: _Optional[str] = ..., image_id: _Optional[str] = ..., masks: _Optional[_Iterable[_Union[Mask, _Mapping]]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., model: _Optional[str] = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., raw_output: _Optional[_Union[FloatTensor, _Mapping]] = ...) -> None: ...

class ObjectPrompt(_message.Message):
    __slots__ = ["box", "object_id", "points"]
    BOX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    box: Box
    object_id: int
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, object_id: _Optional[int] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., box: _Optional[_Union[Box, _Mapping]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ["label", "x", "y"]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    label: int
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., label: _Optional[int] = ...) -> None: ...

class PromptPair(_message.Message):
    __slots__ = ["created_at_ms", "image", "mask", "num_labels", "prompt_id"]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    NUM_LABELS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ID_FIELD_NUMBER: _ClassVar[int]
    created_at_ms: int
    image: bytes
    mask: bytes
    num_labels: int
    prompt_id: str
    def __init__(self, prompt_id: _Optional[str] = ..., image: _Optional[bytes] = ..., mask: _Optional[bytes] = ..., num_labels: _Optional[int] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class PromptRequest(_message.Message):
    __slots__ = ["boxes", "created_at_ms", "everything", "frame", "image_id", "mask_input", "model", "multimask", "output_format", "points", "reply_topic", "request_id", "return_low_res_logits", "text", "text_embedding"]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EVERYTHING_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MASK_INPUT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MULTIMASK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TOPIC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_LOW_RES_LOGITS_FIELD_NUMBER: _ClassVar[int]
    TEXT_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    created_at_ms: int
    everything: AutomaticMaskParams
    frame: VideoFrame
    image_id: str
    mask_input: FloatTensor
    model: str
    multimask: bool
    output_format: OutputFormat
    points: _containers.RepeatedCompositeFieldContainer[Point]
    reply_topic: str
    request_id: str
    return_low_res_logits: bool
    text: str
    text_embedding: FloatTensor
    def __init__(self, request_id: _Optional[str] = ..., image_id: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ..., mask_input: _Optional[_Union[FloatTensor, _Mapping]] = ..., multimask: bool = ..., output_format: _Optional[_Union[OutputFormat, str]] = ..., reply_topic: _Optional[str] = ..., text: _Optional[str] = ..., text_embedding: _Optional[_Union[FloatTensor, _Mapping]] = ..., model: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., return_low_res_logits: bool = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., everything: _Optional[_Union[AutomaticMaskParams, _Mapping]] = ...) -> None: ...

class RLE(_message.Message):
    __slots__ = ["counts", "height", "width"]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    counts: str
    height: int
    width: int
    def __init__(self, counts: _Optional[str] = ..., height: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ["height", "rgb8", "width"]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RGB8_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    height: int
    rgb8: bytes
    width: int
    def __init__(self, rgb8: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class StreamSnapshot(_message.Message):
    __slots__ = ["last_frame_index", "last_request_id", "last_result", "model", "stream_id", "tracker_state", "updated_at_ms"]
    LAST_FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_RESULT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKER_STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    last_frame_index: int
    last_request_id: str
    last_result: bytes
    model: str
    stream_id: str
    tracker_state: bytes
    updated_at_ms: int
    def __init__(self, stream_id: _Optional[str] = ..., last_frame_index: _Optional[int] = ..., model: _Optional[str] = ..., tracker_state: _Optional[bytes] = ..., updated_at_ms: _Optional[int] = ..., last_request_id: _Optional[str] = ..., last_result: _Optional[bytes] = ...) -> None: ...

class StreamTrack(_message.Message):
    __slots__ = ["end_of_stream", "objects", "output_format", "remove_objects", "reply_topic"]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    REMOVE_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TOPIC_FIELD_NUMBER: _ClassVar[int]
    end_of_stream: bool
    objects: _containers.RepeatedCompositeFieldContainer[ObjectPrompt]
    output_format: OutputFormat
    remove_objects: _containers.RepeatedScalarFieldContainer[int]
    reply_topic: str
    def __init__(self, objects: _Optional[_Iterable[_Union[ObjectPrompt, _Mapping]]] = ..., remove_objects: _Optional[_Iterable[int]] = ..., end_of_stream: bool = ..., reply_topic: _Optional[str] = ..., output_format: _Optional[_Union[OutputFormat, str]] = ...) -> None: ...

class Threshold(_message.Message):
    __slots__ = ["value"]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: float
    def __init__(self, value: _Optional[float] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ["decode_ms", "encode_ms", "queue_ms", "total_ms"]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    encode_ms: float
    queue_ms: float
    total_ms: float
    def __init__(self, queue_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ...) -> None: ...

class VideoFrame(_message.Message):
    __slots__ = ["frame_index", "stream_id", "track"]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    stream_id: str
    track: StreamTrack
    def __init__(self, stream_id: _Optional[str] = ..., frame_index: _Optional[int] = ..., track: _Optional[_Union[StreamTrack, _Mapping]] = ...) -> None: ...

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TrackStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
