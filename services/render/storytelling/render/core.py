"""The render core: validates a request against the chosen painter, paints, encodes. No transport here."""

from __future__ import annotations

import contextlib
import io
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from PIL import PngImagePlugin
from storytelling.render.painters.base import Painter, PainterRef, PainterSpec, Painting, PaintJob, Progress
from storytelling.runtime.errors import InvalidArgument

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MIN_SIDE = 64
MAX_GUIDANCE = 30.0
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class RenderRequest:
    prompt: str
    negative_prompt: str = ""
    painter: str = ""  # empty: the default painter
    width: int = 0  # 0: the painter's default
    height: int = 0
    steps: int = 0
    guidance_scale: float | None = None
    seed: int | None = None  # None: random, recorded in the result
    format: str = "png"
    story_id: str = ""


@dataclass(frozen=True)
class RenderResult:
    data: bytes
    format: str
    width: int
    height: int
    seed: int
    painting: Painting
    seconds: float

    @property
    def painter(self) -> PainterRef:
        return self.painting.painter


@dataclass(frozen=True)
class PainterStatus:
    name: str
    ref: PainterRef
    spec: PainterSpec
    ready: bool
    detail: str


def encode(painting: Painting, fmt: str, seed: int) -> bytes:
    """Encodes the picture; PNGs carry the painter's identity and fallback label as text chunks."""
    buffer = io.BytesIO()
    ref = painting.painter
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        for key, value in (
            ("painter", ref.kind),
            ("model", ref.model),
            ("is_fallback", str(ref.is_fallback).lower()),
            ("note", ref.note),
            ("seed", str(seed)),
        ):
            info.add_text(key, value)
        painting.image.save(buffer, format="PNG", pnginfo=info)
    else:
        painting.image.save(buffer, format=FORMATS[fmt], quality=92)
    return buffer.getvalue()


class RenderCore:
    def __init__(self, painters: Mapping[str, Painter], default: str, max_prompt_chars: int = 8000) -> None:
        if default not in painters:
            raise ValueError(f"default painter {default!r} is not among the painters {sorted(painters)}")
        self.painters = dict(painters)
        self.default = default
        self.max_prompt_chars = max_prompt_chars

    def plan(self, request: RenderRequest) -> tuple[Painter, PaintJob]:
        """The painter and the fully specified job, or InvalidArgument naming the first bad field."""
        name = request.painter or self.default
        painter = self.painters.get(name)
        if painter is None:
            raise InvalidArgument(
                f"unknown painter {name!r}; available: {', '.join(sorted(self.painters))}", field="painter"
            )
        spec = painter.spec
        if not request.prompt.strip():
            raise InvalidArgument("must not be empty", field="prompt")
        for field, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt)):
            if len(text) > self.max_prompt_chars:
                raise InvalidArgument(f"{len(text)} characters, limit {self.max_prompt_chars}", field=field)
        width = request.width or spec.default_width
        height = request.height or spec.default_height
        for field, side in (("width", width), ("height", height)):
            if side % 8 or not MIN_SIDE <= side <= spec.max_side:
                raise InvalidArgument(
                    f"must be a multiple of 8 in [{MIN_SIDE}, {spec.max_side}], got {side}", field=field
                )
        steps = request.steps or spec.default_steps
        if request.steps and not 1 <= request.steps <= spec.max_steps:
            raise InvalidArgument(f"must be in [1, {spec.max_steps}], got {request.steps}", field="steps")
        guidance = spec.default_guidance_scale if request.guidance_scale is None else request.guidance_scale
        if not 0.0 <= guidance <= MAX_GUIDANCE:
            raise InvalidArgument(f"must be in [0, {MAX_GUIDANCE:g}], got {guidance}", field="guidance_scale")
        seed = secrets.randbelow(2**31) if request.seed is None else request.seed
        if not 0 <= seed <= MAX_SEED:
            raise InvalidArgument(f"must be in [0, 2^63), got {seed}", field="seed")
        if request.format not in FORMATS:
            raise InvalidArgument(f"unknown format {request.format!r}", field="format")
        job = PaintJob(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance,
            seed=seed,
            story_id=request.story_id,
        )
        return painter, job

    async def render(self, request: RenderRequest) -> RenderResult:
        painter, job = self.plan(request)
        start = time.perf_counter()
        painting = await painter.paint(job)
        return self._result(painting, job, request.format, start)

    async def render_stream(self, request: RenderRequest) -> AsyncIterator[Progress | RenderResult]:
        painter, job = self.plan(request)
        start = time.perf_counter()
        async with contextlib.aclosing(painter.paint_stream(job)) as events:
            async for event in events:
                yield (
                    self._result(event, job, request.format, start) if isinstance(event, Painting) else event
                )

    def _result(self, painting: Painting, job: PaintJob, fmt: str, start: float) -> RenderResult:
        data = encode(painting, fmt, job.seed)
        width, height = painting.image.size
        return RenderResult(
            data=data,
            format=fmt,
            width=width,
            height=height,
            seed=job.seed,
            painting=painting,
            seconds=time.perf_counter() - start,
        )

    async def statuses(self) -> list[PainterStatus]:
        out = []
        for name, painter in self.painters.items():
            ready, detail = await painter.ready()
            out.append(
                PainterStatus(name=name, ref=painter.ref, spec=painter.spec, ready=ready, detail=detail)
            )
        return out

    async def ready(self) -> tuple[bool, str]:
        """The service is ready while its default painter is."""
        ready, detail = await self.painters[self.default].ready()
        return ready, "" if ready else f"default painter {self.default!r}: {detail}"

    async def start(self) -> None:
        for painter in self.painters.values():
            await painter.start()

    async def close(self) -> None:
        for painter in self.painters.values():
            await painter.close()
