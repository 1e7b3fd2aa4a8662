from storytelling.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RenderRequest(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "painter", "width", "height", "steps", "guidance_scale", "seed", "format", "story_id")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    PAINTER_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    painter: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int
    format: _common_pb2.ImageFormat
    story_id: str
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., painter: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., format: _Optional[_Union[_common_pb2.ImageFormat, str]] = ..., story_id: _Optional[str] = ...) -> None: ...

class RenderResponse(_message.Message):
    __slots__ = ("image", "seconds")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    seconds: float
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., seconds: _Optional[float] = ...) -> None: ...

class RenderProgress(_message.Message):
    __slots__ = ("step", "total_steps")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ...) -> None: ...

class RenderEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: RenderProgress
    result: RenderResponse
    def __init__(self, progress: _Optional[_Union[RenderProgress, _Mapping]] = ..., result: _Optional[_Union[RenderResponse, _Mapping]] = ...) -> None: ...

class ListPaintersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PainterInfo(_message.Message):
    __slots__ = ("name", "ref", "ready", "detail", "default_width", "default_height", "default_steps", "max_side", "max_steps", "supports_progress")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    ref: _common_pb2.PainterRef
    ready: bool
    detail: str
    default_width: int
    default_height: int
    default_steps: int
    max_side: int
    max_steps: int
    supports_progress: bool
    def __init__(self, name: _Optional[str] = ..., ref: _Optional[_Union[_common_pb2.PainterRef, _Mapping]] = ..., ready: _Optional[bool] = ..., detail: _Optional[str] = ..., default_width: _Optional[int] = ..., default_height: _Optional[int] = ..., default_steps: _Optional[int] = ..., max_side: _Optional[int] = ..., max_steps: _Optional[int] = ..., supports_progress: _Optional[bool] = ...) -> None: ...

class ListPaintersResponse(_message.Message):
    __slots__ = ("painters", "default_painter")
    PAINTERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PAINTER_FIELD_NUMBER: _ClassVar[int]
    painters: _containers.RepeatedCompositeFieldContainer[PainterInfo]
    default_painter: str
    def __init__(self, painters: _Optional[_Iterable[_Union[PainterInfo, _Mapping]]] = ..., default_painter: _Optional[str] = ...) -> None: ...
