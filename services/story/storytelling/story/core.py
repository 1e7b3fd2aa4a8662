"""The storyteller core: validates a request, builds the prompt, calls an engine, filters the output.

Transport-free: it takes and returns plain dataclasses and raises `storytelling.runtime.errors`, whose
`field` names the request field at fault using the API's field paths.

Reproducibility: one seed drives everything. It seeds the RNG that samples exemplars, and attempt `a`
sends the engine the seed derived from (seed, a). WriteStories derives story i's seed from (seed, i),
so any story of a batch can be reproduced alone with WriteStory and its recorded seed.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from storytelling.llm import ChatEngine, Completion, SamplingParams
from storytelling.runtime.errors import FailedPrecondition, InvalidArgument
from storytelling.api.pools import Pool, PoolEntry, PoolFormatError, PoolRegistry, parse_pool
from storytelling.story.postprocess import Rejection, check, clean
from storytelling.story.prompts import PROMPTS, Mode, Prompt

SEED_BITS = 63


@dataclass(frozen=True)
class InlinePool:
    name: str
    content: bytes
    format: str = ""


@dataclass(frozen=True)
class StoryOptions:
    """A request as the core sees it; None and 0 mean "the service default", as in the API."""

    mode: Mode | None = None
    pool: str = ""
    inline_pool: InlinePool | None = None
    num_exemplars: int = 0
    split: str = ""
    engine: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # Used as the request seed when the request carries none.
    sampling_seed: int | None = None
    max_attempts: int = 0
    theme: str = ""


@dataclass(frozen=True)
class EngineRef:
    kind: str
    endpoint: str
    model: str


@dataclass(frozen=True)
class Provenance:
    mode: Mode
    prompt_version: str
    pool: str
    exemplar_ids: tuple[str, ...]
    engine: EngineRef
    sampling: SamplingParams
    seed: int
    rejected: tuple[Rejection, ...]
    created_at: datetime
    prompt_tokens: int
    completion_tokens: int
    # No output passed every check: the text is a salvaged one, and the last rejection says why.
    salvaged: bool = False


@dataclass(frozen=True)
class Story:
    id: str
    text: str
    provenance: Provenance


@dataclass(frozen=True)
class Limits:
    """Service defaults and bounds (from settings)."""

    # Prompting mode of a request that names none.
    mode: Mode = Mode.COR_GUIDED
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 320
    num_exemplars: int = 3
    max_exemplars: int = 8
    # Regenerations allowed after a rejected output (the API's `max_attempts`), default and cap.
    max_attempts: int = 3
    max_attempts_cap: int = 10
    max_stories: int = 256
    # Stories generated at once by WriteStories.
    concurrency: int = 8
    # When no clean output came within the attempts, return the first salvageable one (postprocess.py).
    accept_salvaged: bool = True
    # Return a truncated output at once when its cut at the last complete sentence passes every check,
    # instead of regenerating: a small model that never stops by itself would only be cut again.
    accept_cut: bool = False
    max_theme_chars: int = 300


@dataclass(frozen=True)
class _Plan:
    prompt: Prompt
    pool: Pool | None
    num_exemplars: int
    split: str | None
    engine_name: str
    engine: ChatEngine
    sampling: SamplingParams
    attempts: int
    theme: str


@dataclass(frozen=True)
class _Attempt:
    completion: Completion
    sampling: SamplingParams
    rejection: Rejection | None


def derive_seed(seed: int, *parts: object) -> int:
    """A stable, well-mixed seed for a sub-task, in [0, 2**63)."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


class Storyteller:
    def __init__(
        self,
        engines: Mapping[str, ChatEngine],
        pools: PoolRegistry,
        *,
        default_engine: str,
        limits: Limits | None = None,
        engine_modes: Mapping[str, Mode] | None = None,
    ) -> None:
        """`engine_modes`: the mode of requests that name none, per engine (`limits.mode` otherwise); a
        Mini-Storyteller, trained for the short prompt, is best asked with it."""
        if default_engine not in engines:
            raise ValueError(f"default engine {default_engine!r} is not among {sorted(engines)}")
        unknown = set(engine_modes or {}) - set(engines)
        if unknown:
            raise ValueError(f"engine modes name engines that are not configured: {sorted(unknown)}")
        self.engines = dict(engines)
        self.engine_modes = dict(engine_modes or {})
        self.pools = pools
        self.default_engine = default_engine
        self.limits = limits or Limits()

    @staticmethod
    def modes() -> list[Prompt]:
        return list(PROMPTS.values())

    async def write(self, options: StoryOptions, seed: int | None = None, story_id: str = "") -> Story:
        plan = self._plan(options)
        return await self._write(plan, self._seed(options, seed), story_id)

    async def write_many(
        self, options: StoryOptions, count: int, seed: int | None = None
    ) -> AsyncIterator[tuple[int, Story]]:
        """Yields (index, story) as each story is accepted, at most `limits.concurrency` at a time."""
        if not 1 <= count <= self.limits.max_stories:
            raise InvalidArgument(f"must be in [1, {self.limits.max_stories}], got {count}", field="count")
        plan = self._plan(options)
        base = self._seed(options, seed)
        gate = asyncio.Semaphore(self.limits.concurrency)

        async def one(index: int) -> tuple[int, Story]:
            async with gate:
                return index, await self._write(plan, derive_seed(base, "story", index), "")

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _seed(self, options: StoryOptions, seed: int | None) -> int:
        for candidate in (seed, options.sampling_seed):
            if candidate is not None:
                return candidate
        return secrets.randbits(SEED_BITS)

    def _plan(self, options: StoryOptions) -> _Plan:
        limits = self.limits
        engine_name = options.engine or self.default_engine
        if engine_name not in self.engines:
            raise InvalidArgument(
                f"unknown engine {engine_name!r}; configured: {', '.join(sorted(self.engines))}",
                field="options.engine",
            )
        prompt = PROMPTS[options.mode or self.engine_modes.get(engine_name, limits.mode)]
        sampling = SamplingParams(
            temperature=_in_range(options.temperature, limits.temperature, 0.0, 2.0, "temperature"),
            top_p=_in_range(options.top_p, limits.top_p, 0.0, 1.0, "top_p", open_low=True),
            max_tokens=int(_in_range(options.max_tokens, limits.max_tokens, 16, 4096, "max_tokens")),
        )
        if not 0 <= options.max_attempts <= limits.max_attempts_cap:
            raise InvalidArgument(
                f"must be in [0, {limits.max_attempts_cap}], got {options.max_attempts}",
                field="options.max_attempts",
            )
        theme = options.theme.strip()
        if len(theme) > limits.max_theme_chars:
            raise InvalidArgument(
                f"at most {limits.max_theme_chars} characters, got {len(theme)}", field="options.theme"
            )
        pool = self._pool(options) if prompt.uses_exemplars or options.pool or options.inline_pool else None
        k = options.num_exemplars or limits.num_exemplars
        split = options.split or None
        if prompt.uses_exemplars:
            if not 1 <= k <= limits.max_exemplars:
                raise InvalidArgument(
                    f"must be in [1, {limits.max_exemplars}], got {k}", field="options.num_exemplars"
                )
            if split is not None and split not in pool.splits:
                raise InvalidArgument(
                    f"pool {pool.name!r} has no split {split!r} (splits: {sorted(pool.splits) or 'none'})",
                    field="options.split",
                )
            available = len(pool.candidates(split))
            if k > available:
                raise InvalidArgument(
                    f"{k} exemplars requested but pool {pool.name!r} has {available}"
                    + (f" in split {split or 'train'!r}" if pool.splits else ""),
                    field="options.num_exemplars",
                )
        return _Plan(
            prompt=prompt,
            pool=pool if prompt.uses_exemplars else None,  # a named pool is still validated in naive mode
            num_exemplars=k if prompt.uses_exemplars else 0,
            split=split,
            engine_name=engine_name,
            engine=self.engines[engine_name],
            sampling=sampling,
            attempts=1 + (options.max_attempts or limits.max_attempts),
            theme=theme,
        )

    def _pool(self, options: StoryOptions) -> Pool:
        inline = options.inline_pool
        if inline is not None:
            if inline.format not in ("", "csv", "jsonl"):
                raise InvalidArgument(
                    f"must be 'csv', 'jsonl' or empty, got {inline.format!r}",
                    field="options.inline_pool.format",
                )
            try:
                return parse_pool(inline.name or "inline", inline.content, inline.format, source="inline")
            except PoolFormatError as error:
                raise InvalidArgument(str(error), field="options.inline_pool.content") from None
        pool = self.pools.get(options.pool)
        if pool is None:
            raise InvalidArgument(
                f"unknown pool {options.pool!r}; available: {', '.join(self.pools.names())}",
                field="options.pool",
            )
        return pool

    async def _write(self, plan: _Plan, seed: int, story_id: str) -> Story:
        exemplars = plan.pool.sample(plan.num_exemplars, random.Random(seed), plan.split) if plan.pool else []
        messages = plan.prompt.render(exemplars, plan.theme)
        prompt_text = "\n".join(m.content for m in messages)
        attempts: list[_Attempt] = []
        for number in range(plan.attempts):
            sampling = replace(plan.sampling, seed=derive_seed(seed, "attempt", number))
            completion = await plan.engine.chat(messages, sampling)
            text = clean(completion.text)
            attempt = _Attempt(completion, sampling, check(text, completion.finish_reason, prompt_text))
            attempts.append(attempt)
            if attempt.rejection is None:
                rejected = [a.rejection for a in attempts[:-1]]
                return self._story(plan, seed, story_id, text, attempt, rejected, exemplars)
            if self._clean_cut(attempt.rejection, prompt_text):
                cut = replace(attempt.rejection, detail="returned at once, cut at its last complete sentence")
                rejected = [*(a.rejection for a in attempts[:-1]), cut]
                salvage = attempt.rejection.salvage
                return self._story(plan, seed, story_id, salvage, attempt, rejected, exemplars, salvaged=True)
        fallback = next((a for a in attempts if a.rejection.salvage), None)
        if fallback is None or not self.limits.accept_salvaged:
            reasons = ", ".join(a.rejection.reason for a in attempts)
            # Not transient: the same seed and options give the same outputs, so retrying cannot help.
            raise FailedPrecondition(
                f"no acceptable story from {plan.engine.model!r} in {plan.attempts} attempts ({reasons}); "
                "raise options.max_attempts or options.sampling.max_tokens, or use a stronger model"
            )
        accepted = replace(
            fallback.rejection,
            detail=f"returned anyway (no clean output in {plan.attempts} attempts): {fallback.rejection.detail}",
        )
        others = [a for a in attempts if a is not fallback]
        return self._story(
            plan,
            seed,
            story_id,
            fallback.rejection.salvage,
            fallback,
            [*(a.rejection for a in others), accepted],
            exemplars,
            salvaged=True,
        )

    def _clean_cut(self, rejection: Rejection, prompt: str) -> bool:
        return (
            self.limits.accept_cut
            and rejection.reason == "truncated"
            and rejection.salvage is not None
            and check(rejection.salvage, "stop", prompt) is None
        )

    def _story(
        self,
        plan: _Plan,
        seed: int,
        story_id: str,
        text: str,
        accepted: _Attempt,
        rejected: list[Rejection],
        exemplars: list[PoolEntry],
        *,
        salvaged: bool = False,
    ) -> Story:
        engine = plan.engine
        return Story(
            id=story_id or "st-" + hashlib.sha256(text.encode()).hexdigest()[:16],
            text=text,
            provenance=Provenance(
                mode=plan.prompt.mode,
                prompt_version=plan.prompt.version,
                pool=plan.pool.name if plan.pool else "",
                exemplar_ids=tuple(e.id for e in exemplars),
                engine=EngineRef(engine.kind, engine.endpoint, engine.model),
                sampling=accepted.sampling,
                seed=seed,
                rejected=tuple(rejected),
                created_at=datetime.now(UTC),
                prompt_tokens=accepted.completion.prompt_tokens,
                completion_tokens=accepted.completion.completion_tokens,
                salvaged=salvaged,
            ),
        )


def _in_range(
    value: float | None, default: float, low: float, high: float, name: str, *, open_low: bool = False
) -> float:
    if value is None:
        return default
    if (value <= low if open_low else value < low) or value > high:
        bracket = "(" if open_low else "["
        raise InvalidArgument(
            f"must be in {bracket}{low:g}, {high:g}], got {value:g}", field=f"options.sampling.{name}"
        )
    return value
