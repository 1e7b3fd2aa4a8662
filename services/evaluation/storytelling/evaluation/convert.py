"""Protobuf <-> core types for the evaluation API. Request checks name the offending field."""

from collections.abc import Sequence

from storytelling.api import vocabulary
from storytelling.evaluation.alignment import AlignmentReport
from storytelling.evaluation.complexity import ComplexityReport
from storytelling.evaluation.controls import DEFAULT_CONTROLS
from storytelling.evaluation.core import AlignmentOptions, Item, ItemResult, Kind
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.diversity import DiversityReport
from storytelling.evaluation.images import EncodedImage, check_image
from storytelling.evaluation.novelty import NoveltyReport
from storytelling.evaluation.outcome import Outcome, State, Status
from storytelling.evaluation.provenance import EngineRef, Provenance
from storytelling.evaluation.scores import DimensionScore
from storytelling.evaluation.summary import (
    Counts,
    Measured,
    Member,
    NoveltyMeasured,
    ReasonCount,
    SetSummary,
)
from storytelling.evaluation.text_measures import TextMeasures
from storytelling.llm import SamplingParams
from storytelling.api.pools import PoolRegistry
from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import common_pb2, evaluation_pb2

_FORMATS = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: None,
    common_pb2.IMAGE_FORMAT_PNG: "PNG",
    common_pb2.IMAGE_FORMAT_JPEG: "JPEG",
    common_pb2.IMAGE_FORMAT_WEBP: "WEBP",
}
_KINDS = {
    evaluation_pb2.EVALUATOR_DIVERSITY: Kind.DIVERSITY,
    evaluation_pb2.EVALUATOR_ALIGNMENT: Kind.ALIGNMENT,
    evaluation_pb2.EVALUATOR_COMPLEXITY: Kind.COMPLEXITY,
    evaluation_pb2.EVALUATOR_TEXT_MEASURES: Kind.TEXT_MEASURES,
    evaluation_pb2.EVALUATOR_NOVELTY: Kind.NOVELTY,
}
KIND_TO_PB = {kind: value for value, kind in _KINDS.items()}
_STATES = {
    State.OK: common_pb2.EvaluatorStatus.STATE_OK,
    State.NOT_RUN: common_pb2.EvaluatorStatus.STATE_NOT_RUN,
    State.FAILED: common_pb2.EvaluatorStatus.STATE_FAILED,
}
_STATE_OF = {value: state for state, value in _STATES.items()}


# --- requests ---------------------------------------------------------------------------------------


def story(text: str, field: str) -> str:
    if not text.strip():
        raise InvalidArgument("must be a non-empty story", field=field)
    return text


def stories(texts: Sequence[str], field: str) -> list[str]:
    return [story(t, f"{field}[{i}]") for i, t in enumerate(texts)]


def image(message: common_pb2.Image, field: str, max_pixels: int) -> EncodedImage:
    declared = _FORMATS.get(message.format, "unknown")
    if declared == "unknown":
        raise InvalidArgument(
            f"unsupported image format enum value {message.format}", field=f"{field}.format"
        )
    try:
        return check_image(message.data, declared, max_pixels)
    except ValueError as exc:
        raise InvalidArgument(str(exc), field=f"{field}.data") from None


def exemplars(message: evaluation_pb2.EvaluationItem, field: str, pools: PoolRegistry) -> tuple[str, ...]:
    """The item's exemplar texts: those given inline, then those referenced by pool and id."""
    texts = stories(message.exemplars, f"{field}.exemplars")
    for i, ref in enumerate(message.exemplar_refs):
        pool = pools.get(ref.pool)
        if pool is None:
            raise InvalidArgument(
                f"unknown pool {ref.pool!r}; known: {', '.join(pools.names())}",
                field=f"{field}.exemplar_refs[{i}].pool",
            )
        entry = pool.get(ref.id)
        if entry is None:
            raise InvalidArgument(
                f"pool {pool.name} has no story {ref.id!r}", field=f"{field}.exemplar_refs[{i}].id"
            )
        texts.append(entry.story)
    return tuple(texts)


def item(
    message: evaluation_pb2.EvaluationItem,
    field: str,
    pools: PoolRegistry,
    max_pixels: int,
    *,
    needs_story: bool = True,
) -> Item:
    return Item(
        id=message.id,
        story=story(message.story, f"{field}.story") if needs_story else message.story,
        image=image(message.image, f"{field}.image", max_pixels) if message.HasField("image") else None,
        exemplars=exemplars(message, field, pools),
    )


def k(value: int, field: str) -> int | None:
    """0 means the service default."""
    if value < 0:
        raise InvalidArgument(f"k must be >= 1 (0 for the default), got {value}", field=field)
    return value or None


def kinds(values: Sequence[int], field: str, allowed: Sequence[Kind]) -> list[Kind]:
    """Requested evaluators; empty means all of `allowed`."""
    result = []
    for i, value in enumerate(values):
        kind = _KINDS.get(value)
        if kind is None:
            raise InvalidArgument(f"unknown evaluator {value}", field=f"{field}[{i}]")
        if kind not in allowed:
            raise InvalidArgument(
                f"{kind.value} is not evaluated per item: use EvaluateSet or Diversity", field=f"{field}[{i}]"
            )
        result.append(kind)
    return result or list(allowed)


def alignment_options(
    message: evaluation_pb2.AlignmentOptions,
    field: str,
    extractors: Sequence[str],
    judges: Sequence[str],
    pools: PoolRegistry,
) -> AlignmentOptions:
    if message.num_controls < -1:
        raise InvalidArgument(
            f"must be -1, 0 or positive, got {message.num_controls}", field=f"{field}.num_controls"
        )
    for name, known, sub in ((message.extractor, extractors, "extractor"), (message.judge, judges, "judge")):
        if name and name not in known:
            raise InvalidArgument(
                f"unknown engine {name!r}; configured: {sorted(known)}", field=f"{field}.{sub}"
            )
    if message.control_pool and pools.get(message.control_pool) is None:
        raise InvalidArgument(
            f"unknown pool {message.control_pool!r}; known: {', '.join(pools.names())}",
            field=f"{field}.control_pool",
        )
    controls = stories(message.control_stories, f"{field}.control_stories")
    return AlignmentOptions(
        extractor=message.extractor,
        judge=message.judge,
        num_controls=DEFAULT_CONTROLS if message.num_controls == 0 else message.num_controls,
        control_stories=tuple((f"control-{i}", text) for i, text in enumerate(controls)),
        control_pool=message.control_pool,
        control_seed=message.control_seed if message.HasField("control_seed") else None,
    )


def set_items(
    messages: Sequence[evaluation_pb2.EvaluationItem],
    wanted: Sequence[Kind],
    pools: PoolRegistry,
    max_pixels: int,
) -> list[Item]:
    if not messages:
        raise InvalidArgument("must hold at least one item", field="items")
    if Kind.DIVERSITY in wanted and len(messages) < 2:
        raise InvalidArgument("diversity needs a set of at least 2 stories", field="items")
    items = [
        item(m, f"items[{i}]", pools, max_pixels, needs_story=bool(set(wanted) - {Kind.COMPLEXITY}))
        for i, m in enumerate(messages)
    ]
    items = [it if it.id else Item(str(i), it.story, it.image, it.exemplars) for i, it in enumerate(items)]
    seen: set[str] = set()
    for i, it in enumerate(items):
        if it.id in seen:
            raise InvalidArgument(f"duplicate item id {it.id!r}", field=f"items[{i}].id")
        seen.add(it.id)
    with_image = [i for i, it in enumerate(items) if it.image is not None]
    if with_image and len(with_image) != len(items):
        missing = next(i for i, it in enumerate(items) if it.image is None)
        raise InvalidArgument(
            f"{len(with_image)} images for {len(items)} stories: every item needs an image, or none",
            field=f"items[{missing}].image",
        )
    return items


def members(messages: Sequence[evaluation_pb2.SetMember]) -> list[Member]:
    if not messages:
        raise InvalidArgument("must hold at least one item", field="items")
    seen: set[str] = set()
    result = []
    for i, message in enumerate(messages):
        if not message.item_id:
            raise InvalidArgument("required", field=f"items[{i}].item_id")
        if message.item_id in seen:
            raise InvalidArgument(f"duplicate item id {message.item_id!r}", field=f"items[{i}].item_id")
        seen.add(message.item_id)
        if message.HasField("evaluation"):
            result.append(member(message.item_id, message.story, message.evaluation))
        else:
            result.append(
                Member(
                    message.item_id,
                    message.story,
                    evaluated=False,
                    not_evaluated_reason=message.not_evaluated_reason,
                )
            )
    return result


def member(item_id: str, story_text: str, evaluation: evaluation_pb2.ItemEvaluation) -> Member:
    """A set member read back from its stored evaluation (the form every summary is computed from)."""
    e = evaluation
    return Member(
        item_id=item_id,
        story=story_text,
        alignment=_measured(e.alignment, e.alignment.score, e.alignment.by_dimension, e.alignment)
        if e.HasField("alignment")
        else None,
        complexity=_measured(e.complexity, e.complexity.score, e.complexity.by_dimension)
        if e.HasField("complexity")
        else None,
        text_measures=_measured(e.text_measures, float(e.text_measures.dimensions_covered))
        if e.HasField("text_measures")
        else None,
        novelty=_novelty_measured(e.novelty) if e.HasField("novelty") else None,
    )


def _measured(result, score: float, by_dimension=(), alignment=None) -> Measured:
    ok = result.status.state == common_pb2.EvaluatorStatus.STATE_OK
    return Measured(
        status=_status_of(result.status),
        score=score if ok else None,
        by_dimension=tuple(DimensionScore(_dimension_of(s.dimension), s.score, s.count) for s in by_dimension)
        if ok
        else (),
        false_yes_rate=alignment.false_yes_rate
        if ok and alignment is not None and alignment.HasField("false_yes_rate")
        else None,
    )


def _novelty_measured(result: evaluation_pb2.NoveltyResult) -> NoveltyMeasured:
    if result.status.state != common_pb2.EvaluatorStatus.STATE_OK:
        return NoveltyMeasured(_status_of(result.status))
    return NoveltyMeasured(
        status=_status_of(result.status),
        exemplar_novelty=result.exemplar_novelty if result.HasField("exemplar_novelty") else None,
        pool_novelty=result.pool_novelty,
        memorisation=result.memorisation,
        nearest_pool_story=(result.nearest_pool_story.pool, result.nearest_pool_story.id),
        memorised=result.memorised,
    )


def _status_of(message: common_pb2.EvaluatorStatus) -> Status:
    state = _STATE_OF.get(message.state, State.NOT_RUN)
    reason = message.reason or ("no result recorded" if message.state not in _STATE_OF else "")
    return Status(state, reason, message.engine, message.seconds, message.random_weights)


def _dimension_of(value: int) -> Dimension:
    return Dimension(vocabulary.label(common_pb2.Dimension, value))


# --- results ----------------------------------------------------------------------------------------


def _dimension(d: Dimension) -> int:
    return vocabulary.parse(common_pb2.Dimension, d.value)


def status(s: Status) -> common_pb2.EvaluatorStatus:
    return common_pb2.EvaluatorStatus(
        state=_STATES[s.state],
        reason=s.reason,
        engine=s.engine,
        seconds=s.seconds,
        random_weights=s.random_weights,
    )


def _scores(scores: Sequence[DimensionScore]) -> list[common_pb2.DimensionScore]:
    return [
        common_pb2.DimensionScore(dimension=_dimension(s.dimension), score=s.score, count=s.count)
        for s in scores
    ]


def _engine(ref: EngineRef | None) -> common_pb2.EngineRef | None:
    return (
        None if ref is None else common_pb2.EngineRef(kind=ref.kind, endpoint=ref.endpoint, model=ref.model)
    )


def _sampling(params: SamplingParams | None) -> common_pb2.SamplingParams | None:
    if params is None:
        return None
    message = common_pb2.SamplingParams(
        temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens
    )
    if params.seed is not None:
        message.seed = params.seed
    return message


def provenance(p: Provenance) -> evaluation_pb2.EvaluationProvenance:
    message = evaluation_pb2.EvaluationProvenance(
        extractor_prompt_version=p.extractor_prompt_version,
        prompt_version=p.prompt_version,
        extractor=_engine(p.extractor),
        judge=_engine(p.judge),
        extractor_sampling=_sampling(p.extractor_sampling),
        judge_sampling=_sampling(p.judge_sampling),
        control_pool=p.control_pool,
        rejected=[
            common_pb2.RejectedOutput(reason=r.reason, detail=r.detail, text=r.text) for r in p.rejected
        ],
        scorer=p.scorer,
    )
    if p.control_seed is not None:
        message.control_seed = p.control_seed
    return message


def diversity(outcome: Outcome[DiversityReport], embedder: str) -> evaluation_pb2.DiversityResult:
    result = evaluation_pb2.DiversityResult(status=status(outcome.status), embedder=embedder)
    report = outcome.report
    if report is not None:
        result.diversity = report.diversity
        result.per_story.extend(report.per_story.tolist())
        result.vendi_score = report.vendi_score
        result.k = report.k
        result.search = report.search
        if report.recall is not None:
            result.recall = report.recall
            result.recall_sample = report.recall_sample
        result.distinct_2 = report.distinct_2
        if report.novelty is not None:
            result.novelty = report.novelty
            result.per_story_novelty.extend(report.per_story_novelty.tolist())
    return result


def alignment(outcome: Outcome[AlignmentReport]) -> evaluation_pb2.AlignmentResult:
    result = evaluation_pb2.AlignmentResult(status=status(outcome.status))
    if outcome.provenance is not None:
        result.provenance.CopyFrom(provenance(outcome.provenance))
    report = outcome.report
    if report is not None:
        result.score = report.score
        result.by_dimension.extend(_scores(report.by_dimension))
        result.key_points.extend(
            common_pb2.KeyPoint(
                dimension=_dimension(j.key_point.dimension),
                text=j.key_point.text,
                question=j.verdict.question,
                answer=j.verdict.answer,
                score=j.verdict.score,
                from_logprobs=j.verdict.from_logprobs,
                is_control=j.is_control,
                source_story_id=j.control_of or "",
            )
            for j in report.key_points
        )
        if report.false_yes_rate is not None:
            result.false_yes_rate = report.false_yes_rate
        result.extraction_raw = report.extraction.raw
    return result


def complexity(outcome: Outcome[ComplexityReport]) -> evaluation_pb2.ComplexityResult:
    result = evaluation_pb2.ComplexityResult(status=status(outcome.status))
    if outcome.provenance is not None:
        result.provenance.CopyFrom(provenance(outcome.provenance))
    report = outcome.report
    if report is not None:
        result.score = report.score.score
        result.by_dimension.extend(_scores(report.score.by_dimension))
        result.clues.extend(
            evaluation_pb2.Clue(dimension=_dimension(c.dimension), clue=c.clue, inference=c.inference)
            for c in report.clues
        )
        result.scorer = report.score.scorer
        result.raw = report.raw
    return result


def text_measures(outcome: Outcome[TextMeasures]) -> evaluation_pb2.TextMeasuresResult:
    result = evaluation_pb2.TextMeasuresResult(status=status(outcome.status))
    report = outcome.report
    if report is not None:
        result.dimensions.extend(_scores(report.dimensions))
        result.dimensions_covered = report.dimensions_covered
        result.characters = report.characters
        result.events = report.events
        result.causal_links = report.causal_links
        result.mental_states = report.mental_states
        result.words = report.words
        result.method = outcome.status.engine
        result.repetition = report.repetition
    return result


def novelty(outcome: Outcome[NoveltyReport], embedder: str) -> evaluation_pb2.NoveltyResult:
    result = evaluation_pb2.NoveltyResult(status=status(outcome.status), embedder=embedder)
    report = outcome.report
    if report is not None:
        if report.exemplar_novelty is not None:
            result.exemplar_novelty = report.exemplar_novelty
        result.exemplars = report.exemplars
        result.pool_novelty = report.pool_novelty
        result.memorisation = report.memorisation
        pool, story_id = report.nearest_pool_story
        result.nearest_pool_story.CopyFrom(common_pb2.ExemplarRef(pool=pool, id=story_id))
        result.memorised = report.memorised
        result.memorisation_threshold = report.threshold
    return result


def item_result(r: ItemResult, embedder: str) -> evaluation_pb2.ItemEvaluation:
    message = evaluation_pb2.ItemEvaluation(item_id=r.item_id)
    if r.alignment:
        message.alignment.CopyFrom(alignment(r.alignment))
    if r.complexity:
        message.complexity.CopyFrom(complexity(r.complexity))
    if r.text_measures:
        message.text_measures.CopyFrom(text_measures(r.text_measures))
    if r.novelty:
        message.novelty.CopyFrom(novelty(r.novelty, embedder))
    return message


def _reasons(reasons: Sequence[ReasonCount]) -> list[evaluation_pb2.ReasonCount]:
    return [
        evaluation_pb2.ReasonCount(state=_STATES[r.state], reason=r.reason, items=r.items) for r in reasons
    ]


def _counts(c: Counts) -> evaluation_pb2.EvaluatorCounts:
    return evaluation_pb2.EvaluatorCounts(
        ok=c.ok, not_run=c.not_run, failed=c.failed, reasons=_reasons(c.reasons)
    )


def summary(s: SetSummary, embedder: str) -> evaluation_pb2.SetSummary:
    message = evaluation_pb2.SetSummary(
        items=s.items,
        alignment_counts=_counts(s.alignment_counts),
        complexity_counts=_counts(s.complexity_counts),
        text_measures_counts=_counts(s.text_measures_counts),
        novelty_counts=_counts(s.novelty_counts),
        alignment_by_dimension=_scores(s.alignment_by_dimension),
        complexity_by_dimension=_scores(s.complexity_by_dimension),
        false_yes_items=s.false_yes_items,
        items_not_evaluated=s.items_not_evaluated,
        not_evaluated_reasons=_reasons(s.not_evaluated_reasons),
    )
    if s.diversity:
        message.diversity.CopyFrom(diversity(s.diversity, embedder))
    if s.alignment_status:
        message.alignment_status.CopyFrom(status(s.alignment_status))
    if s.complexity_status:
        message.complexity_status.CopyFrom(status(s.complexity_status))
    for name in ("mean_alignment", "mean_complexity", "mean_false_yes_rate", "mean_dimensions_covered"):
        value = getattr(s, name)
        if value is not None:
            setattr(message, name, value)
    n = s.novelty
    novelty_message = message.novelty
    novelty_message.items_with_exemplars = n.items_with_exemplars
    novelty_message.memorised_items = n.memorised_items
    novelty_message.most_memorised_item = n.most_memorised_item
    novelty_message.pool = n.most_memorised_pool_story[0]
    for name in ("mean_exemplar_novelty", "mean_pool_novelty", "max_memorisation"):
        value = getattr(n, name)
        if value is not None:
            setattr(novelty_message, name, value)
    if n.most_memorised_item:
        pool_name, story_id = n.most_memorised_pool_story
        novelty_message.most_memorised_pool_story.CopyFrom(
            common_pb2.ExemplarRef(pool=pool_name, id=story_id)
        )
    return message
