"""The evaluation core: runs each evaluator with an honest status, on one item or a set. No transport.

An evaluator whose engine is missing or unreachable reports NOT_RUN with the reason, never a number;
one that ran and failed (an unparseable model output, an engine error) reports FAILED with the error.
Set-level numbers come from `summary.summarize` only.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

import numpy as np

from storytelling.evaluation import judge as judge_prompt
from storytelling.evaluation import lexical
from storytelling.evaluation.alignment import AlignmentEvaluator, AlignmentReport
from storytelling.evaluation.ann import DEFAULT_NPROBE
from storytelling.evaluation.complexity import PROMPT_VERSION as COMPLEXITY_PROMPT_VERSION
from storytelling.evaluation.complexity import ComplexityEvaluator, ComplexityReport, RuleScorer, Scorer
from storytelling.evaluation.controls import DEFAULT_CONTROLS, ControlSource, ControlStory
from storytelling.evaluation.diversity import DEFAULT_K, DiversityReport, diversity
from storytelling.evaluation.embedder import Embedder
from storytelling.evaluation.images import EncodedImage
from storytelling.evaluation.jsonout import OutputError
from storytelling.evaluation.judge import Judge
from storytelling.evaluation.jsonout import OutputMode
from storytelling.evaluation.keypoints import Attempt, ExtractionError, KeyPointExtractor
from storytelling.evaluation.novelty import MEMORISATION_THRESHOLD, NoveltyReport, PoolEmbeddings, novelty
from storytelling.evaluation.outcome import Outcome, State, Status
from storytelling.evaluation.provenance import EngineRef, Provenance, Rejected
from storytelling.evaluation.summary import Member, SetSummary, summarize
from storytelling.evaluation.text_measures import TextMeasurer, TextMeasures
from storytelling.llm import ChatEngine
from storytelling.api.pools import Pool, PoolRegistry, builtin_pools
from storytelling.runtime.errors import ServiceError, Unavailable

R = TypeVar("R")


class Kind(StrEnum):
    DIVERSITY = "diversity"
    ALIGNMENT = "alignment"
    COMPLEXITY = "complexity"
    TEXT_MEASURES = "text_measures"
    NOVELTY = "novelty"


ITEM_KINDS = (Kind.ALIGNMENT, Kind.COMPLEXITY, Kind.TEXT_MEASURES, Kind.NOVELTY)


@dataclass(frozen=True)
class Item:
    id: str
    story: str
    image: EncodedImage | None = None
    exemplars: tuple[str, ...] = ()  # texts of the exemplars the story was conditioned on


@dataclass(frozen=True)
class AlignmentOptions:
    extractor: str = ""  # engine names; empty: the service default
    judge: str = ""
    num_controls: int = DEFAULT_CONTROLS  # <= 0 disables controls
    control_stories: tuple[tuple[str, str], ...] = ()  # (id, text); empty: the control pool's test split
    control_pool: str = ""  # empty: the service's default pool
    control_seed: int | None = None  # None: the service's seed


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    alignment: Outcome[AlignmentReport] | None = None
    complexity: Outcome[ComplexityReport] | None = None
    text_measures: Outcome[TextMeasures] | None = None
    novelty: Outcome[NoveltyReport] | None = None


def engine_label(engine: ChatEngine) -> str:
    return EngineRef.of(engine).label


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
        extractor_output: OutputMode = OutputMode.PARSED,
        judge_output: OutputMode = OutputMode.PARSED,
        pools: PoolRegistry | None = None,
        scorer: Scorer | None = None,
        max_repairs: int = 1,
        top_logprobs: int = 20,
        default_k: int = DEFAULT_K,
        tile_bytes: int = 256 << 20,
        knn_device: str = "cpu",
        approximate_above: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        memorisation_threshold: float = MEMORISATION_THRESHOLD,
        seed: int = 0,
        max_items_in_flight: int = 4,
    ) -> None:
        self.embedder = embedder
        self.text = text
        self.extractors = extractors or {}
        self.judges = judges or {}
        self.default_extractor = default_extractor or next(iter(self.extractors), "")
        self.default_judge = default_judge or next(iter(self.judges), "")
        self.extractor_output = extractor_output
        self.judge_output = judge_output
        self.pools = pools or PoolRegistry(builtin_pools())
        self.scorer = scorer or RuleScorer()
        self.max_repairs = max_repairs
        self.top_logprobs = top_logprobs
        self.default_k = default_k
        self.tile_bytes = tile_bytes
        self.knn_device = knn_device
        self.approximate_above = approximate_above
        self.nprobe = nprobe
        self.memorisation_threshold = memorisation_threshold
        self.seed = seed
        self.max_items_in_flight = max_items_in_flight
        self.controls = ControlSource()
        self._pool_embeddings: dict[str, PoolEmbeddings] = {}

    # --- engines -----------------------------------------------------------------------------------

    async def _usable(self, kind: Kind, options: AlignmentOptions) -> tuple[list[ChatEngine], str]:
        """The engines `kind` needs, or the reason it cannot run."""
        judge = self.judges.get(options.judge or self.default_judge)
        needed: list[tuple[str, ChatEngine | None]] = [("VLM judge", judge)]
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
        return [engine for _, engine in needed if engine is not None], ""

    async def statuses(self) -> dict[Kind, Status]:
        """Whether each evaluator can run now (ListEvaluators)."""
        result = {Kind.DIVERSITY: Status(State.OK, engine=self.embedder.name)}
        for kind in (Kind.ALIGNMENT, Kind.COMPLEXITY):
            engines, why = await self._usable(kind, AlignmentOptions())
            result[kind] = (
                Status(
                    State.OK,
                    engine=", ".join(engine_label(e) for e in engines),
                    random_weights=any(e.random_weights for e in engines),
                )
                if engines
                else Status(State.NOT_RUN, why)
            )
        result[Kind.TEXT_MEASURES] = (
            Status(State.OK, engine=self.text.method)
            if self.text
            else Status(State.NOT_RUN, "text-side measures are disabled")
        )
        result[Kind.NOVELTY] = Status(State.OK, engine=f"{self.embedder.name} vs pool {self.pools.default}")
        return result

    def pool(self, name: str) -> Pool | None:
        return self.pools.get(name)

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
            approximate_above=self.approximate_above,
            nprobe=self.nprobe,
        )
        report = replace(report, distinct_2=lexical.distinct_n(stories, 2))
        return Outcome(
            Status(State.OK, engine=self.embedder.name, seconds=time.perf_counter() - start), report
        )

    async def novelty(self, items: Sequence[Item]) -> list[Outcome[NoveltyReport]]:
        """Novelty of each item's story against its exemplars and the default pool."""
        start = time.perf_counter()
        pool = self._pool_embeddings.get(self.pools.default)
        if pool is None:
            pool = self._pool_embeddings[self.pools.default] = PoolEmbeddings(
                self.pools.get(""), self.embedder
            )
        texts = [it.story for it in items] + [text for it in items for text in it.exemplars]
        # One text per forward pass: batch padding changes low-order bits (bfloat16 especially), and an
        # item's novelty must not depend on the items it happened to be evaluated with.
        vectors = await asyncio.to_thread(lambda: np.concatenate([self.embedder.encode([t]) for t in texts]))
        await asyncio.to_thread(lambda: pool.vectors)  # embeds the pool once, off the event loop
        own, at = [], len(items)
        for it in items:
            own.append(vectors[at : at + len(it.exemplars)])
            at += len(it.exemplars)
        reports = await asyncio.to_thread(
            novelty, vectors[: len(items)], own, pool, self.memorisation_threshold
        )
        seconds = (time.perf_counter() - start) / max(len(items), 1)
        status = Status(State.OK, engine=f"{self.embedder.name} vs pool {pool.pool.name}", seconds=seconds)
        return [Outcome(status, report) for report in reports]

    async def text_measures(self, story: str) -> Outcome[TextMeasures]:
        if self.text is None:
            return Outcome(Status(State.NOT_RUN, "text-side measures are disabled"))
        start = time.perf_counter()
        report = await asyncio.to_thread(self.text.measure, story)
        return Outcome(Status(State.OK, engine=self.text.method, seconds=time.perf_counter() - start), report)

    async def complexity(self, image: EncodedImage | None, judge: str = "") -> Outcome[ComplexityReport]:
        if image is None:
            return Outcome(Status(State.NOT_RUN, "the item has no image"))
        engines, why = await self._usable(Kind.COMPLEXITY, AlignmentOptions(judge=judge))
        if not engines:
            return Outcome(Status(State.NOT_RUN, why))
        evaluator = ComplexityEvaluator(
            engines[0], self.scorer, max_repairs=self.max_repairs, mode=self.judge_output
        )
        provenance = Provenance(
            prompt_version=COMPLEXITY_PROMPT_VERSION,
            judge=EngineRef.of(engines[0]),
            judge_sampling=evaluator.params,
            scorer=self.scorer.name,
        )
        return await _run(
            engine_label(engines[0]),
            lambda: evaluator.evaluate(image, provenance.rejected),
            provenance,
            engines[0].random_weights,
        )

    async def alignment(
        self, item: Item, options: AlignmentOptions = AlignmentOptions()
    ) -> Outcome[AlignmentReport]:
        """One item; its controls come from `options.control_stories` or the control pool's test split."""
        if item.image is None:
            return Outcome(Status(State.NOT_RUN, "the item has no image"))
        engines, why = await self._usable(Kind.ALIGNMENT, options)
        if not engines:
            return Outcome(Status(State.NOT_RUN, why))
        extractor, judge = engines
        evaluator = AlignmentEvaluator(
            KeyPointExtractor(extractor, max_repairs=self.max_repairs, mode=self.extractor_output),
            Judge(judge, top_logprobs=self.top_logprobs),
        )
        candidates, pool_name = self._control_stories(options)
        seed = self.seed if options.control_seed is None else options.control_seed
        provenance = Provenance(
            extractor_prompt_version=evaluator.extractor.prompt_version,
            prompt_version=judge_prompt.PROMPT_VERSION,
            extractor=EngineRef.of(extractor),
            judge=EngineRef.of(judge),
            extractor_sampling=evaluator.extractor.params,
            judge_sampling=evaluator.judge.params,
            control_seed=seed if options.num_controls > 0 and candidates else None,
            control_pool=pool_name,
        )
        label = f"extractor={engine_label(extractor)}, judge={engine_label(judge)}"

        async def run() -> AlignmentReport:
            try:
                extraction = await evaluator.extract(item.story)
            except ExtractionError as error:
                provenance.rejected.extend(_rejected(error.attempts))
                raise
            provenance.rejected.extend(_rejected(extraction.attempts))
            controls = await self.controls.draw(
                item.story,
                extraction.key_points,
                candidates,
                options.num_controls,
                random.Random(f"{seed}:{item.id}"),
                engine_label(extractor),
                evaluator.extract,
            )
            return await evaluator.evaluate(item.image, extraction, controls)

        return await _run(label, run, provenance, extractor.random_weights or judge.random_weights)

    def _control_stories(self, options: AlignmentOptions) -> tuple[list[ControlStory], str]:
        """Candidate control stories and the pool they come from ("" for the caller's own)."""
        if options.control_stories:
            return [ControlStory(story_id, text) for story_id, text in options.control_stories], ""
        pool = self.pools.get(options.control_pool)
        if pool is None:
            return [], ""
        split = pool.candidates("test") or pool.entries
        return [ControlStory(entry.id, entry.story) for entry in split], pool.name

    # --- items and sets ----------------------------------------------------------------------------

    async def evaluate_item(
        self, item: Item, kinds: Sequence[Kind] = ITEM_KINDS, options: AlignmentOptions = AlignmentOptions()
    ) -> ItemResult:
        novelties = await self.novelty([item]) if Kind.NOVELTY in kinds else [None]
        return await self._item(item, kinds, options, novelties[0])

    async def evaluate_set(
        self,
        items: Sequence[Item],
        kinds: Sequence[Kind] = ITEM_KINDS,
        options: AlignmentOptions = AlignmentOptions(),
    ) -> AsyncIterator[ItemResult]:
        """Yields each item's result as it completes: the same result EvaluateItem gives for the item
        (its controls are its own, its novelty embedded on its own)."""
        novelties: Sequence[Outcome[NoveltyReport] | None] = (
            await self.novelty(items) if Kind.NOVELTY in kinds else [None] * len(items)
        )
        gate = asyncio.Semaphore(self.max_items_in_flight)

        async def one(item: Item, found: Outcome[NoveltyReport] | None) -> ItemResult:
            async with gate:
                return await self._item(item, kinds, options, found)

        for next_done in asyncio.as_completed(
            [one(item, found) for item, found in zip(items, novelties, strict=True)]
        ):
            yield await next_done

    async def summarize(
        self,
        members: Sequence[Member],
        *,
        diversity: bool = True,
        k: int | None = None,
        reference: Sequence[str] = (),
    ) -> SetSummary:
        """The set summary of stored item evaluations, with diversity over the members' stories."""
        outcome = None
        if diversity:
            stories = [m.story for m in members if m.story.strip()]
            outcome = (
                await self.diversity(stories, k, reference)
                if len(stories) >= 2
                else Outcome(Status(State.NOT_RUN, f"diversity needs at least 2 stories, got {len(stories)}"))
            )
        return summarize(members, outcome)

    async def _item(
        self,
        item: Item,
        kinds: Sequence[Kind],
        options: AlignmentOptions,
        found: Outcome[NoveltyReport] | None,
    ) -> ItemResult:
        runs: dict[Kind, Callable[[], Awaitable[Outcome]]] = {
            Kind.ALIGNMENT: lambda: self.alignment(item, options),
            Kind.COMPLEXITY: lambda: self.complexity(item.image, options.judge),
            Kind.TEXT_MEASURES: lambda: self.text_measures(item.story),
        }
        wanted = [kind for kind in runs if kind in kinds]
        outcomes = await asyncio.gather(*(runs[kind]() for kind in wanted))
        results = {kind.value: o for kind, o in zip(wanted, outcomes, strict=True)}
        return ItemResult(item.id, novelty=found, **results)


def _rejected(attempts: Sequence[Attempt]) -> list[Rejected]:
    return [Rejected("invalid_key_points", "; ".join(a.errors), a.raw) for a in attempts]


async def _run(
    engine: str,
    evaluate: Callable[[], Awaitable[R]],
    provenance: Provenance | None = None,
    random_weights: bool = False,
) -> Outcome[R]:
    """Runs one evaluation; an unreachable engine means NOT_RUN, any other engine or output error FAILED."""
    start = time.perf_counter()
    try:
        report = await evaluate()
    except Unavailable as exc:
        return Outcome(
            Status(State.NOT_RUN, exc.message, engine, time.perf_counter() - start, random_weights),
            None,
            provenance,
        )
    except (ServiceError, OutputError, ExtractionError) as exc:
        failed = Status(State.FAILED, str(exc), engine, time.perf_counter() - start, random_weights)
        return Outcome(failed, None, provenance)
    return Outcome(
        Status(State.OK, "", engine, time.perf_counter() - start, random_weights), report, provenance
    )
