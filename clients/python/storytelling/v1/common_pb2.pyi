import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dimension(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIMENSION_UNSPECIFIED: _ClassVar[Dimension]
    DIMENSION_TIME: _ClassVar[Dimension]
    DIMENSION_LOCATION: _ClassVar[Dimension]
    DIMENSION_CHARACTER_ROLE: _ClassVar[Dimension]
    DIMENSION_CHARACTER_RELATIONSHIP: _ClassVar[Dimension]
    DIMENSION_EVENT: _ClassVar[Dimension]
    DIMENSION_EVENT_CAUSAL_RELATIONSHIP: _ClassVar[Dimension]
    DIMENSION_MENTAL_STATE: _ClassVar[Dimension]

class StoryMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORY_MODE_UNSPECIFIED: _ClassVar[StoryMode]
    STORY_MODE_NAIVE: _ClassVar[StoryMode]
    STORY_MODE_COR_GUIDED: _ClassVar[StoryMode]
    STORY_MODE_SHORT: _ClassVar[StoryMode]

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
DIMENSION_UNSPECIFIED: Dimension
DIMENSION_TIME: Dimension
DIMENSION_LOCATION: Dimension
DIMENSION_CHARACTER_ROLE: Dimension
DIMENSION_CHARACTER_RELATIONSHIP: Dimension
DIMENSION_EVENT: Dimension
DIMENSION_EVENT_CAUSAL_RELATIONSHIP: Dimension
DIMENSION_MENTAL_STATE: Dimension
STORY_MODE_UNSPECIFIED: StoryMode
STORY_MODE_NAIVE: StoryMode
STORY_MODE_COR_GUIDED: StoryMode
STORY_MODE_SHORT: StoryMode
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_p", "max_tokens", "seed")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class EngineRef(_message.Message):
    __slots__ = ("kind", "endpoint", "model", "adapter")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    kind: str
    endpoint: str
    model: str
    adapter: str
    def __init__(self, kind: _Optional[str] = ..., endpoint: _Optional[str] = ..., model: _Optional[str] = ..., adapter: _Optional[str] = ...) -> None: ...

class Exemplar(_message.Message):
    __slots__ = ("id", "pool", "text", "dimensions", "split")
    ID_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    pool: str
    text: str
    dimensions: _containers.RepeatedScalarFieldContainer[Dimension]
    split: str
    def __init__(self, id: _Optional[str] = ..., pool: _Optional[str] = ..., text: _Optional[str] = ..., dimensions: _Optional[_Iterable[_Union[Dimension, str]]] = ..., split: _Optional[str] = ...) -> None: ...

class ExemplarRef(_message.Message):
    __slots__ = ("pool", "id")
    POOL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    pool: str
    id: str
    def __init__(self, pool: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class StoryProvenance(_message.Message):
    __slots__ = ("mode", "prompt_version", "exemplars", "engine", "sampling", "seed", "rejected", "created_at", "prompt_tokens", "completion_tokens", "salvaged")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SALVAGED_FIELD_NUMBER: _ClassVar[int]
    mode: StoryMode
    prompt_version: str
    exemplars: _containers.RepeatedCompositeFieldContainer[ExemplarRef]
    engine: EngineRef
    sampling: SamplingParams
    seed: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedOutput]
    created_at: _timestamp_pb2.Timestamp
    prompt_tokens: int
    completion_tokens: int
    salvaged: bool
    def __init__(self, mode: _Optional[_Union[StoryMode, str]] = ..., prompt_version: _Optional[str] = ..., exemplars: _Optional[_Iterable[_Union[ExemplarRef, _Mapping]]] = ..., engine: _Optional[_Union[EngineRef, _Mapping]] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., seed: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedOutput, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., salvaged: _Optional[bool] = ...) -> None: ...

class RejectedOutput(_message.Message):
    __slots__ = ("reason", "detail", "text")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    detail: str
    text: str
    def __init__(self, reason: _Optional[str] = ..., detail: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class Story(_message.Message):
    __slots__ = ("id", "text", "provenance")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    provenance: StoryProvenance
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., provenance: _Optional[_Union[StoryProvenance, _Mapping]] = ...) -> None: ...

class PainterRef(_message.Message):
    __slots__ = ("kind", "model", "endpoint", "is_fallback", "note")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    IS_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    endpoint: str
    is_fallback: bool
    note: str
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ..., endpoint: _Optional[str] = ..., is_fallback: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("data", "format", "width", "height", "seed", "painter", "steps", "guidance_scale", "prompt", "long_prompt_strategy", "prompt_tokens", "encoded_tokens")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PAINTER_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    LONG_PROMPT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ENCODED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    format: ImageFormat
    width: int
    height: int
    seed: int
    painter: PainterRef
    steps: int
    guidance_scale: float
    prompt: str
    long_prompt_strategy: str
    prompt_tokens: int
    encoded_tokens: int
    def __init__(self, data: _Optional[bytes] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., seed: _Optional[int] = ..., painter: _Optional[_Union[PainterRef, _Mapping]] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., prompt: _Optional[str] = ..., long_prompt_strategy: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., encoded_tokens: _Optional[int] = ...) -> None: ...

class KeyPoint(_message.Message):
    __slots__ = ("dimension", "text", "question", "answer", "score", "from_logprobs", "is_control", "source_story_id")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FROM_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    IS_CONTROL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STORY_ID_FIELD_NUMBER: _ClassVar[int]
    dimension: Dimension
    text: str
    question: str
    answer: str
    score: float
    from_logprobs: bool
    is_control: bool
    source_story_id: str
    def __init__(self, dimension: _Optional[_Union[Dimension, str]] = ..., text: _Optional[str] = ..., question: _Optional[str] = ..., answer: _Optional[str] = ..., score: _Optional[float] = ..., from_logprobs: _Optional[bool] = ..., is_control: _Optional[bool] = ..., source_story_id: _Optional[str] = ...) -> None: ...

class EvaluatorStatus(_message.Message):
    __slots__ = ("state", "reason", "engine", "seconds", "random_weights")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[EvaluatorStatus.State]
        STATE_OK: _ClassVar[EvaluatorStatus.State]
        STATE_NOT_RUN: _ClassVar[EvaluatorStatus.State]
        STATE_FAILED: _ClassVar[EvaluatorStatus.State]
    STATE_UNSPECIFIED: EvaluatorStatus.State
    STATE_OK: EvaluatorStatus.State
    STATE_NOT_RUN: EvaluatorStatus.State
    STATE_FAILED: EvaluatorStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    state: EvaluatorStatus.State
    reason: str
    engine: str
    seconds: float
    random_weights: bool
    def __init__(self, state: _Optional[_Union[EvaluatorStatus.State, str]] = ..., reason: _Optional[str] = ..., engine: _Optional[str] = ..., seconds: _Optional[float] = ..., random_weights: _Optional[bool] = ...) -> None: ...

class DimensionScore(_message.Message):
    __slots__ = ("dimension", "score", "count")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    dimension: Dimension
    score: float
    count: int
    def __init__(self, dimension: _Optional[_Union[Dimension, str]] = ..., score: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...
