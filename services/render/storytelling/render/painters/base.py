"""The one interface every painter implements, and the plain types that cross it."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class PainterRef:
    """Which painter made a picture and whether it is a real generative-model output."""

    kind: str  # "triton", "openai", "embedded", "sketch"
    model: str
    endpoint: str = ""
    is_fallback: bool = False
    note: str = ""


@dataclass(frozen=True)
class PainterSpec:
    """Defaults and bounds a painter accepts; requests are validated against them."""

    default_width: int = 512
    default_height: int = 512
    default_steps: int = 25
    default_guidance_scale: float = 7.5
    max_side: int = 1024
    max_steps: int = 100
    supports_progress: bool = False


@dataclass(frozen=True)
class PaintJob:
    """A validated request with every default filled in."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int
    story_id: str = ""


@dataclass(frozen=True)
class Painting:
    """Pixels plus what the painter actually did with the prompt."""

    image: Image.Image
    painter: PainterRef
    prompt: str
    long_prompt_strategy: str  # "none", "chunked", "t5", or "sketch" for the storyboard fallback
    prompt_tokens: int
    encoded_tokens: int
    steps: int
    guidance_scale: float


@dataclass(frozen=True)
class Progress:
    step: int
    total_steps: int


class Painter(abc.ABC):
    """A text-to-image backend. Painters raise storytelling.runtime.errors types, never transport errors."""

    spec: PainterSpec

    @property
    @abc.abstractmethod
    def ref(self) -> PainterRef:
        """Identity of the painter as currently known (a remote model may turn out to be random)."""

    async def start(self) -> None:
        """Loads weights or connects; may be slow."""

    async def ready(self) -> tuple[bool, str]:
        return True, ""

    async def close(self) -> None:
        """Releases weights or connections."""

    @abc.abstractmethod
    async def paint(self, job: PaintJob) -> Painting: ...

    async def paint_stream(self, job: PaintJob) -> AsyncIterator[Progress | Painting]:
        """Progress events, then the painting. Painters without progress yield only the painting."""
        yield await self.paint(job)
