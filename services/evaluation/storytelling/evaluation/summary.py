"""Set summaries: the one place where set-level numbers are computed.

A summary is always computed from the items' evaluations in their stored form (ItemEvaluation messages,
read back into `Member`s), whether it ends an EvaluateSet stream or answers SummarizeSet over a job's
artifacts, so the same items give the same summary. Clients and the gallery display it, never
recompute it.

Weighting: every item counts once. Mean alignment is the mean over items of each item's score, however
many key points its story yielded; per dimension, the mean over the items with key points in that
dimension of their score in it (count: their key points pooled). The false-yes rate is the mean over
the items whose controls were judged of their rate. Complexity, its per-dimension credit, text coverage
and novelty are means over the items where the evaluator ran. A mean over no item is None (shown as
"not measured"), never 0. Every item that did not run an evaluator, or failed it, is counted with its
reason; items without any evaluation are counted apart, with theirs.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from storytelling.evaluation.dimensions import DIMENSIONS
from storytelling.evaluation.diversity import DiversityReport
from storytelling.evaluation.outcome import Outcome, State, Status
from storytelling.evaluation.scores import DimensionScore


@dataclass(frozen=True)
class Measured:
    """One evaluator's stored result for one item. `score` is the dimensions covered for text measures."""

    status: Status
    score: float | None = None
    by_dimension: tuple[DimensionScore, ...] = ()
    false_yes_rate: float | None = None


@dataclass(frozen=True)
class NoveltyMeasured:
    status: Status
    exemplar_novelty: float | None = None
    pool_novelty: float | None = None
    memorisation: float | None = None
    nearest_pool_story: tuple[str, str] = ("", "")
    memorised: bool = False


@dataclass(frozen=True)
class Member:
    """One item of a set: its story and stored evaluation, or why it was not evaluated."""

    item_id: str
    story: str = ""
    evaluated: bool = True
    not_evaluated_reason: str = ""
    alignment: Measured | None = None
    complexity: Measured | None = None
    text_measures: Measured | None = None
    novelty: NoveltyMeasured | None = None


@dataclass(frozen=True)
class ReasonCount:
    state: State
    reason: str
    items: int


@dataclass(frozen=True)
class Counts:
    ok: int = 0
    not_run: int = 0
    failed: int = 0
    reasons: tuple[ReasonCount, ...] = ()


@dataclass(frozen=True)
class NoveltySummary:
    mean_exemplar_novelty: float | None = None
    items_with_exemplars: int = 0
    mean_pool_novelty: float | None = None
    max_memorisation: float | None = None
    most_memorised_item: str = ""
    most_memorised_pool_story: tuple[str, str] = ("", "")
    memorised_items: int = 0


@dataclass(frozen=True)
class SetSummary:
    items: int
    diversity: Outcome[DiversityReport] | None = None
    alignment_status: Status | None = None
    complexity_status: Status | None = None
    alignment_counts: Counts = Counts()
    complexity_counts: Counts = Counts()
    text_measures_counts: Counts = Counts()
    novelty_counts: Counts = Counts()
    mean_alignment: float | None = None
    alignment_by_dimension: list[DimensionScore] = field(default_factory=list)
    mean_false_yes_rate: float | None = None
    false_yes_items: int = 0
    mean_complexity: float | None = None
    complexity_by_dimension: list[DimensionScore] = field(default_factory=list)
    mean_dimensions_covered: float | None = None
    novelty: NoveltySummary = NoveltySummary()
    items_not_evaluated: int = 0
    not_evaluated_reasons: tuple[ReasonCount, ...] = ()


def summarize(members: Sequence[Member], diversity: Outcome[DiversityReport] | None = None) -> SetSummary:
    evaluated = [m for m in members if m.evaluated]
    alignments = [m.alignment for m in evaluated if m.alignment is not None]
    complexities = [m.complexity for m in evaluated if m.complexity is not None]
    texts = [m.text_measures for m in evaluated if m.text_measures is not None]
    novelties = [m.novelty for m in evaluated if m.novelty is not None]
    aligned = _ran(alignments)
    rates = [a.false_yes_rate for a in aligned if a.false_yes_rate is not None]
    complex_ = _ran(complexities)
    not_evaluated = Counter(m.not_evaluated_reason or "not evaluated" for m in members if not m.evaluated)
    return SetSummary(
        items=len(members),
        diversity=diversity,
        alignment_status=_set_status(alignments),
        complexity_status=_set_status(complexities),
        alignment_counts=_counts(alignments),
        complexity_counts=_counts(complexities),
        text_measures_counts=_counts(texts),
        novelty_counts=_counts(novelties),
        mean_alignment=_mean([a.score for a in aligned]),
        alignment_by_dimension=_by_dimension(aligned),
        mean_false_yes_rate=_mean(rates),
        false_yes_items=len(rates),
        mean_complexity=_mean([c.score for c in complex_]),
        complexity_by_dimension=_by_dimension(complex_),
        mean_dimensions_covered=_mean([t.score for t in _ran(texts)]),
        novelty=_novelty(
            [(m.item_id, m.novelty) for m in evaluated if m.novelty and m.novelty.status.state is State.OK]
        ),
        items_not_evaluated=sum(not_evaluated.values()),
        not_evaluated_reasons=tuple(
            ReasonCount(State.NOT_RUN, reason, n) for reason, n in not_evaluated.most_common()
        ),
    )


def _ran(results: Sequence[Measured]) -> list[Measured]:
    return [r for r in results if r.status.state is State.OK and r.score is not None]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(np.asarray(present, dtype=np.float64))) if present else None


def _by_dimension(results: Sequence[Measured]) -> list[DimensionScore]:
    """Per dimension: the mean over the items that have it of their score in it; counts pooled."""
    merged = []
    for dimension in DIMENSIONS:
        scores = [s for r in results for s in r.by_dimension if s.dimension == dimension]
        if scores:
            merged.append(
                DimensionScore(dimension, _mean([s.score for s in scores]), sum(s.count for s in scores))
            )
    return merged


def _counts(results: Sequence[Measured | NoveltyMeasured]) -> Counts:
    states = Counter(r.status.state for r in results)
    reasons = Counter((r.status.state, r.status.reason) for r in results if r.status.state is not State.OK)
    return Counts(
        ok=states[State.OK],
        not_run=states[State.NOT_RUN],
        failed=states[State.FAILED],
        reasons=tuple(
            ReasonCount(state, reason or "no reason given", n)
            for (state, reason), n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        ),
    )


def _set_status(results: Sequence[Measured]) -> Status | None:
    """OK when the evaluator ran on at least one item; otherwise FAILED when it failed anywhere, else
    NOT_RUN, with every distinct reason and its item count. None when no item asked for it."""
    if not results:
        return None
    counts = _counts(results)
    ran = [r.status for r in results if r.status.state is State.OK]
    seconds = sum(r.status.seconds for r in results)
    if ran:
        reason = "" if len(ran) == len(results) else f"ran on {len(ran)} of {len(results)} items"
        return Status(State.OK, reason, ran[0].engine, seconds, any(s.random_weights for s in ran))
    state = State.FAILED if counts.failed else State.NOT_RUN
    reason = "; ".join(f"{r.reason} ({r.items} item{'s' * (r.items != 1)})" for r in counts.reasons)
    return Status(state, reason, next((r.status.engine for r in results if r.status.engine), ""), seconds)


def _novelty(ran: Sequence[tuple[str, NoveltyMeasured]]) -> NoveltySummary:
    if not ran:
        return NoveltySummary()
    with_exemplars = [n.exemplar_novelty for _, n in ran if n.exemplar_novelty is not None]
    top_id, top = max(ran, key=lambda pair: -2.0 if pair[1].memorisation is None else pair[1].memorisation)
    return NoveltySummary(
        mean_exemplar_novelty=_mean(with_exemplars),
        items_with_exemplars=len(with_exemplars),
        mean_pool_novelty=_mean([n.pool_novelty for _, n in ran]),
        max_memorisation=top.memorisation,
        most_memorised_item=top_id,
        most_memorised_pool_story=top.nearest_pool_story,
        memorised_items=sum(n.memorised for _, n in ran),
    )
