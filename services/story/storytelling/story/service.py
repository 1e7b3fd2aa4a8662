"""The story service: settings, collaborators and lifecycle for the shared runtime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Self

import grpc
from pydantic import Field
from storytelling.api.pools import PoolRegistry, builtin_pools, load_pool
from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.llm import ChatEngine, EngineSpec, build_engine
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.service import Service
from storytelling.story.core import Limits, Storyteller
from storytelling.story.prompts import Mode
from storytelling.story.servicer import StoryServicer
from storytelling.v1 import story_pb2, story_pb2_grpc


class StorySettings(ServiceSettings):
    model_config = ServiceSettings.env("STORY")

    port: int = Field(DEFAULT_PORTS["story"].grpc, ge=0, le=65535)
    metrics_port: int = Field(DEFAULT_PORTS["story"].metrics, ge=0, le=65535)
    engines: dict[str, EngineSpec] = Field(
        default_factory=lambda: {"embedded": EngineSpec(kind="embedded")},
        description='Engines by name, as JSON: {"vllm": {"kind": "openai", "base_url": '
        '"http://127.0.0.1:8000/v1", "model": "smollm2-135m"}}. Default: SmolLM2-135M embedded.',
    )
    default_engine: str = Field("embedded", description="Engine used when a request names none.")
    default_mode: Mode = Field(Mode.COR_GUIDED, description="Prompting mode used when a request names none.")
    engine_modes: dict[str, Mode] = Field(
        default_factory=dict,
        description='Prompting mode of requests that name none, per engine, as JSON: {"mini": "short"} '
        "for a Mini-Storyteller trained on the short prompt. Engines not listed: default_mode.",
    )
    pool_files: list[Path] = Field(
        default_factory=list,
        description='Extra pools (CSV img_id,story or JSONL), named after the file: ["/data/clinic.csv"].',
    )
    default_pool: str = Field("storytelling_v1", description="Pool used when a request names none.")
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(320, ge=16, le=4096)
    num_exemplars: int = Field(3, ge=1, le=8)
    max_attempts: int = Field(3, ge=0, le=10, description="Regenerations after a rejected output.")
    accept_salvaged: bool = Field(
        True,
        description="When attempts run out, return the first salvageable output (multi-moment, dialogue, "
        "or truncated cut to full sentences), recording why; else fail with FAILED_PRECONDITION.",
    )
    accept_cut: bool = Field(
        False,
        description="Return a truncated output at once when its cut at the last complete sentence passes "
        "every check (labelled salvaged), instead of regenerating: for small models that never stop.",
    )
    max_stories: int = Field(256, ge=1, description="Largest WriteStories count.")
    concurrency: int = Field(8, ge=1, le=256, description="Stories generated at once per WriteStories.")


class StoryService(Service):
    name = "story"

    def __init__(self, settings: StorySettings, storyteller: Storyteller) -> None:
        self.settings = settings
        self.storyteller = storyteller

    @classmethod
    def from_settings(cls, settings: StorySettings) -> Self:
        # httpx logs every engine call and readiness poll at INFO, drowning the service's own logs.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        engines: dict[str, ChatEngine] = {name: build_engine(spec) for name, spec in settings.engines.items()}
        pools = PoolRegistry(
            [*builtin_pools(), *(load_pool(path) for path in settings.pool_files)],
            default=settings.default_pool,
        )
        if pools.get("") is None:
            raise ValueError(f"default pool {settings.default_pool!r} is not among {pools.names()}")
        limits = Limits(
            mode=settings.default_mode,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            num_exemplars=settings.num_exemplars,
            max_attempts=settings.max_attempts,
            max_stories=settings.max_stories,
            concurrency=settings.concurrency,
            accept_salvaged=settings.accept_salvaged,
            accept_cut=settings.accept_cut,
        )
        storyteller = Storyteller(
            engines,
            pools,
            default_engine=settings.default_engine,
            limits=limits,
            engine_modes=settings.engine_modes,
        )
        return cls(settings, storyteller)

    def register(self, server: grpc.aio.Server) -> list[str]:
        story_pb2_grpc.add_StoryServiceServicer_to_server(StoryServicer(self.storyteller), server)
        return [story_pb2.DESCRIPTOR.services_by_name["StoryService"].full_name]

    async def start(self) -> None:
        for engine in self.storyteller.engines.values():
            await engine.start()

    async def ready(self) -> tuple[bool, str]:
        """Ready while the default engine is: a story service without its engine can do no useful work."""
        return await self.storyteller.engines[self.storyteller.default_engine].ready()

    async def stop(self) -> None:
        for engine in self.storyteller.engines.values():
            await engine.aclose()
