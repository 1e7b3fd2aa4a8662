"""The render service: the painters named in the settings, behind RenderCore, on the shared runtime."""

from __future__ import annotations

import grpc
from storytelling.render.core import RenderCore
from storytelling.render.diffusion import EngineConfig
from storytelling.render.painters.base import Painter, PainterSpec
from storytelling.render.painters.embedded import EmbeddedPainter
from storytelling.render.painters.openai import OpenAIImagePainter
from storytelling.render.painters.sketch import SketchPainter
from storytelling.render.painters.triton import TritonPainter
from storytelling.render.servicer import RenderServicer
from storytelling.render.settings import RenderSettings
from storytelling.runtime.service import Service
from storytelling.v1 import render_pb2, render_pb2_grpc


def build_painters(settings: RenderSettings) -> dict[str, Painter]:
    """The sketch fallback always; each other painter where its settings configure it."""
    bounds = {"max_side": settings.max_side, "max_steps": settings.max_steps}
    painters: dict[str, Painter] = {
        "sketch": SketchPainter(PainterSpec(default_steps=0, default_guidance_scale=0.0, **bounds))
    }
    if settings.triton_url:
        painters["triton"] = TritonPainter(
            settings.triton_url,
            settings.triton_model,
            settings.triton_stream_model,
            PainterSpec(supports_progress=bool(settings.triton_stream_model), **bounds),
        )
    if settings.openai_base_url:
        painters["openai"] = OpenAIImagePainter(
            settings.openai_base_url,
            settings.openai_model,
            settings.openai_api_key.get_secret_value(),
            settings.openai_timeout_s,
        )
    if settings.embedded_model:
        config = EngineConfig(
            model=settings.embedded_model,
            steps=settings.embedded_steps,
            guidance_scale=settings.embedded_guidance_scale,
            width=settings.embedded_size,
            height=settings.embedded_size,
            dtype=settings.embedded_dtype,
            device=settings.embedded_device,
        )
        painters["embedded"] = EmbeddedPainter(config, **bounds)
    return painters


class RenderService(Service):
    name = "render"

    def __init__(self, settings: RenderSettings, core: RenderCore) -> None:
        self.settings = settings
        self.core = core

    @classmethod
    def from_settings(cls, settings: RenderSettings) -> RenderService:
        return cls(
            settings,
            RenderCore(build_painters(settings), settings.default_painter, settings.max_prompt_chars),
        )

    def register(self, server: grpc.aio.Server) -> list[str]:
        render_pb2_grpc.add_RenderServiceServicer_to_server(RenderServicer(self.core), server)
        return [render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name]

    async def start(self) -> None:
        await self.core.start()

    async def ready(self) -> tuple[bool, str]:
        return await self.core.ready()

    async def stop(self) -> None:
        await self.core.close()
