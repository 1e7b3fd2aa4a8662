"""In-process diffusers painter for a laptop: the same DiffusionEngine Triton runs, in a worker thread.

One pipeline behind a lock (pipelines are not thread-safe); progress crosses from the worker thread to
the event loop through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from PIL import Image
from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job, Output
from storytelling.render.painters.base import Painter, PainterRef, PainterSpec, Painting, PaintJob, Progress
from storytelling.runtime.checkpoints import RANDOM_NOTE
from storytelling.runtime.errors import Unavailable


class EmbeddedPainter(Painter):
    def __init__(self, config: EngineConfig, max_side: int = 1024, max_steps: int = 100) -> None:
        self.config = config
        self.spec = PainterSpec(
            default_width=config.width,
            default_height=config.height,
            default_steps=config.steps,
            default_guidance_scale=config.guidance_scale,
            max_side=max_side,
            max_steps=max_steps,
            supports_progress=True,
        )
        self.engine: DiffusionEngine | None = None
        self._failure = ""
        self._lock = asyncio.Lock()

    @property
    def ref(self) -> PainterRef:
        random = self.engine is not None and self.engine.random_weights
        model = self.engine.model_path if self.engine else self.config.model
        return PainterRef(
            kind="embedded", model=model, is_fallback=random, note=RANDOM_NOTE if random else ""
        )

    async def start(self) -> None:
        try:
            self.engine = await asyncio.to_thread(DiffusionEngine, self.config)
        except (OSError, ValueError) as exc:  # no weights at that path or hub id: report, do not crash
            self._failure = f"cannot load {self.config.model!r}: {exc}"

    async def ready(self) -> tuple[bool, str]:
        if self.engine is None:
            return False, self._failure or "loading"
        return True, ""

    async def close(self) -> None:
        self.engine = None

    async def paint(self, job: PaintJob) -> Painting:
        async with contextlib.aclosing(self.paint_stream(job)) as events:
            async for event in events:
                if isinstance(event, Painting):
                    return event
        raise AssertionError("paint_stream ended without a painting")

    async def paint_stream(self, job: PaintJob) -> AsyncIterator[Progress | Painting]:
        engine = self.engine
        if engine is None:
            raise Unavailable(f"embedded painter is not loaded: {self._failure or 'loading'}")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Progress | Output | BaseException] = asyncio.Queue()

        def on_step(_: list[int], step: int, total: int) -> None:
            loop.call_soon_threadsafe(events.put_nowait, Progress(step=step, total_steps=total))

        def work() -> None:
            try:
                [out] = engine.generate([_job(job)], on_step)
                loop.call_soon_threadsafe(events.put_nowait, out)
            except BaseException as exc:  # re-raised on the event loop
                loop.call_soon_threadsafe(events.put_nowait, exc)

        async with self._lock:
            task = asyncio.create_task(asyncio.to_thread(work))
            try:
                while True:
                    event = await events.get()
                    if isinstance(event, BaseException):
                        raise event
                    if isinstance(event, Output):
                        yield self._painting(event, job)
                        return
                    yield event
            finally:
                await task  # the pipeline cannot be interrupted mid-step; keep the lock until it stops

    def _painting(self, out: Output, job: PaintJob) -> Painting:
        meta = out.metadata
        return Painting(
            image=Image.fromarray(out.image, "RGB"),
            painter=self.ref,
            prompt=job.prompt,
            long_prompt_strategy=meta["strategy"],
            prompt_tokens=meta["prompt_tokens"],
            encoded_tokens=meta["encoded_tokens"],
            steps=meta["steps"],
            guidance_scale=meta["guidance_scale"],
        )


def _job(job: PaintJob) -> Job:
    return Job(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seed=job.seed,
        steps=job.steps,
        guidance_scale=job.guidance_scale,
        width=job.width,
        height=job.height,
    )
