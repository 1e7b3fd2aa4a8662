from storytelling.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Evaluator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATOR_UNSPECIFIED: _ClassVar[Evaluator]
    EVALUATOR_DIVERSITY: _ClassVar[Evaluator]
    EVALUATOR_ALIGNMENT: _ClassVar[Evaluator]
    EVALUATOR_COMPLEXITY: _ClassVar[Evaluator]
    EVALUATOR_TEXT_MEASURES: _ClassVar[Evaluator]
EVALUATOR_UNSPECIFIED: Evaluator
EVALUATOR_DIVERSITY: Evaluator
EVALUATOR_ALIGNMENT: Evaluator
EVALUATOR_COMPLEXITY: Evaluator
EVALUATOR_TEXT_MEASURES: Evaluator

class EvaluationItem(_message.Message):
    __slots__ = ("id", "story", "image")
    ID_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    story: str
    image: _common_pb2.Image
    def __init__(self, id: _Optional[str] = ..., story: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class DiversityOptions(_message.Message):
    __slots__ = ("k", "reference", "embedder")
    K_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    k: int
    reference: _containers.RepeatedScalarFieldContainer[str]
    embedder: str
    def __init__(self, k: _Optional[int] = ..., reference: _Optional[_Iterable[str]] = ..., embedder: _Optional[str] = ...) -> None: ...

class AlignmentOptions(_message.Message):
    __slots__ = ("num_controls", "extractor", "judge", "control_stories")
    NUM_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_STORIES_FIELD_NUMBER: _ClassVar[int]
    num_controls: int
    extractor: str
    judge: str
    control_stories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, num_controls: _Optional[int] = ..., extractor: _Optional[str] = ..., judge: _Optional[str] = ..., control_stories: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluateItemRequest(_message.Message):
    __slots__ = ("item", "evaluators", "alignment")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    item: EvaluationItem
    evaluators: _containers.RepeatedScalarFieldContainer[Evaluator]
    alignment: AlignmentOptions
    def __init__(self, item: _Optional[_Union[EvaluationItem, _Mapping]] = ..., evaluators: _Optional[_Iterable[_Union[Evaluator, str]]] = ..., alignment: _Optional[_Union[AlignmentOptions, _Mapping]] = ...) -> None: ...

class EvaluateItemResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: ItemEvaluation
    def __init__(self, evaluation: _Optional[_Union[ItemEvaluation, _Mapping]] = ...) -> None: ...

class ItemEvaluation(_message.Message):
    __slots__ = ("item_id", "alignment", "complexity", "text_measures")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    TEXT_MEASURES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    alignment: AlignmentResult
    complexity: ComplexityResult
    text_measures: TextMeasuresResult
    def __init__(self, item_id: _Optional[str] = ..., alignment: _Optional[_Union[AlignmentResult, _Mapping]] = ..., complexity: _Optional[_Union[ComplexityResult, _Mapping]] = ..., text_measures: _Optional[_Union[TextMeasuresResult, _Mapping]] = ...) -> None: ...

class EvaluateSetRequest(_message.Message):
    __slots__ = ("items", "evaluators", "diversity", "alignment")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[EvaluationItem]
    evaluators: _containers.RepeatedScalarFieldContainer[Evaluator]
    diversity: DiversityOptions
    alignment: AlignmentOptions
    def __init__(self, items: _Optional[_Iterable[_Union[EvaluationItem, _Mapping]]] = ..., evaluators: _Optional[_Iterable[_Union[Evaluator, str]]] = ..., diversity: _Optional[_Union[DiversityOptions, _Mapping]] = ..., alignment: _Optional[_Union[AlignmentOptions, _Mapping]] = ...) -> None: ...

class SetSummary(_message.Message):
    __slots__ = ("diversity", "mean_alignment", "mean_complexity", "alignment_by_dimension", "mean_false_yes_rate", "items", "alignment_status", "complexity_status")
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    MEAN_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    MEAN_COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MEAN_FALSE_YES_RATE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_STATUS_FIELD_NUMBER: _ClassVar[int]
    diversity: DiversityResult
    mean_alignment: float
    mean_complexity: float
    alignment_by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    mean_false_yes_rate: float
    items: int
    alignment_status: _common_pb2.EvaluatorStatus
    complexity_status: _common_pb2.EvaluatorStatus
    def __init__(self, diversity: _Optional[_Union[DiversityResult, _Mapping]] = ..., mean_alignment: _Optional[float] = ..., mean_complexity: _Optional[float] = ..., alignment_by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., mean_false_yes_rate: _Optional[float] = ..., items: _Optional[int] = ..., alignment_status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., complexity_status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ...) -> None: ...

class EvaluateSetEvent(_message.Message):
    __slots__ = ("item", "summary")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    item: ItemEvaluation
    summary: SetSummary
    def __init__(self, item: _Optional[_Union[ItemEvaluation, _Mapping]] = ..., summary: _Optional[_Union[SetSummary, _Mapping]] = ...) -> None: ...

class DiversityRequest(_message.Message):
    __slots__ = ("stories", "options")
    STORIES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    stories: _containers.RepeatedScalarFieldContainer[str]
    options: DiversityOptions
    def __init__(self, stories: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[DiversityOptions, _Mapping]] = ...) -> None: ...

class DiversityResult(_message.Message):
    __slots__ = ("status", "diversity", "per_story", "novelty", "per_story_novelty", "vendi_score", "k", "embedder", "search", "recall")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    PER_STORY_FIELD_NUMBER: _ClassVar[int]
    NOVELTY_FIELD_NUMBER: _ClassVar[int]
    PER_STORY_NOVELTY_FIELD_NUMBER: _ClassVar[int]
    VENDI_SCORE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    diversity: float
    per_story: _containers.RepeatedScalarFieldContainer[float]
    novelty: float
    per_story_novelty: _containers.RepeatedScalarFieldContainer[float]
    vendi_score: float
    k: int
    embedder: str
    search: str
    recall: float
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., diversity: _Optional[float] = ..., per_story: _Optional[_Iterable[float]] = ..., novelty: _Optional[float] = ..., per_story_novelty: _Optional[_Iterable[float]] = ..., vendi_score: _Optional[float] = ..., k: _Optional[int] = ..., embedder: _Optional[str] = ..., search: _Optional[str] = ..., recall: _Optional[float] = ...) -> None: ...

class AlignmentRequest(_message.Message):
    __slots__ = ("item", "options")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    item: EvaluationItem
    options: AlignmentOptions
    def __init__(self, item: _Optional[_Union[EvaluationItem, _Mapping]] = ..., options: _Optional[_Union[AlignmentOptions, _Mapping]] = ...) -> None: ...

class AlignmentResult(_message.Message):
    __slots__ = ("status", "score", "by_dimension", "key_points", "false_yes_rate", "extraction_raw")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    KEY_POINTS_FIELD_NUMBER: _ClassVar[int]
    FALSE_YES_RATE_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_RAW_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    score: float
    by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    key_points: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyPoint]
    false_yes_rate: float
    extraction_raw: str
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., score: _Optional[float] = ..., by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., key_points: _Optional[_Iterable[_Union[_common_pb2.KeyPoint, _Mapping]]] = ..., false_yes_rate: _Optional[float] = ..., extraction_raw: _Optional[str] = ...) -> None: ...

class ComplexityRequest(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ...) -> None: ...

class Clue(_message.Message):
    __slots__ = ("dimension", "clue", "inference")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CLUE_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    dimension: _common_pb2.Dimension
    clue: str
    inference: str
    def __init__(self, dimension: _Optional[_Union[_common_pb2.Dimension, str]] = ..., clue: _Optional[str] = ..., inference: _Optional[str] = ...) -> None: ...

class ComplexityResult(_message.Message):
    __slots__ = ("status", "score", "by_dimension", "clues", "scorer", "raw")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CLUES_FIELD_NUMBER: _ClassVar[int]
    SCORER_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    score: float
    by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    clues: _containers.RepeatedCompositeFieldContainer[Clue]
    scorer: str
    raw: str
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., score: _Optional[float] = ..., by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., clues: _Optional[_Iterable[_Union[Clue, _Mapping]]] = ..., scorer: _Optional[str] = ..., raw: _Optional[str] = ...) -> None: ...

class TextMeasuresRequest(_message.Message):
    __slots__ = ("story",)
    STORY_FIELD_NUMBER: _ClassVar[int]
    story: str
    def __init__(self, story: _Optional[str] = ...) -> None: ...

class TextMeasuresResult(_message.Message):
    __slots__ = ("status", "dimensions", "dimensions_covered", "characters", "events", "causal_links", "mental_states", "words")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_COVERED_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CAUSAL_LINKS_FIELD_NUMBER: _ClassVar[int]
    MENTAL_STATES_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    dimensions: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    dimensions_covered: int
    characters: int
    events: int
    causal_links: int
    mental_states: int
    words: int
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., dimensions: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., dimensions_covered: _Optional[int] = ..., characters: _Optional[int] = ..., events: _Optional[int] = ..., causal_links: _Optional[int] = ..., mental_states: _Optional[int] = ..., words: _Optional[int] = ...) -> None: ...

class ListEvaluatorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EvaluatorInfo(_message.Message):
    __slots__ = ("evaluator", "status", "description")
    EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    evaluator: Evaluator
    status: _common_pb2.EvaluatorStatus
    description: str
    def __init__(self, evaluator: _Optional[_Union[Evaluator, str]] = ..., status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class ListEvaluatorsResponse(_message.Message):
    __slots__ = ("evaluators",)
    EVALUATORS_FIELD_NUMBER: _ClassVar[int]
    evaluators: _containers.RepeatedCompositeFieldContainer[EvaluatorInfo]
    def __init__(self, evaluators: _Optional[_Iterable[_Union[EvaluatorInfo, _Mapping]]] = ...) -> None: ...
