"""Vision-language engines: a prompt about one image in, a completion (with log-probabilities) out.

Both engines reuse the shared text engines of `storytelling.llm` (HTTP, retries, deadlines, log-prob
parsing) and add only what an image needs: image_url content parts, or a transformers processor.
"""

from pathlib import Path
from typing import Any, Protocol

from storytelling.evaluation.images import EncodedImage
from storytelling.llm import ChatMessage, Completion, EngineSpec, SamplingParams
from storytelling.llm.embedded import eos_token_ids, token_logprobs
from storytelling.llm.inprocess import InProcessModel
from storytelling.llm.openai import OpenAIChatEngine, parse_completion
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded


class VisionEngine(Protocol):
    kind: str
    endpoint: str
    model: str

    async def start(self) -> None: ...

    async def ready(self) -> tuple[bool, str]: ...

    async def ask(self, image: EncodedImage, prompt: str, params: SamplingParams) -> Completion:
        """The model's answer to `prompt` about `image`, as one user turn."""
        ...

    async def aclose(self) -> None: ...


class OpenAIVisionEngine(OpenAIChatEngine):
    """An OpenAI-compatible chat endpoint serving a VLM (vLLM in production); the image travels inline
    as a base64 data URL, so the engine needs no access to our storage."""

    async def ask(self, image: EncodedImage, prompt: str, params: SamplingParams) -> Completion:
        body = self._body([ChatMessage("user", prompt)], params)
        body["messages"][-1]["content"] = [
            {"type": "image_url", "image_url": {"url": image.data_url()}},
            {"type": "text", "text": prompt},
        ]
        payload = await self._post_with_retries("/chat/completions", body)
        return parse_completion(payload, self.model)


class EmbeddedVisionEngine(InProcessModel):
    """A transformers image-text-to-text model in-process (greedy decoding only: judges need no sampling).

    One generation at a time in a worker thread, as in the embedded text engine.
    """

    kind = "embedded"
    endpoint = ""

    noun = "vision model"

    def __init__(self, model: str | Path, *, dtype: str = "float32") -> None:
        super().__init__(str(model), dtype=dtype)

    async def ask(self, image: EncodedImage, prompt: str, params: SamplingParams) -> Completion:
        return await self._run(self._generate, image, prompt, params, deadlines.remaining())

    def _load(self) -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(self.model)
        model = AutoModelForImageTextToText.from_pretrained(self.model, dtype=getattr(torch, self._dtype))
        return processor, model.eval()

    def _generate(
        self, image: EncodedImage, prompt: str, params: SamplingParams, time_left: float | None
    ) -> Completion:
        import torch

        if time_left is not None and time_left <= 0:
            raise DeadlineExceeded(f"no time left to run {self.model}")
        processor, model = self._loaded
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = processor(images=[image.pil()], text=[text], return_tensors="pt")
        tokenizer = processor.tokenizer
        options: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
            "return_dict_in_generate": True,
            "output_logits": params.top_logprobs is not None,
        }
        if time_left is not None:
            options["max_time"] = time_left
        with torch.inference_mode():
            output = model.generate(**inputs, **options, stopping_criteria=self.stopping_criteria())
        prompt_len = inputs["input_ids"].shape[1]
        generated = output.sequences[0, prompt_len:].tolist()
        ended = bool(generated) and generated[-1] in eos_token_ids(model, tokenizer)
        return Completion(
            text=tokenizer.decode(generated, skip_special_tokens=True),
            finish_reason="stop" if ended else "length",
            prompt_tokens=prompt_len,
            completion_tokens=len(generated),
            model=self.model,
            logprobs=token_logprobs(tokenizer, generated, output.logits, params.top_logprobs)
            if params.top_logprobs is not None
            else None,
        )


def build_vision_engine(spec: EngineSpec) -> VisionEngine:
    """A judge from the same configuration shape as the text engines (`storytelling.llm.EngineSpec`)."""
    if not spec.model:
        raise ValueError("a vision engine needs model: the served model name, or a local model directory")
    if spec.kind == "embedded":
        return EmbeddedVisionEngine(spec.model)
    if not spec.base_url:
        raise ValueError("an openai vision engine needs base_url")
    return OpenAIVisionEngine.from_spec(spec)
