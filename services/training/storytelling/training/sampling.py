"""Several stories per prompt from the model being trained, through any chat engine.

vLLM serving the SFT adapter under its own name batches the requests (continuous batching), which on a
CPU is several times faster than generating in-process; the embedded engine (peft) works without it.
Every sample's seed derives from (seed, prompt, sample), so a rerun draws the same samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace

from storytelling.llm import ChatEngine, ChatMessage, SamplingParams
from storytelling.story.core import derive_seed
from storytelling.story.prompts import PROMPTS, Mode

PROMPT = PROMPTS[Mode.SHORT]


@dataclass(frozen=True)
class Prompt:
    id: str
    theme: str

    def messages(self) -> list[ChatMessage]:
        return PROMPT.render([], self.theme)


@dataclass(frozen=True)
class Sample:
    prompt: Prompt
    index: int
    seed: int
    text: str  # the raw completion: what the policy generated, and what DPO trains on
    finish_reason: str
    completion_tokens: int


async def sample(
    engine: ChatEngine,
    prompts: Sequence[Prompt],
    per_prompt: int,
    params: SamplingParams,
    seed: int,
    *,
    concurrency: int = 16,
) -> list[Sample]:
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: Prompt, index: int) -> Sample:
        sample_seed = derive_seed(seed, "sample", prompt.id, index)
        async with gate:
            completion = await engine.chat(prompt.messages(), replace(params, seed=sample_seed))
        return Sample(
            prompt,
            index,
            sample_seed,
            completion.text.strip(),
            completion.finish_reason,
            completion.completion_tokens,
        )

    return list(await asyncio.gather(*(one(p, i) for p in prompts for i in range(per_prompt))))
