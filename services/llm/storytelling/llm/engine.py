"""The engine interface: plain Python types, no transport."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


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

    async def start(self) -> None:
        """Loads weights or checks the connection; idempotent."""

    async def ready(self) -> tuple[bool, str]:
        """Whether the engine can serve now, and why not."""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion: ...

    async def aclose(self) -> None:
        """Releases connections or weights."""
