"""Several stories per prompt from the model being trained.

Two samplers: `EngineSampler` asks a chat engine, typically vLLM serving the SFT adapter under its own
name, which batches the requests (continuous batching; several times faster than one-at-a-time
generation on a CPU); `InProcessSampler` generates with transformers on the training device, all the
samples of a batch of prompts at once (`num_return_sequences`), so it needs no server and uses a GPU
when there is one. Seeds derive from the run's seed: a rerun draws the same samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

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


class Sampler(Protocol):
    label: str  # the policy, for provenance

    async def sample(
        self, prompts: Sequence[Prompt], per_prompt: int, params: SamplingParams, seed: int
    ) -> list[Sample]: ...


class EngineSampler:
    def __init__(self, engine: ChatEngine, *, concurrency: int = 16) -> None:
        self.engine = engine
        self.concurrency = concurrency
        self.label = f"{engine.kind}:{engine.model}" + (f"@{engine.endpoint}" if engine.endpoint else "")

    async def sample(
        self, prompts: Sequence[Prompt], per_prompt: int, params: SamplingParams, seed: int
    ) -> list[Sample]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(prompt: Prompt, index: int) -> Sample:
            sample_seed = derive_seed(seed, "sample", prompt.id, index)
            async with gate:
                done = await self.engine.chat(prompt.messages(), replace(params, seed=sample_seed))
            return Sample(
                prompt, index, sample_seed, done.text.strip(), done.finish_reason, done.completion_tokens
            )

        return list(await asyncio.gather(*(one(p, i) for p in prompts for i in range(per_prompt))))


class InProcessSampler:
    """`model` is the policy in eval mode on its device (an adapter merged in); one batch of
    `prompts_per_batch` prompts generates all their samples together."""

    def __init__(self, tokenizer: Any, model: Any, label: str, *, prompts_per_batch: int = 8) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.label = label
        self.prompts_per_batch = prompts_per_batch

    async def sample(
        self, prompts: Sequence[Prompt], per_prompt: int, params: SamplingParams, seed: int
    ) -> list[Sample]:
        return await asyncio.to_thread(self._sample, list(prompts), per_prompt, params, seed)

    def _sample(
        self, prompts: list[Prompt], per_prompt: int, params: SamplingParams, seed: int
    ) -> list[Sample]:
        import torch

        tokenizer, model = self.tokenizer, self.model
        tokenizer.padding_side = "left"
        eos = {tokenizer.eos_token_id, *_ids(model.generation_config.eos_token_id)}
        samples = []
        for start in range(0, len(prompts), self.prompts_per_batch):
            batch = prompts[start : start + self.prompts_per_batch]
            inputs = tokenizer.apply_chat_template(
                [[m.as_template(with_parts=False) for m in p.messages()] for p in batch],
                add_generation_prompt=True,
                padding=True,
                return_tensors="pt",
                return_dict=True,
            ).to(model.device)
            batch_seed = derive_seed(seed, "sample", start)
            torch.manual_seed(batch_seed)
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    do_sample=params.temperature > 0,
                    temperature=params.temperature or None,
                    top_p=params.top_p if params.temperature > 0 else None,
                    top_k=0 if params.temperature > 0 else None,
                    max_new_tokens=params.max_tokens,
                    num_return_sequences=per_prompt,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for row, tokens in enumerate(output[:, inputs["input_ids"].shape[1] :].tolist()):
                end = next((i for i, t in enumerate(tokens) if t in eos), None)
                kept = tokens if end is None else tokens[:end]
                samples.append(
                    Sample(
                        prompt=batch[row // per_prompt],
                        index=row % per_prompt,
                        seed=batch_seed,
                        text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                        finish_reason="length" if end is None else "stop",
                        completion_tokens=len(kept),
                    )
                )
        return samples


def _ids(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
