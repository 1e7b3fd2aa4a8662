"""The evaluation core: runs each evaluator with an honest status, on one item or a set. No transport.

An evaluator whose engine is missing or unreachable reports NOT_RUN with the reason, never a number;
one that ran and failed (an unparseable model output, an engine error) reports FAILED with the error.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

import numpy as np

from storytelling.evaluation.alignment import (
    DEFAULT_CONTROLS,
    AlignmentEvaluator,
    AlignmentReport,
    ControlPoint,
    draw_controls,
)
from storytelling.evaluation.complexity import ComplexityEvaluator, ComplexityReport
from storytelling.evaluation.dimensions import DIMENSIONS
from storytelling.evaluation.diversity import DEFAULT_K, DiversityReport, diversity
from storytelling.evaluation.embedder import Embedder
from storytelling.evaluation.images import EncodedImage
from storytelling.evaluation.jsonout import OutputError
from storytelling.evaluation.judge import Judge
from storytelling.evaluation.keypoints import Extraction, ExtractionError, KeyPointExtractor
from storytelling.evaluation.scores import DimensionScore
from storytelling.evaluation.text_measures import TextMeasurer, TextMeasures
from storytelling.llm import ChatEngine
from storytelling.runtime.errors import ServiceError, Unavailable

R = TypeVar("R")


class Kind(StrEnum):
    DIVERSITY = "diversity"
    ALIGNMENT = "alignment"
    COMPLEXITY = "complexity"
    TEXT_MEASURES = "text_measures"


ITEM_KINDS = (Kind.ALIGNMENT, Kind.COMPLEXITY, Kind.TEXT_MEASURES)


class State(StrEnum):
    OK = "ok"
    NOT_RUN = "not_run"
    FAILED = "failed"


@dataclass(frozen=True)
class Status:
    state: State
    reason: str = ""
    engine: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Outcome(Generic[R]):
    status: Status
    report: R | None = None


@dataclass(frozen=True)
class Item:
    id: str
    story: str
    image: EncodedImage | None = None


@dataclass(frozen=True)
class AlignmentOptions:
    extractor: str = ""  # engine names; empty: the service default
    judge: str = ""
    num_controls: int = DEFAULT_CONTROLS  # < 0 disables controls
    control_stories: tuple[tuple[str, str], ...] = ()  # (id, text) for single items


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    alignment: Outcome[AlignmentReport] | None = None
    complexity: Outcome[ComplexityReport] | None = None
    text_measures: Outcome[TextMeasures] | None = None


@dataclass(frozen=True)
class SetSummary:
    items: int
    diversity: Outcome[DiversityReport] | None = None
    alignment_status: Status | None = None
    complexity_status: Status | None = None
    mean_alignment: float | None = None
    mean_complexity: float | None = None
    mean_false_yes_rate: float | None = None
    alignment_by_dimension: list[DimensionScore] = field(default_factory=list)


def engine_label(engine: ChatEngine) -> str:
    return f"{engine.kind}:{engine.model}" + (f"@{engine.endpoint}" if engine.endpoint else "")


class Evaluation:
    """Collaborators are built by the service; judges and extractors are named engines."""

    def __init__(
        self,
        embedder: Embedder,
        text: TextMeasurer | None = None,
        *,
        extractors: dict[str, ChatEngine] | None = None,
        judges: dict[str, ChatEngine] | None = None,
        default_extractor: str = "",
        default_judge: str = "",
        max_repairs: int = 1,
        top_logprobs: int = 20,
        default_k: int = DEFAULT_K,
        tile_bytes: int = 256 << 20,
        knn_device: str = "cpu",
        seed: int = 0,
        max_items_in_flight: int = 4,
    ) -> None:
        self.embedder = embedder
        self.text = text
        self.extractors = extractors or {}
        self.judges = judges or {}
        self.default_extractor = default_extractor or next(iter(self.extractors), "")
        self.default_judge = default_judge or next(iter(self.judges), "")
        self.max_repairs = max_repairs
        self.top_logprobs = top_logprobs
        self.default_k = default_k
        self.tile_bytes = tile_bytes
        self.knn_device = knn_device
        self.seed = seed
        self.max_items_in_flight = max_items_in_flight

    # --- engines -----------------------------------------------------------------------------------

    async def _usable(self, kind: Kind, options: AlignmentOptions) -> tuple[list, str]:
        """The engines `kind` needs, or the reason it cannot run."""
        judge = self.judges.get(options.judge or self.default_judge)
        needed: list[tuple[str, object]] = [("VLM judge", judge)]
        if kind is Kind.ALIGNMENT:
            needed.insert(
                0,
                ("key-point extractor LLM", self.extractors.get(options.extractor or self.default_extractor)),
            )
        for what, engine in needed:
            if engine is None:
                return [], f"no {what} configured"
            ok, why = await engine.ready()
            if not ok:
                return [], f"{what} {engine_label(engine)} is not usable: {why}"
        return [engine for _, engine in needed], ""

    async def statuses(self) -> dict[Kind, Status]:
        """Whether each evaluator can run now (ListEvaluators)."""
        result = {Kind.DIVERSITY: Status(State.OK, engine=self.embedder.name)}
        for kind in (Kind.ALIGNMENT, Kind.COMPLEXITY):
            engines, why = await self._usable(kind, AlignmentOptions())
            result[kind] = (
                Status(State.OK, engine=", ".join(engine_label(e) for e in engines))
                if engines
                else Status(State.NOT_RUN, why)
            )
        result[Kind.TEXT_MEASURES] = (
            Status(State.OK, engine="spacy:en_core_web_sm+" + self.embedder.name)
            if self.text
            else Status(State.NOT_RUN, "text-side measures are disabled")
        )
        return result

    # --- single evaluators -------------------------------------------------------------------------

    async def diversity(
        self, stories: Sequence[str], k: int | None = None, reference: Sequence[str] = ()
    ) -> Outcome[DiversityReport]:
        start = time.perf_counter()
        vectors = await asyncio.to_thread(self.embedder.encode, list(stories) + list(reference))
        report = await asyncio.to_thread(
            diversity,
            vectors[: len(stories)],
            k or self.default_k,
            reference=vectors[len(stories) :] if reference else None,
            tile_bytes=self.tile_bytes,
            device=self.knn_device,
        )
        return Outcome(
            Status(State.OK, engine=self.embedder.name, seconds=time.perf_counter() - start), report
        )

    async def text_measures(self, story: str) -> Outcome[TextMeasures]:
        if self.text is None:
            return Outcome(Status(State.NOT_RUN, "text-side measures are disabled"))
        start = time.perf_counter()
        report = await asyncio.to_thread(self.text.measure, story)
        engine = "spacy:en_core_web_sm+" + self.embedder.name
        return Outcome(Status(State.OK, engine=engine, seconds=time.perf_counter() - start), report)

    async def complexity(self, image: EncodedImage | None, judge: str = "") -> Outcome[ComplexityReport]:
        if image is None:
            return Outcome(Status(State.NOT_RUN, "the item has no image"))
        engines, why = await self._usable(Kind.COMPLEXITY, AlignmentOptions(judge=judge))
        if not engines:
            return Outcome(Status(State.NOT_RUN, why))
        evaluator = ComplexityEvaluator(engines[0], max_repairs=self.max_repairs)
        return await _run(engine_label(engines[0]), lambda: evaluator.evaluate(image))

    async def alignment(
        self, item: Item, options: AlignmentOptions = AlignmentOptions()
    ) -> Outcome[AlignmentReport]:
        """One item; controls come from `options.control_stories`."""
        if item.image is None:
            return Outcome(Status(State.NOT_RUN, "the item has no image"))
        evaluator, label, why = await self._alignment_evaluator(options)
        if evaluator is None:
            return Outcome(Status(State.NOT_RUN, why))

        async def run() -> AlignmentReport:
            extraction, pool = await asyncio.gather(
                evaluator.extract(item.story),
                evaluator.control_pool(options.control_stories) if options.num_controls > 0 else _empty(),
            )
            controls = draw_controls(pool, options.num_controls, extraction.key_points, self._rng(item.id))
            return await evaluator.evaluate(item.image, extraction, controls)

        return await _run(label, run)

    async def _alignment_evaluator(
        self, options: AlignmentOptions
    ) -> tuple[AlignmentEvaluator | None, str, str]:
        engines, why = await self._usable(Kind.ALIGNMENT, options)
        if not engines:
            return None, "", why
        extractor, judge = engines
        evaluator = AlignmentEvaluator(
            KeyPointExtractor(extractor, max_repairs=self.max_repairs),
            Judge(judge, top_logprobs=self.top_logprobs),
        )
        return evaluator, f"extractor={engine_label(extractor)}, judge={engine_label(judge)}", ""

    def _rng(self, item_id: str) -> random.Random:
        return random.Random(f"{self.seed}:{item_id}")

    # --- items and sets ----------------------------------------------------------------------------

    async def evaluate_item(
        self, item: Item, kinds: Sequence[Kind] = ITEM_KINDS, options: AlignmentOptions = AlignmentOptions()
    ) -> ItemResult:
        return await self._item(item, kinds, options, lambda: self.alignment(item, options))

    async def evaluate_set(
        self,
        items: Sequence[Item],
        kinds: Sequence[Kind] = (Kind.DIVERSITY, *ITEM_KINDS),
        options: AlignmentOptions = AlignmentOptions(),
        k: int | None = None,
        reference: Sequence[str] = (),
    ) -> AsyncIterator[ItemResult | SetSummary]:
        """Yields each item's result as it completes, then the set summary.

        Key points of every item are extracted first, so each item's controls come from the others.
        """
        evaluator, label, why = (None, "", "")
        extractions: dict[str, Outcome[Extraction]] = {}
        if Kind.ALIGNMENT in kinds and any(it.image is not None for it in items):
            evaluator, label, why = await self._alignment_evaluator(options)
            if evaluator is not None:
                outcomes = await asyncio.gather(
                    *(_run(label, lambda it=it: evaluator.extract(it.story)) for it in items)
                )
                extractions = {it.id: o for it, o in zip(items, outcomes, strict=True)}

        def align(item: Item) -> Callable[[], Awaitable[Outcome[AlignmentReport]]]:
            async def run() -> Outcome[AlignmentReport]:
                if item.image is None:
                    return Outcome(Status(State.NOT_RUN, "the item has no image"))
                if evaluator is None:
                    return Outcome(Status(State.NOT_RUN, why))
                extracted = extractions[item.id]
                if extracted.report is None:
                    return Outcome(extracted.status)
                pool = [
                    ControlPoint(kp, other.id)
                    for other in items
                    if other.id != item.id and extractions[other.id].report is not None
                    for kp in extractions[other.id].report.key_points
                ]
                controls = draw_controls(
                    pool, max(options.num_controls, 0), extracted.report.key_points, self._rng(item.id)
                )
                return await _run(label, lambda: evaluator.evaluate(item.image, extracted.report, controls))

            return run

        gate = asyncio.Semaphore(self.max_items_in_flight)

        async def one(item: Item) -> ItemResult:
            async with gate:
                return await self._item(item, kinds, options, align(item))

        results: list[ItemResult] = []
        for next_done in asyncio.as_completed([one(item) for item in items]):
            result = await next_done
            results.append(result)
            yield result
        yield await self._summary(items, kinds, results, k, reference)

    async def _item(
        self,
        item: Item,
        kinds: Sequence[Kind],
        options: AlignmentOptions,
        align: Callable[[], Awaitable[Outcome[AlignmentReport]]],
    ) -> ItemResult:
        runs = {
            Kind.ALIGNMENT: align,
            Kind.COMPLEXITY: lambda: self.complexity(item.image, options.judge),
            Kind.TEXT_MEASURES: lambda: self.text_measures(item.story),
        }
        wanted = [kind for kind in ITEM_KINDS if kind in kinds]
        outcomes = await asyncio.gather(*(runs[kind]() for kind in wanted))
        return ItemResult(item.id, **{kind.value: o for kind, o in zip(wanted, outcomes, strict=True)})

    async def _summary(
        self,
        items: Sequence[Item],
        kinds: Sequence[Kind],
        results: list[ItemResult],
        k: int | None,
        reference: Sequence[str],
    ) -> SetSummary:
        aligned = [r.alignment.report for r in results if r.alignment and r.alignment.report]
        complex_ = [r.complexity.report for r in results if r.complexity and r.complexity.report]
        by_dimension = []
        for dimension in DIMENSIONS:
            scores = [s for a in aligned for s in a.by_dimension if s.dimension == dimension]
            if scores:
                count = sum(s.count for s in scores)
                by_dimension.append(
                    DimensionScore(dimension, sum(s.score * s.count for s in scores) / count, count)
                )
        rates = [a.false_yes_rate for a in aligned if a.false_yes_rate is not None]
        return SetSummary(
            items=len(items),
            diversity=await self.diversity([it.story for it in items], k, reference)
            if Kind.DIVERSITY in kinds
            else None,
            alignment_status=_set_status([r.alignment for r in results if r.alignment]),
            complexity_status=_set_status([r.complexity for r in results if r.complexity]),
            mean_alignment=_mean([a.score for a in aligned]),
            mean_complexity=_mean([c.score.score for c in complex_]),
            mean_false_yes_rate=_mean(rates),
            alignment_by_dimension=by_dimension,
        )


async def _empty() -> list:
    return []


async def _run(engine: str, evaluate: Callable[[], Awaitable[R]]) -> Outcome[R]:
    """Runs one evaluation; an unreachable engine means NOT_RUN, any other engine or output error FAILED."""
    start = time.perf_counter()
    try:
        report = await evaluate()
    except Unavailable as exc:
        return Outcome(Status(State.NOT_RUN, exc.message, engine, time.perf_counter() - start))
    except (ServiceError, OutputError, ExtractionError) as exc:
        return Outcome(Status(State.FAILED, str(exc), engine, time.perf_counter() - start))
    return Outcome(Status(State.OK, "", engine, time.perf_counter() - start), report)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _set_status(outcomes: list[Outcome]) -> Status | None:
    """OK when the evaluator ran on at least one item; otherwise the first item's reason."""
    if not outcomes:
        return None
    ran = [o.status for o in outcomes if o.status.state is State.OK]
    if ran:
        engine = ran[0].engine
        skipped = len(outcomes) - len(ran)
        reason = f"ran on {len(ran)} of {len(outcomes)} items" if skipped else ""
        return Status(State.OK, reason, engine, sum(s.seconds for s in ran))
    return outcomes[0].status
