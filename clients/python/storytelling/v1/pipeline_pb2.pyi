import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from storytelling.v1 import common_pb2 as _common_pb2
from storytelling.v1 import evaluation_pb2 as _evaluation_pb2
from storytelling.v1 import render_pb2 as _render_pb2
from storytelling.v1 import story_pb2 as _story_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_STORY: _ClassVar[Stage]
    STAGE_RENDER: _ClassVar[Stage]
    STAGE_EVALUATE: _ClassVar[Stage]

class ItemState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STATE_UNSPECIFIED: _ClassVar[ItemState]
    ITEM_STATE_PENDING: _ClassVar[ItemState]
    ITEM_STATE_RUNNING: _ClassVar[ItemState]
    ITEM_STATE_SUCCEEDED: _ClassVar[ItemState]
    ITEM_STATE_FAILED: _ClassVar[ItemState]
    ITEM_STATE_CANCELLED: _ClassVar[ItemState]
    ITEM_STATE_WAITING: _ClassVar[ItemState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
STAGE_UNSPECIFIED: Stage
STAGE_STORY: Stage
STAGE_RENDER: Stage
STAGE_EVALUATE: Stage
ITEM_STATE_UNSPECIFIED: ItemState
ITEM_STATE_PENDING: ItemState
ITEM_STATE_RUNNING: ItemState
ITEM_STATE_SUCCEEDED: ItemState
ITEM_STATE_FAILED: ItemState
ITEM_STATE_CANCELLED: ItemState
ITEM_STATE_WAITING: ItemState

class JobSpec(_message.Message):
    __slots__ = ("items", "story", "render", "evaluators", "alignment", "diversity", "seed", "name", "skip_render", "skip_evaluation", "max_wait_s")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SKIP_RENDER_FIELD_NUMBER: _ClassVar[int]
    SKIP_EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    items: int
    story: _story_pb2.StoryRequestOptions
    render: _render_pb2.RenderRequest
    evaluators: _containers.RepeatedScalarFieldContainer[_evaluation_pb2.Evaluator]
    alignment: _evaluation_pb2.AlignmentOptions
    diversity: _evaluation_pb2.DiversityOptions
    seed: int
    name: str
    skip_render: bool
    skip_evaluation: bool
    max_wait_s: float
    def __init__(self, items: _Optional[int] = ..., story: _Optional[_Union[_story_pb2.StoryRequestOptions, _Mapping]] = ..., render: _Optional[_Union[_render_pb2.RenderRequest, _Mapping]] = ..., evaluators: _Optional[_Iterable[_Union[_evaluation_pb2.Evaluator, str]]] = ..., alignment: _Optional[_Union[_evaluation_pb2.AlignmentOptions, _Mapping]] = ..., diversity: _Optional[_Union[_evaluation_pb2.DiversityOptions, _Mapping]] = ..., seed: _Optional[int] = ..., name: _Optional[str] = ..., skip_render: _Optional[bool] = ..., skip_evaluation: _Optional[bool] = ..., max_wait_s: _Optional[float] = ...) -> None: ...

class ServiceWait(_message.Message):
    __slots__ = ("service", "reason", "since", "deadline")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    service: str
    reason: str
    since: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    def __init__(self, service: _Optional[str] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ItemArtifacts(_message.Message):
    __slots__ = ("story_path", "image_path", "evaluation_path")
    STORY_PATH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_PATH_FIELD_NUMBER: _ClassVar[int]
    story_path: str
    image_path: str
    evaluation_path: str
    def __init__(self, story_path: _Optional[str] = ..., image_path: _Optional[str] = ..., evaluation_path: _Optional[str] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("index", "state", "stage", "story", "image", "evaluation", "error", "attempts", "artifacts", "story_seed", "image_seed", "waiting")
    class AttemptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    STORY_SEED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SEED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: ItemState
    stage: Stage
    story: _common_pb2.Story
    image: _common_pb2.Image
    evaluation: _evaluation_pb2.ItemEvaluation
    error: str
    attempts: _containers.ScalarMap[str, int]
    artifacts: ItemArtifacts
    story_seed: int
    image_seed: int
    waiting: ServiceWait
    def __init__(self, index: _Optional[int] = ..., state: _Optional[_Union[ItemState, str]] = ..., stage: _Optional[_Union[Stage, str]] = ..., story: _Optional[_Union[_common_pb2.Story, _Mapping]] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., evaluation: _Optional[_Union[_evaluation_pb2.ItemEvaluation, _Mapping]] = ..., error: _Optional[str] = ..., attempts: _Optional[_Mapping[str, int]] = ..., artifacts: _Optional[_Union[ItemArtifacts, _Mapping]] = ..., story_seed: _Optional[int] = ..., image_seed: _Optional[int] = ..., waiting: _Optional[_Union[ServiceWait, _Mapping]] = ...) -> None: ...

class StageCounts(_message.Message):
    __slots__ = ("stage", "done", "failed", "running", "waiting", "wait")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    stage: Stage
    done: int
    failed: int
    running: int
    waiting: int
    wait: ServiceWait
    def __init__(self, stage: _Optional[_Union[Stage, str]] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., running: _Optional[int] = ..., waiting: _Optional[int] = ..., wait: _Optional[_Union[ServiceWait, _Mapping]] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("stages", "items_succeeded", "items_failed")
    STAGES_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[StageCounts]
    items_succeeded: int
    items_failed: int
    def __init__(self, stages: _Optional[_Iterable[_Union[StageCounts, _Mapping]]] = ..., items_succeeded: _Optional[int] = ..., items_failed: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "spec", "state", "created_at", "updated_at", "stages", "items_succeeded", "items_failed", "items", "summary", "directory", "gallery_path", "error", "seed", "started_at", "ended_at", "owner")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    ITEMS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    GALLERY_PATH_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec: JobSpec
    state: JobState
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    stages: _containers.RepeatedCompositeFieldContainer[StageCounts]
    items_succeeded: int
    items_failed: int
    items: _containers.RepeatedCompositeFieldContainer[Item]
    summary: _evaluation_pb2.SetSummary
    directory: str
    gallery_path: str
    error: str
    seed: int
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    owner: str
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[StageCounts, _Mapping]]] = ..., items_succeeded: _Optional[int] = ..., items_failed: _Optional[int] = ..., items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., summary: _Optional[_Union[_evaluation_pb2.SetSummary, _Mapping]] = ..., directory: _Optional[str] = ..., gallery_path: _Optional[str] = ..., error: _Optional[str] = ..., seed: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("spec", "request_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    request_id: str
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_sequence", "omit_results")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OMIT_RESULTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_sequence: int
    omit_results: bool
    def __init__(self, job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., omit_results: _Optional[bool] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("sequence", "job_id", "time", "job_state", "item", "progress", "finished", "snapshot", "counts")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    job_id: str
    time: _timestamp_pb2.Timestamp
    job_state: JobState
    item: Item
    progress: StageProgress
    finished: Job
    snapshot: Job
    counts: JobCounts
    def __init__(self, sequence: _Optional[int] = ..., job_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_state: _Optional[_Union[JobState, str]] = ..., item: _Optional[_Union[Item, _Mapping]] = ..., progress: _Optional[_Union[StageProgress, _Mapping]] = ..., finished: _Optional[_Union[Job, _Mapping]] = ..., snapshot: _Optional[_Union[Job, _Mapping]] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ...) -> None: ...

class StageProgress(_message.Message):
    __slots__ = ("item_index", "stage", "step", "total")
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    item_index: int
    stage: Stage
    step: int
    total: int
    def __init__(self, item_index: _Optional[int] = ..., stage: _Optional[_Union[Stage, str]] = ..., step: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id", "omit_items")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OMIT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    omit_items: bool
    def __init__(self, job_id: _Optional[str] = ..., omit_items: _Optional[bool] = ...) -> None: ...

class ListItemsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token", "states", "omit_results")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    OMIT_RESULTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[ItemState]
    omit_results: bool
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[ItemState, str]]] = ..., omit_results: _Optional[bool] = ...) -> None: ...

class ListItemsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "states")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[JobState]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., states: _Optional[_Iterable[_Union[JobState, str]]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RunItemRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...
