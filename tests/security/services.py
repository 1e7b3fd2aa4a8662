"""The four services in one event loop with the full runtime, TLS and token authentication on, the
orchestrator calling the others over TLS with its own service token (what a cluster runs)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from storytelling.api.credentials import channel_credentials
from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.service import EvaluationService
from storytelling.orchestrator.service import PipelineService
from storytelling.orchestrator.settings import OrchestratorSettings
from storytelling.render.service import RenderService
from storytelling.render.settings import RenderSettings
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.testing import running_service
from storytelling.story.core import Limits, Storyteller
from storytelling.api.pools import PoolRegistry, builtin_pools
from storytelling.story.service import StoryService, StorySettings
from tests.security import tokens
from tests.security.pki import Authority
from tests.security.tokens import Token
from tests.story.scripted import ScriptedEngine

TOKENS = {
    "admin": ("read", "write", "admin"),
    "reader": ("read",),
    "writer": ("write",),
    "alice": ("read", "write"),
    "bob": ("read", "write"),
    "carol": ("read", "write"),
    "orchestrator": ("read", "write"),
}


@dataclass
class Secured:
    ca: Authority
    tokens: dict[str, Token]
    credentials: grpc.ChannelCredentials
    addresses: dict[str, str] = field(default_factory=dict)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)


def common(directory: Path, ca: Authority, tokens_file: Path) -> dict:
    server = ca.issue("services", into=directory / "tls" / "services")
    return {
        "port": 0,
        "metrics_port": 0,
        "ready_poll_s": 0.05,
        "tls_cert_file": server.cert,
        "tls_key_file": server.key,
        "auth_tokens_file": tokens_file,
    }


@contextlib.asynccontextmanager
async def secured_services(
    directory: Path, embedder, story_delay_s: float = 0.0, **orchestrator: object
) -> AsyncIterator[Secured]:
    """`story_delay_s` keeps jobs running (each story takes that long); `orchestrator` adds settings."""
    ca = Authority(directory / "ca")
    made = {name: tokens.make(name, *scopes) for name, scopes in TOKENS.items()}
    settings = common(directory, ca, tokens.write(directory / "tokens.json", *made.values()))
    (service_token := directory / "orchestrator.token").write_text(made["orchestrator"].value)
    secured = Secured(ca, made, channel_credentials(ca.cert))
    storyteller = Storyteller(
        {"scripted": ScriptedEngine(delay_s=story_delay_s)},
        PoolRegistry(builtin_pools()),
        default_engine="scripted",
        limits=Limits(concurrency=8, max_stories=64),
    )
    stages = {
        "story": (StoryService(StorySettings(), storyteller), ServiceSettings(**settings)),
        "render": (RenderService.from_settings(RenderSettings()), ServiceSettings(**settings)),
        "evaluation": (EvaluationService(Evaluation(embedder, None)), ServiceSettings(**settings)),
    }
    async with contextlib.AsyncExitStack() as stack:
        for name, (service, service_settings) in stages.items():
            channel = await stack.enter_async_context(
                running_service(service, service_settings, credentials=secured.credentials)
            )
            secured.channels[name], secured.addresses[name] = channel, channel.server.address
        orchestrator_settings = OrchestratorSettings(
            **settings,
            data_dir=directory / "data",
            story_address=secured.addresses["story"],
            render_address=secured.addresses["render"],
            evaluation_address=secured.addresses["evaluation"],
            downstream_tls_ca_file=ca.cert,
            downstream_token_file=service_token,
            initial_backoff_s=0.01,
            max_backoff_s=0.05,
            **orchestrator,
        )
        pipeline = PipelineService.from_settings(orchestrator_settings)
        channel = await stack.enter_async_context(
            running_service(pipeline, orchestrator_settings, credentials=secured.credentials)
        )
        secured.channels["orchestrator"], secured.addresses["orchestrator"] = channel, channel.server.address
        yield secured
