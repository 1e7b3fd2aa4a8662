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
    EVALUATOR_NOVELTY: _ClassVar[Evaluator]
EVALUATOR_UNSPECIFIED: Evaluator
EVALUATOR_DIVERSITY: Evaluator
EVALUATOR_ALIGNMENT: Evaluator
EVALUATOR_COMPLEXITY: Evaluator
EVALUATOR_TEXT_MEASURES: Evaluator
EVALUATOR_NOVELTY: Evaluator

class EvaluationItem(_message.Message):
    __slots__ = ("id", "story", "image", "exemplars", "exemplar_refs")
    ID_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_REFS_FIELD_NUMBER: _ClassVar[int]
    id: str
    story: str
    image: _common_pb2.Image
    exemplars: _containers.RepeatedScalarFieldContainer[str]
    exemplar_refs: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExemplarRef]
    def __init__(self, id: _Optional[str] = ..., story: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., exemplars: _Optional[_Iterable[str]] = ..., exemplar_refs: _Optional[_Iterable[_Union[_common_pb2.ExemplarRef, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("num_controls", "extractor", "judge", "control_stories", "control_pool", "control_seed")
    NUM_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_STORIES_FIELD_NUMBER: _ClassVar[int]
    CONTROL_POOL_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SEED_FIELD_NUMBER: _ClassVar[int]
    num_controls: int
    extractor: str
    judge: str
    control_stories: _containers.RepeatedScalarFieldContainer[str]
    control_pool: str
    control_seed: int
    def __init__(self, num_controls: _Optional[int] = ..., extractor: _Optional[str] = ..., judge: _Optional[str] = ..., control_stories: _Optional[_Iterable[str]] = ..., control_pool: _Optional[str] = ..., control_seed: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("item_id", "alignment", "complexity", "text_measures", "novelty")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    TEXT_MEASURES_FIELD_NUMBER: _ClassVar[int]
    NOVELTY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    alignment: AlignmentResult
    complexity: ComplexityResult
    text_measures: TextMeasuresResult
    novelty: NoveltyResult
    def __init__(self, item_id: _Optional[str] = ..., alignment: _Optional[_Union[AlignmentResult, _Mapping]] = ..., complexity: _Optional[_Union[ComplexityResult, _Mapping]] = ..., text_measures: _Optional[_Union[TextMeasuresResult, _Mapping]] = ..., novelty: _Optional[_Union[NoveltyResult, _Mapping]] = ...) -> None: ...

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

class SetMember(_message.Message):
    __slots__ = ("item_id", "story", "evaluation", "not_evaluated_reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STORY_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    NOT_EVALUATED_REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    story: str
    evaluation: ItemEvaluation
    not_evaluated_reason: str
    def __init__(self, item_id: _Optional[str] = ..., story: _Optional[str] = ..., evaluation: _Optional[_Union[ItemEvaluation, _Mapping]] = ..., not_evaluated_reason: _Optional[str] = ...) -> None: ...

class SummarizeSetRequest(_message.Message):
    __slots__ = ("items", "diversity", "skip_diversity")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    SKIP_DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[SetMember]
    diversity: DiversityOptions
    skip_diversity: bool
    def __init__(self, items: _Optional[_Iterable[_Union[SetMember, _Mapping]]] = ..., diversity: _Optional[_Union[DiversityOptions, _Mapping]] = ..., skip_diversity: _Optional[bool] = ...) -> None: ...

class ReasonCount(_message.Message):
    __slots__ = ("state", "reason", "items")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.EvaluatorStatus.State
    reason: str
    items: int
    def __init__(self, state: _Optional[_Union[_common_pb2.EvaluatorStatus.State, str]] = ..., reason: _Optional[str] = ..., items: _Optional[int] = ...) -> None: ...

class EvaluatorCounts(_message.Message):
    __slots__ = ("ok", "not_run", "failed", "reasons")
    OK_FIELD_NUMBER: _ClassVar[int]
    NOT_RUN_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ok: int
    not_run: int
    failed: int
    reasons: _containers.RepeatedCompositeFieldContainer[ReasonCount]
    def __init__(self, ok: _Optional[int] = ..., not_run: _Optional[int] = ..., failed: _Optional[int] = ..., reasons: _Optional[_Iterable[_Union[ReasonCount, _Mapping]]] = ...) -> None: ...

class NoveltySummary(_message.Message):
    __slots__ = ("mean_exemplar_novelty", "items_with_exemplars", "mean_pool_novelty", "max_memorisation", "most_memorised_item", "most_memorised_pool_story", "memorised_items", "pool")
    MEAN_EXEMPLAR_NOVELTY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_WITH_EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    MEAN_POOL_NOVELTY_FIELD_NUMBER: _ClassVar[int]
    MAX_MEMORISATION_FIELD_NUMBER: _ClassVar[int]
    MOST_MEMORISED_ITEM_FIELD_NUMBER: _ClassVar[int]
    MOST_MEMORISED_POOL_STORY_FIELD_NUMBER: _ClassVar[int]
    MEMORISED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    mean_exemplar_novelty: float
    items_with_exemplars: int
    mean_pool_novelty: float
    max_memorisation: float
    most_memorised_item: str
    most_memorised_pool_story: _common_pb2.ExemplarRef
    memorised_items: int
    pool: str
    def __init__(self, mean_exemplar_novelty: _Optional[float] = ..., items_with_exemplars: _Optional[int] = ..., mean_pool_novelty: _Optional[float] = ..., max_memorisation: _Optional[float] = ..., most_memorised_item: _Optional[str] = ..., most_memorised_pool_story: _Optional[_Union[_common_pb2.ExemplarRef, _Mapping]] = ..., memorised_items: _Optional[int] = ..., pool: _Optional[str] = ...) -> None: ...

class SetSummary(_message.Message):
    __slots__ = ("diversity", "mean_alignment", "mean_complexity", "alignment_by_dimension", "mean_false_yes_rate", "items", "alignment_status", "complexity_status", "alignment_counts", "complexity_counts", "text_measures_counts", "novelty_counts", "items_not_evaluated", "not_evaluated_reasons", "novelty", "false_yes_items", "mean_dimensions_covered", "complexity_by_dimension")
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    MEAN_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    MEAN_COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MEAN_FALSE_YES_RATE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_STATUS_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_MEASURES_COUNTS_FIELD_NUMBER: _ClassVar[int]
    NOVELTY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_NOT_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    NOT_EVALUATED_REASONS_FIELD_NUMBER: _ClassVar[int]
    NOVELTY_FIELD_NUMBER: _ClassVar[int]
    FALSE_YES_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MEAN_DIMENSIONS_COVERED_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    diversity: DiversityResult
    mean_alignment: float
    mean_complexity: float
    alignment_by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    mean_false_yes_rate: float
    items: int
    alignment_status: _common_pb2.EvaluatorStatus
    complexity_status: _common_pb2.EvaluatorStatus
    alignment_counts: EvaluatorCounts
    complexity_counts: EvaluatorCounts
    text_measures_counts: EvaluatorCounts
    novelty_counts: EvaluatorCounts
    items_not_evaluated: int
    not_evaluated_reasons: _containers.RepeatedCompositeFieldContainer[ReasonCount]
    novelty: NoveltySummary
    false_yes_items: int
    mean_dimensions_covered: float
    complexity_by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    def __init__(self, diversity: _Optional[_Union[DiversityResult, _Mapping]] = ..., mean_alignment: _Optional[float] = ..., mean_complexity: _Optional[float] = ..., alignment_by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., mean_false_yes_rate: _Optional[float] = ..., items: _Optional[int] = ..., alignment_status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., complexity_status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., alignment_counts: _Optional[_Union[EvaluatorCounts, _Mapping]] = ..., complexity_counts: _Optional[_Union[EvaluatorCounts, _Mapping]] = ..., text_measures_counts: _Optional[_Union[EvaluatorCounts, _Mapping]] = ..., novelty_counts: _Optional[_Union[EvaluatorCounts, _Mapping]] = ..., items_not_evaluated: _Optional[int] = ..., not_evaluated_reasons: _Optional[_Iterable[_Union[ReasonCount, _Mapping]]] = ..., novelty: _Optional[_Union[NoveltySummary, _Mapping]] = ..., false_yes_items: _Optional[int] = ..., mean_dimensions_covered: _Optional[float] = ..., complexity_by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("status", "diversity", "per_story", "novelty", "per_story_novelty", "vendi_score", "k", "embedder", "search", "recall", "recall_sample", "distinct_2")
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
    RECALL_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_2_FIELD_NUMBER: _ClassVar[int]
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
    recall_sample: int
    distinct_2: float
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., diversity: _Optional[float] = ..., per_story: _Optional[_Iterable[float]] = ..., novelty: _Optional[float] = ..., per_story_novelty: _Optional[_Iterable[float]] = ..., vendi_score: _Optional[float] = ..., k: _Optional[int] = ..., embedder: _Optional[str] = ..., search: _Optional[str] = ..., recall: _Optional[float] = ..., recall_sample: _Optional[int] = ..., distinct_2: _Optional[float] = ...) -> None: ...

class AlignmentRequest(_message.Message):
    __slots__ = ("item", "options")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    item: EvaluationItem
    options: AlignmentOptions
    def __init__(self, item: _Optional[_Union[EvaluationItem, _Mapping]] = ..., options: _Optional[_Union[AlignmentOptions, _Mapping]] = ...) -> None: ...

class AlignmentResult(_message.Message):
    __slots__ = ("status", "score", "by_dimension", "key_points", "false_yes_rate", "extraction_raw", "provenance")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    KEY_POINTS_FIELD_NUMBER: _ClassVar[int]
    FALSE_YES_RATE_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_RAW_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    score: float
    by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    key_points: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyPoint]
    false_yes_rate: float
    extraction_raw: str
    provenance: EvaluationProvenance
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., score: _Optional[float] = ..., by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., key_points: _Optional[_Iterable[_Union[_common_pb2.KeyPoint, _Mapping]]] = ..., false_yes_rate: _Optional[float] = ..., extraction_raw: _Optional[str] = ..., provenance: _Optional[_Union[EvaluationProvenance, _Mapping]] = ...) -> None: ...

class EvaluationProvenance(_message.Message):
    __slots__ = ("extractor_prompt_version", "prompt_version", "extractor", "judge", "extractor_sampling", "judge_sampling", "control_seed", "control_pool", "rejected", "scorer")
    EXTRACTOR_PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    EXTRACTOR_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SEED_FIELD_NUMBER: _ClassVar[int]
    CONTROL_POOL_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SCORER_FIELD_NUMBER: _ClassVar[int]
    extractor_prompt_version: str
    prompt_version: str
    extractor: _common_pb2.EngineRef
    judge: _common_pb2.EngineRef
    extractor_sampling: _common_pb2.SamplingParams
    judge_sampling: _common_pb2.SamplingParams
    control_seed: int
    control_pool: str
    rejected: _containers.RepeatedCompositeFieldContainer[_common_pb2.RejectedOutput]
    scorer: str
    def __init__(self, extractor_prompt_version: _Optional[str] = ..., prompt_version: _Optional[str] = ..., extractor: _Optional[_Union[_common_pb2.EngineRef, _Mapping]] = ..., judge: _Optional[_Union[_common_pb2.EngineRef, _Mapping]] = ..., extractor_sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., judge_sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., control_seed: _Optional[int] = ..., control_pool: _Optional[str] = ..., rejected: _Optional[_Iterable[_Union[_common_pb2.RejectedOutput, _Mapping]]] = ..., scorer: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("status", "score", "by_dimension", "clues", "scorer", "raw", "provenance")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BY_DIMENSION_FIELD_NUMBER: _ClassVar[int]
    CLUES_FIELD_NUMBER: _ClassVar[int]
    SCORER_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    score: float
    by_dimension: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    clues: _containers.RepeatedCompositeFieldContainer[Clue]
    scorer: str
    raw: str
    provenance: EvaluationProvenance
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., score: _Optional[float] = ..., by_dimension: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., clues: _Optional[_Iterable[_Union[Clue, _Mapping]]] = ..., scorer: _Optional[str] = ..., raw: _Optional[str] = ..., provenance: _Optional[_Union[EvaluationProvenance, _Mapping]] = ...) -> None: ...

class TextMeasuresRequest(_message.Message):
    __slots__ = ("story",)
    STORY_FIELD_NUMBER: _ClassVar[int]
    story: str
    def __init__(self, story: _Optional[str] = ...) -> None: ...

class TextMeasuresResult(_message.Message):
    __slots__ = ("status", "dimensions", "dimensions_covered", "characters", "events", "causal_links", "mental_states", "words", "method", "repetition")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_COVERED_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CAUSAL_LINKS_FIELD_NUMBER: _ClassVar[int]
    MENTAL_STATES_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REPETITION_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    dimensions: _containers.RepeatedCompositeFieldContainer[_common_pb2.DimensionScore]
    dimensions_covered: int
    characters: int
    events: int
    causal_links: int
    mental_states: int
    words: int
    method: str
    repetition: float
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., dimensions: _Optional[_Iterable[_Union[_common_pb2.DimensionScore, _Mapping]]] = ..., dimensions_covered: _Optional[int] = ..., characters: _Optional[int] = ..., events: _Optional[int] = ..., causal_links: _Optional[int] = ..., mental_states: _Optional[int] = ..., words: _Optional[int] = ..., method: _Optional[str] = ..., repetition: _Optional[float] = ...) -> None: ...

class NoveltyResult(_message.Message):
    __slots__ = ("status", "exemplar_novelty", "exemplars", "pool_novelty", "memorisation", "nearest_pool_story", "memorised", "memorisation_threshold", "embedder")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_NOVELTY_FIELD_NUMBER: _ClassVar[int]
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    POOL_NOVELTY_FIELD_NUMBER: _ClassVar[int]
    MEMORISATION_FIELD_NUMBER: _ClassVar[int]
    NEAREST_POOL_STORY_FIELD_NUMBER: _ClassVar[int]
    MEMORISED_FIELD_NUMBER: _ClassVar[int]
    MEMORISATION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.EvaluatorStatus
    exemplar_novelty: float
    exemplars: int
    pool_novelty: float
    memorisation: float
    nearest_pool_story: _common_pb2.ExemplarRef
    memorised: bool
    memorisation_threshold: float
    embedder: str
    def __init__(self, status: _Optional[_Union[_common_pb2.EvaluatorStatus, _Mapping]] = ..., exemplar_novelty: _Optional[float] = ..., exemplars: _Optional[int] = ..., pool_novelty: _Optional[float] = ..., memorisation: _Optional[float] = ..., nearest_pool_story: _Optional[_Union[_common_pb2.ExemplarRef, _Mapping]] = ..., memorised: _Optional[bool] = ..., memorisation_threshold: _Optional[float] = ..., embedder: _Optional[str] = ...) -> None: ...

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
