"""SFT examples: stories from a teacher, filtered, each paired with the short prompt it is trained for.

A teacher is any chat engine (an OpenAI-compatible endpoint, a model profile's storyteller) prompted
CoR-guided with exemplars from the pool's train split, through the story core, so its stories get the
same prompts, checks and provenance as the story service's. Offline, the train split itself is the
teacher data. Either way the test split never reaches training: the builder refuses another split, and
checks every story's exemplars and themes against the train split.

The example's prompt is the short one (`short/1`: one instruction and, for some examples, the scene's
theme), so the Mini-Storyteller learns to write a rich scene without reading rules or exemplars.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storytelling.api.pools import Pool, PoolEntry, PoolRegistry
from storytelling.client import AsyncEvaluationClient
from storytelling.llm import ChatEngine, ChatMessage
from storytelling.runtime.errors import FailedPrecondition
from storytelling.story.core import Limits, StoryOptions, Storyteller, derive_seed
from storytelling.story.prompts import PROMPTS, Mode
from storytelling.training.layout import RunLayout
from storytelling.training.records import write_json, write_jsonl
from storytelling.training.reward import format_check
from storytelling.training.scoring import measure

TRAIN = "train"
SFT_PROMPT = PROMPTS[Mode.SHORT]
TEACHER_PROMPT = PROMPTS[Mode.COR_GUIDED]


class SplitError(ValueError):
    """Something outside the pool's train split would be trained on."""


@dataclass(frozen=True)
class Example:
    id: str
    theme: str
    story: str
    teacher: str  # "pool:NAME/train" offline, else "KIND:MODEL@ENDPOINT"
    teacher_prompt: str  # prompt version the teacher wrote with ("pool": written by hand)
    exemplar_ids: tuple[str, ...] = ()
    seed: int | None = None
    source_id: str = ""  # the pool story, for pool examples
    measures: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> list[ChatMessage]:
        return SFT_PROMPT.render([], self.theme)

    def record(self) -> dict[str, Any]:
        """A prompt-completion conversation, as TRL takes it, with the example's provenance."""
        return {
            "id": self.id,
            "prompt": [m.as_template(with_parts=False) for m in self.messages()],
            "completion": [{"role": "assistant", "content": self.story}],
            "provenance": {
                "teacher": self.teacher,
                "teacher_prompt": self.teacher_prompt,
                "prompt_version": SFT_PROMPT.version,
                "theme": self.theme,
                "exemplar_ids": list(self.exemplar_ids),
                "seed": self.seed,
                "source_id": self.source_id,
                "measures": self.measures,
            },
        }


def train_split(pool: Pool, split: str = TRAIN) -> tuple[PoolEntry, ...]:
    """The entries training may use; anything but the train split is refused."""
    if split != TRAIN:
        raise SplitError(
            f"split: training data must come from the {TRAIN!r} split, got {split!r}; the test split "
            "is held out for the report"
        )
    if TRAIN not in pool.splits:
        raise SplitError(
            f"pool: {pool.name!r} has no {TRAIN!r} split; give every line a 'split' field "
            "(train or test) so a test split can be held out"
        )
    return pool.candidates(TRAIN)


def pool_examples(pool: Pool, split: str = TRAIN) -> list[Example]:
    """The offline teacher data: every train story twice, once with its setting as theme, once without."""
    return [
        Example(
            id=f"{entry.id}:{'theme' if theme else 'plain'}",
            theme=theme,
            story=entry.story,
            teacher=f"pool:{pool.name}/{TRAIN}",
            teacher_prompt="pool",
            source_id=entry.id,
        )
        for entry in train_split(pool, split)
        for theme in (entry.setting, "")
    ]


@dataclass(frozen=True)
class Rejected:
    id: str
    reason: str
    story: str = ""


async def teacher_examples(
    teacher: ChatEngine,
    pool: Pool,
    *,
    count: int,
    seed: int,
    split: str = TRAIN,
    theme_share: float = 0.5,
    max_attempts: int = 2,
    max_tokens: int = 320,
) -> tuple[list[Example], list[Rejected]]:
    """`count` CoR-guided stories from `teacher`, exemplars sampled from the train split.

    A share of the requests carries a theme, drawn from the train split's settings; the others none.
    An output that fails the story checks is regenerated up to `max_attempts` times, never salvaged; a
    request without a clean story is returned as rejected, with the reason.
    """
    entries = train_split(pool, split)
    train_ids = {e.id for e in entries}
    themes = [e.setting for e in entries if e.setting]
    storyteller = Storyteller(
        {"teacher": teacher},
        PoolRegistry([pool]),
        default_engine="teacher",
        limits=Limits(max_attempts=max_attempts, accept_salvaged=False, max_tokens=max_tokens),
    )
    rng = random.Random(seed)
    examples, rejected = [], []
    for number in range(count):
        theme = rng.choice(themes) if themes and rng.random() < theme_share else ""
        story_seed = derive_seed(seed, "teacher", number)
        options = StoryOptions(mode=Mode.COR_GUIDED, pool=pool.name, split=TRAIN, theme=theme)
        try:
            story = await storyteller.write(options, story_seed)
        except FailedPrecondition as error:
            rejected.append(Rejected(f"teacher-{number}", f"story checks: {error.message}"))
            continue
        leaked = set(story.provenance.exemplar_ids) - train_ids
        if leaked:
            raise SplitError(f"exemplars: {sorted(leaked)} are not in the {TRAIN!r} split")
        ref = story.provenance.engine
        examples.append(
            Example(
                id=f"teacher-{number}",
                theme=theme,
                story=story.text,
                teacher=f"{ref.kind}:{ref.model}" + (f"@{ref.endpoint}" if ref.endpoint else ""),
                teacher_prompt=story.provenance.prompt_version,
                exemplar_ids=story.provenance.exemplar_ids,
                seed=story_seed,
            )
        )
    return examples, rejected


@dataclass(frozen=True)
class Filters:
    min_dimensions: int = 3
    max_repetition: float = 0.1
    # Drop teacher stories this similar to a pool story (copies of exemplars); None keeps all.
    max_similarity: float | None = 0.9


async def filter_examples(
    examples: Sequence[Example],
    evaluation: AsyncEvaluationClient,
    filters: Filters,
    reference: Sequence[str] = (),
) -> tuple[list[Example], list[Rejected]]:
    """Keeps examples that pass the story checks and the text-side thresholds; the rest say why."""
    checked, rejected = [], []
    for example in examples:
        fmt = format_check(example.story, "stop")
        if fmt.score < 1.0:
            rejected.append(Rejected(example.id, f"story checks: {fmt.reason}", example.story))
        else:
            checked.append(example)
    if not checked:
        return [], rejected
    use_reference = reference if filters.max_similarity is not None else ()
    measured = await measure(evaluation, [e.story for e in checked], reference=use_reference)
    kept = []
    for example, m in zip(checked, measured.stories, strict=True):
        values = {
            "dimensions_covered": m.dimensions_covered,
            "repetition": round(m.repetition, 4),
            "words": m.words,
        }
        if m.max_similarity is not None:
            values["max_similarity"] = round(m.max_similarity, 4)
        reason = _failed(m.dimensions_covered, m.repetition, m.max_similarity, filters)
        if reason:
            rejected.append(Rejected(example.id, reason, example.story))
        else:
            kept.append(Example(**{**example.__dict__, "measures": values}))
    return kept, rejected


def _failed(covered: int, repetition: float, similarity: float | None, filters: Filters) -> str:
    if covered < filters.min_dimensions:
        return f"dimensions: {covered} covered, fewer than {filters.min_dimensions}"
    if repetition > filters.max_repetition:
        return f"repetition: {repetition:.2f} of trigrams repeated, more than {filters.max_repetition}"
    if filters.max_similarity is not None and similarity is not None and similarity > filters.max_similarity:
        return f"novelty: similarity {similarity:.2f} to a pool story, more than {filters.max_similarity}"
    return ""


def rejection_counts(rejected: Sequence[Rejected]) -> dict[str, int]:
    return dict(Counter(r.reason.split(":", 1)[0] for r in rejected))


async def build_sft_data(
    layout: RunLayout,
    pool: Pool,
    evaluation: AsyncEvaluationClient,
    *,
    teacher: ChatEngine | None = None,
    count: int = 0,
    seed: int = 0,
    filters: Filters = Filters(),
    theme_share: float = 0.5,
) -> dict[str, Any]:
    """Writes the filtered SFT examples and their manifest; returns the manifest.

    Without a teacher the examples are the pool's train split, which is not checked for copies of itself.
    """
    if teacher is None:
        candidates, rejected = pool_examples(pool), []
        filters = Filters(filters.min_dimensions, filters.max_repetition, max_similarity=None)
        source = f"pool:{pool.name}/{TRAIN}"
    else:
        if count < 1:
            raise ValueError(f"count: a teacher needs at least 1 example to write, got {count}")
        candidates, rejected = await teacher_examples(
            teacher, pool, count=count, seed=seed, theme_share=theme_share
        )
        source = f"{teacher.kind}:{teacher.model}" + (f"@{teacher.endpoint}" if teacher.endpoint else "")
    kept, dropped = await filter_examples(
        candidates, evaluation, filters, reference=[e.story for e in pool.entries]
    )
    rejected += dropped
    if not kept:
        raise ValueError(f"no example passed the filters ({rejection_counts(rejected)}); loosen them")
    data_hash = write_jsonl(layout.sft_data, (e.record() for e in kept))
    manifest = {
        "teacher": source,
        "teacher_prompt": TEACHER_PROMPT.version if teacher is not None else "pool",
        "prompt_version": SFT_PROMPT.version,
        "pool": pool.name,
        "split": TRAIN,
        "seed": seed,
        "examples": len(kept),
        "themed": sum(bool(e.theme) for e in kept),
        "exemplar_ids": sorted({i for e in kept for i in e.exemplar_ids}),
        "rejected": rejection_counts(rejected),
        "rejected_examples": [r.__dict__ for r in rejected],
        "filters": filters.__dict__,
        "data_sha256": data_hash,
    }
    write_json(layout.sft_manifest, manifest)
    return manifest
