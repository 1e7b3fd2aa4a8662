from storytelling.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InlinePool(_message.Message):
    __slots__ = ("name", "content", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    format: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., format: _Optional[str] = ...) -> None: ...

class StoryRequestOptions(_message.Message):
    __slots__ = ("mode", "pool", "inline_pool", "num_exemplars", "split", "engine", "sampling", "max_attempts", "theme")
    MODE_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    INLINE_POOL_FIELD_NUMBER: _ClassVar[int]
    NUM_EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    THEME_FIELD_NUMBER: _ClassVar[int]
    mode: _common_pb2.StoryMode
    pool: str
    inline_pool: InlinePool
    num_exemplars: int
    split: str
    engine: str
    sampling: _common_pb2.SamplingParams
    max_attempts: int
    theme: str
    def __init__(self, mode: _Optional[_Union[_common_pb2.StoryMode, str]] = ..., pool: _Optional[str] = ..., inline_pool: _Optional[_Union[InlinePool, _Mapping]] = ..., num_exemplars: _Optional[int] = ..., split: _Optional[str] = ..., engine: _Optional[str] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., max_attempts: _Optional[int] = ..., theme: _Optional[str] = ...) -> None: ...

class WriteStoryRequest(_message.Message):
    __slots__ = ("options", "seed", "story_id")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    options: StoryRequestOptions
    seed: int
    story_id: str
    def __init__(self, options: _Optional[_Union[StoryRequestOptions, _Mapping]] = ..., seed: _Optional[int] = ..., story_id: _Optional[str] = ...) -> None: ...

class WriteStoryResponse(_message.Message):
    __slots__ = ("story",)
    STORY_FIELD_NUMBER: _ClassVar[int]
    story: _common_pb2.Story
    def __init__(self, story: _Optional[_Union[_common_pb2.Story, _Mapping]] = ...) -> None: ...

class WriteStoriesRequest(_message.Message):
    __slots__ = ("options", "count", "seed")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    options: StoryRequestOptions
    count: int
    seed: int
    def __init__(self, options: _Optional[_Union[StoryRequestOptions, _Mapping]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class WriteStoriesResponse(_message.Message):
    __slots__ = ("index", "story")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    index: int
    story: _common_pb2.Story
    def __init__(self, index: _Optional[int] = ..., story: _Optional[_Union[_common_pb2.Story, _Mapping]] = ...) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PoolInfo(_message.Message):
    __slots__ = ("name", "description", "size", "splits", "dimension_counts", "source")
    class SplitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DimensionCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    size: int
    splits: _containers.ScalarMap[str, int]
    dimension_counts: _containers.ScalarMap[str, int]
    source: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., size: _Optional[int] = ..., splits: _Optional[_Mapping[str, int]] = ..., dimension_counts: _Optional[_Mapping[str, int]] = ..., source: _Optional[str] = ...) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools", "default_pool")
    POOLS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POOL_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolInfo]
    default_pool: str
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolInfo, _Mapping]]] = ..., default_pool: _Optional[str] = ...) -> None: ...

class ListModesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModeInfo(_message.Message):
    __slots__ = ("mode", "prompt_version", "description")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    mode: _common_pb2.StoryMode
    prompt_version: str
    description: str
    def __init__(self, mode: _Optional[_Union[_common_pb2.StoryMode, str]] = ..., prompt_version: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListModesResponse(_message.Message):
    __slots__ = ("modes",)
    MODES_FIELD_NUMBER: _ClassVar[int]
    modes: _containers.RepeatedCompositeFieldContainer[ModeInfo]
    def __init__(self, modes: _Optional[_Iterable[_Union[ModeInfo, _Mapping]]] = ...) -> None: ...

class ListEnginesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EngineInfo(_message.Message):
    __slots__ = ("name", "ref", "ready", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    ref: _common_pb2.EngineRef
    ready: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., ref: _Optional[_Union[_common_pb2.EngineRef, _Mapping]] = ..., ready: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class ListEnginesResponse(_message.Message):
    __slots__ = ("engines", "default_engine")
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ENGINE_FIELD_NUMBER: _ClassVar[int]
    engines: _containers.RepeatedCompositeFieldContainer[EngineInfo]
    default_engine: str
    def __init__(self, engines: _Optional[_Iterable[_Union[EngineInfo, _Mapping]]] = ..., default_engine: _Optional[str] = ...) -> None: ...
