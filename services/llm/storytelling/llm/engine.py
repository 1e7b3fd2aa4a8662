"""The engine interface: plain Python types, no transport."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An encoded image inside a message. It travels inline (a data URL for remote engines), so an engine
    needs no access to our storage."""

    data: bytes
    mime: str  # image/png, image/jpeg or image/webp

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


Part = TextPart | ImagePart


@dataclass(frozen=True)
class ChatMessage:
    """One turn: plain text, or parts (text and images) for vision-language models."""

    role: Role
    content: str | tuple[Part, ...]

    @property
    def parts(self) -> tuple[Part, ...]:
        return (TextPart(self.content),) if isinstance(self.content, str) else self.content

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        return [part for part in self.parts if isinstance(part, ImagePart)]

    def as_openai(self) -> dict[str, Any]:
        """The OpenAI chat format: a string, or a list of text and image_url parts."""
        if isinstance(self.content, str):
            return {"role": self.role, "content": self.content}
        return {
            "role": self.role,
            "content": [
                {"type": "text", "text": part.text}
                if isinstance(part, TextPart)
                else {"type": "image_url", "image_url": {"url": part.data_url()}}
                for part in self.content
            ],
        }

    def as_template(self, *, with_parts: bool) -> dict[str, Any]:
        """The shape transformers chat templates take: processors of vision models want a list of
        {"type": "image"} / {"type": "text"} parts (the pixels go to the processor separately)."""
        if not with_parts:
            return {"role": self.role, "content": self.text}
        return {
            "role": self.role,
            "content": [
                {"type": "text", "text": part.text} if isinstance(part, TextPart) else {"type": "image"}
                for part in self.parts
            ],
        }


@dataclass(frozen=True)
class JsonSchema:
    """A constraint on the answer: JSON valid under `schema`, enforced while decoding by engines that can
    (vLLM's structured outputs through the OpenAI `response_format`). `name` identifies the schema and
    its version in requests and provenance, for example "key_points_v1"."""

    name: str
    schema: dict[str, Any] = field(hash=False, compare=True)


@dataclass(frozen=True)
class SamplingParams:
    """What the engine samples with; `temperature == 0` means greedy decoding."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    # Number of alternatives to return per generated token (None: no log-probabilities).
    top_logprobs: int | None = None
    stop: tuple[str, ...] = ()
    # Constrained decoding to a JSON schema (None: free text). Engines that cannot constrain refuse it.
    json_schema: JsonSchema | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    # The most likely alternatives at this position, token -> log-probability.
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    text: str
    # "stop": the model ended the message (or hit a stop string); "length": cut at max_tokens.
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    model: str
    logprobs: list[TokenLogprob] | None = None


class ChatEngine(Protocol):
    """A chat model. Implementations raise `storytelling.runtime.errors.ServiceError` subclasses."""

    # "openai" or "embedded"; the endpoint is empty for in-process engines.
    kind: str
    endpoint: str
    model: str
    # The model is randomly initialised (plumbing only): results built on it say so.
    random_weights: bool

    async def start(self) -> None:
        """Loads weights or checks the connection; idempotent."""

    async def ready(self) -> tuple[bool, str]:
        """Whether the engine can serve now, and why not."""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        """The model's answer to `messages`; messages with image parts need a vision-language model."""

    async def aclose(self) -> None:
        """Releases connections or weights."""
