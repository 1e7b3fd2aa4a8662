"""Protobuf <-> core types for the evaluation API. Request checks name the offending field."""

from collections.abc import Sequence

from storytelling.api import vocabulary
from storytelling.evaluation.alignment import DEFAULT_CONTROLS, AlignmentReport
from storytelling.evaluation.complexity import ComplexityReport
from storytelling.evaluation.core import (
    AlignmentOptions,
    Item,
    ItemResult,
    Kind,
    Outcome,
    SetSummary,
    Status,
)
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.diversity import DiversityReport
from storytelling.evaluation.images import EncodedImage, check_image
from storytelling.evaluation.scores import DimensionScore
from storytelling.evaluation.text_measures import TextMeasures
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
}
KIND_TO_PB = {kind: value for value, kind in _KINDS.items()}


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


def item(
    message: evaluation_pb2.EvaluationItem, field: str, max_pixels: int, *, needs_story: bool = True
) -> Item:
    return Item(
        id=message.id,
        story=story(message.story, f"{field}.story") if needs_story else message.story,
        image=image(message.image, f"{field}.image", max_pixels) if message.HasField("image") else None,
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
    message: evaluation_pb2.AlignmentOptions, field: str, extractors: Sequence[str], judges: Sequence[str]
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
    controls = stories(message.control_stories, f"{field}.control_stories")
    return AlignmentOptions(
        extractor=message.extractor,
        judge=message.judge,
        num_controls=DEFAULT_CONTROLS if message.num_controls == 0 else message.num_controls,
        control_stories=tuple((f"control-{i}", text) for i, text in enumerate(controls)),
    )


def set_items(
    messages: Sequence[evaluation_pb2.EvaluationItem], wanted: Sequence[Kind], max_pixels: int
) -> list[Item]:
    if not messages:
        raise InvalidArgument("must hold at least one item", field="items")
    if Kind.DIVERSITY in wanted and len(messages) < 2:
        raise InvalidArgument("diversity needs a set of at least 2 stories", field="items")
    items = [
        item(m, f"items[{i}]", max_pixels, needs_story=bool(set(wanted) - {Kind.COMPLEXITY}))
        for i, m in enumerate(messages)
    ]
    items = [it if it.id else Item(str(i), it.story, it.image) for i, it in enumerate(items)]
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


# --- results ----------------------------------------------------------------------------------------


def _dimension(d: Dimension) -> int:
    return vocabulary.parse(common_pb2.Dimension, d.value)


def status(s: Status) -> common_pb2.EvaluatorStatus:
    return common_pb2.EvaluatorStatus(
        state=vocabulary.parse(common_pb2.EvaluatorStatus.State, s.state.value),
        reason=s.reason,
        engine=s.engine,
        seconds=s.seconds,
    )


def _scores(scores: Sequence[DimensionScore]) -> list[common_pb2.DimensionScore]:
    return [
        common_pb2.DimensionScore(dimension=_dimension(s.dimension), score=s.score, count=s.count)
        for s in scores
    ]


def diversity(outcome: Outcome[DiversityReport], embedder: str) -> evaluation_pb2.DiversityResult:
    result = evaluation_pb2.DiversityResult(status=status(outcome.status), embedder=embedder)
    report = outcome.report
    if report is not None:
        result.diversity = report.diversity
        result.per_story.extend(report.per_story.tolist())
        result.vendi_score = report.vendi_score
        result.k = report.k
        result.search = report.search
        if report.novelty is not None:
            result.novelty = report.novelty
            result.per_story_novelty.extend(report.per_story_novelty.tolist())
    return result


def alignment(outcome: Outcome[AlignmentReport]) -> evaluation_pb2.AlignmentResult:
    result = evaluation_pb2.AlignmentResult(status=status(outcome.status))
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
    return result


def item_result(r: ItemResult) -> evaluation_pb2.ItemEvaluation:
    message = evaluation_pb2.ItemEvaluation(item_id=r.item_id)
    if r.alignment:
        message.alignment.CopyFrom(alignment(r.alignment))
    if r.complexity:
        message.complexity.CopyFrom(complexity(r.complexity))
    if r.text_measures:
        message.text_measures.CopyFrom(text_measures(r.text_measures))
    return message


def summary(s: SetSummary, embedder: str) -> evaluation_pb2.SetSummary:
    message = evaluation_pb2.SetSummary(items=s.items)
    if s.diversity:
        message.diversity.CopyFrom(diversity(s.diversity, embedder))
    if s.alignment_status:
        message.alignment_status.CopyFrom(status(s.alignment_status))
    if s.complexity_status:
        message.complexity_status.CopyFrom(status(s.complexity_status))
    message.mean_alignment = s.mean_alignment or 0.0
    message.mean_complexity = s.mean_complexity or 0.0
    message.mean_false_yes_rate = s.mean_false_yes_rate or 0.0
    message.alignment_by_dimension.extend(_scores(s.alignment_by_dimension))
    return message
