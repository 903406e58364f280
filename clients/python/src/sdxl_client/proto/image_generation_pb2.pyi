from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_QUEUED: _ClassVar[Stage]
    STAGE_TEXT: _ClassVar[Stage]
    STAGE_VAE_ENCODE: _ClassVar[Stage]
    STAGE_DENOISE: _ClassVar[Stage]
    STAGE_VAE_DECODE: _ClassVar[Stage]
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
STAGE_QUEUED: Stage
STAGE_TEXT: Stage
STAGE_VAE_ENCODE: Stage
STAGE_DENOISE: Stage
STAGE_VAE_DECODE: Stage

class Img2ImgRequest(_message.Message):
    __slots__ = ("prompt", "image", "negative_prompt", "num_inference_steps", "strength", "guidance_scale", "seed", "width", "height", "output_format", "quality", "thumbnail", "request_id", "batch_size")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    image: bytes
    negative_prompt: str
    num_inference_steps: int
    strength: float
    guidance_scale: float
    seed: int
    width: int
    height: int
    output_format: ImageFormat
    quality: int
    thumbnail: bool
    request_id: str
    batch_size: int
    def __init__(self, prompt: _Optional[str] = ..., image: _Optional[bytes] = ..., negative_prompt: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., strength: _Optional[float] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., thumbnail: _Optional[bool] = ..., request_id: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class Txt2ImgRequest(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "seed", "width", "height", "output_format", "quality", "thumbnail", "request_id", "batch_size")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    num_inference_steps: int
    guidance_scale: float
    seed: int
    width: int
    height: int
    output_format: ImageFormat
    quality: int
    thumbnail: bool
    request_id: str
    batch_size: int
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., thumbnail: _Optional[bool] = ..., request_id: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class GeneratedImage(_message.Message):
    __slots__ = ("index", "seed", "data", "format", "mime_type", "width", "height", "thumbnail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    seed: int
    data: bytes
    format: ImageFormat
    mime_type: str
    width: int
    height: int
    thumbnail: bytes
    def __init__(self, index: _Optional[int] = ..., seed: _Optional[int] = ..., data: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., thumbnail: _Optional[bytes] = ...) -> None: ...

class AppliedParameters(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "num_inference_steps", "strength", "guidance_scale", "seed", "width", "height", "batch_size", "output_format", "quality", "thumbnail", "unet_steps", "input_width", "input_height")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    UNET_STEPS_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    num_inference_steps: int
    strength: float
    guidance_scale: float
    seed: int
    width: int
    height: int
    batch_size: int
    output_format: ImageFormat
    quality: int
    thumbnail: bool
    unet_steps: int
    input_width: int
    input_height: int
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., strength: _Optional[float] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., batch_size: _Optional[int] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., thumbnail: _Optional[bool] = ..., unet_steps: _Optional[int] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("decode_ms", "queue_wait_ms", "text_ms", "vae_encode_ms", "unet_ms", "vae_decode_ms", "inference_ms", "encode_ms", "total_ms")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    TEXT_MS_FIELD_NUMBER: _ClassVar[int]
    VAE_ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    UNET_MS_FIELD_NUMBER: _ClassVar[int]
    VAE_DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    queue_wait_ms: float
    text_ms: float
    vae_encode_ms: float
    unet_ms: float
    vae_decode_ms: float
    inference_ms: float
    encode_ms: float
    total_ms: float
    def __init__(self, decode_ms: _Optional[float] = ..., queue_wait_ms: _Optional[float] = ..., text_ms: _Optional[float] = ..., vae_encode_ms: _Optional[float] = ..., unet_ms: _Optional[float] = ..., vae_decode_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class GenerationMetadata(_message.Message):
    __slots__ = ("request_id", "seeds", "parameters", "timings", "queue_sequence", "run_sequence")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RUN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seeds: _containers.RepeatedScalarFieldContainer[int]
    parameters: AppliedParameters
    timings: Timings
    queue_sequence: int
    run_sequence: int
    def __init__(self, request_id: _Optional[str] = ..., seeds: _Optional[_Iterable[int]] = ..., parameters: _Optional[_Union[AppliedParameters, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., queue_sequence: _Optional[int] = ..., run_sequence: _Optional[int] = ...) -> None: ...

class ImageResponse(_message.Message):
    __slots__ = ("image", "metadata")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    image: GeneratedImage
    metadata: GenerationMetadata
    def __init__(self, image: _Optional[_Union[GeneratedImage, _Mapping]] = ..., metadata: _Optional[_Union[GenerationMetadata, _Mapping]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("images", "metadata")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[GeneratedImage]
    metadata: GenerationMetadata
    def __init__(self, images: _Optional[_Iterable[_Union[GeneratedImage, _Mapping]]] = ..., metadata: _Optional[_Union[GenerationMetadata, _Mapping]] = ...) -> None: ...

class QueuedEvent(_message.Message):
    __slots__ = ("request_id", "position", "estimated_wait_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    position: int
    estimated_wait_ms: float
    def __init__(self, request_id: _Optional[str] = ..., position: _Optional[int] = ..., estimated_wait_ms: _Optional[float] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("stage", "step", "total_steps")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    stage: Stage
    step: int
    total_steps: int
    def __init__(self, stage: _Optional[_Union[Stage, str]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ...) -> None: ...

class GenerationEvent(_message.Message):
    __slots__ = ("queued", "progress", "image", "done")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    queued: QueuedEvent
    progress: ProgressEvent
    image: GeneratedImage
    done: GenerationMetadata
    def __init__(self, queued: _Optional[_Union[QueuedEvent, _Mapping]] = ..., progress: _Optional[_Union[ProgressEvent, _Mapping]] = ..., image: _Optional[_Union[GeneratedImage, _Mapping]] = ..., done: _Optional[_Union[GenerationMetadata, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunningJob(_message.Message):
    __slots__ = ("request_id", "method", "stage", "step", "total_steps", "elapsed_ms", "width", "height", "num_inference_steps", "batch_size")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    method: str
    stage: Stage
    step: int
    total_steps: int
    elapsed_ms: float
    width: int
    height: int
    num_inference_steps: int
    batch_size: int
    def __init__(self, request_id: _Optional[str] = ..., method: _Optional[str] = ..., stage: _Optional[_Union[Stage, str]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., elapsed_ms: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., batch_size: _Optional[int] = ...) -> None: ...

class ProcessingEstimate(_message.Message):
    __slots__ = ("width", "height", "num_inference_steps", "batch_size", "average_ms", "samples")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    num_inference_steps: int
    batch_size: int
    average_ms: float
    samples: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., average_ms: _Optional[float] = ..., samples: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "backend", "device", "weight_bytes", "default_width", "default_height")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: str
    device: str
    weight_bytes: int
    default_width: int
    default_height: int
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[str] = ..., device: _Optional[str] = ..., weight_bytes: _Optional[int] = ..., default_width: _Optional[int] = ..., default_height: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("ready", "queue_length", "queue_capacity", "running", "estimated_wait_ms", "estimates", "requests_total", "requests_failed", "images_generated", "model", "resident_memory_bytes", "uptime_s")
    READY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_GENERATED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    queue_length: int
    queue_capacity: int
    running: RunningJob
    estimated_wait_ms: float
    estimates: _containers.RepeatedCompositeFieldContainer[ProcessingEstimate]
    requests_total: int
    requests_failed: int
    images_generated: int
    model: ModelInfo
    resident_memory_bytes: int
    uptime_s: float
    def __init__(self, ready: _Optional[bool] = ..., queue_length: _Optional[int] = ..., queue_capacity: _Optional[int] = ..., running: _Optional[_Union[RunningJob, _Mapping]] = ..., estimated_wait_ms: _Optional[float] = ..., estimates: _Optional[_Iterable[_Union[ProcessingEstimate, _Mapping]]] = ..., requests_total: _Optional[int] = ..., requests_failed: _Optional[int] = ..., images_generated: _Optional[int] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., resident_memory_bytes: _Optional[int] = ..., uptime_s: _Optional[float] = ...) -> None: ...
