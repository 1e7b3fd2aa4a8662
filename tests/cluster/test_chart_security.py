"""The chart's TLS and token settings, run: the orchestrator reaches a story service over mutual TLS with a
bearer token, through the balanced channel, configured exactly as the chart configures them.

The Secrets the chart mounts are stood in for by files made at test time (certificates from a test CA
naming the Services as cert-manager would, a token file), at the paths the chart's environment names. The
story service is a real one served in process; its address comes from an EndpointSlice served to the real
`kubernetes` client (no API server runs here). Only the port differs from the chart's: the test's server
listens on a free one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from storytelling.orchestrator.clients import Connection, StoryClient
from storytelling.orchestrator.settings import OrchestratorSettings
from storytelling.runtime import errors
from storytelling.runtime.calls import CallerCredentials
from storytelling.runtime.endpoints import EndpointWatch, Target
from storytelling.runtime.process import free_port
from storytelling.runtime.testing import running_service
from storytelling.story.service import StorySettings, StoryService
from storytelling.v1 import pipeline_pb2

from tests.cluster.apiserver import endpoint_slice, fake_api_server
from tests.cluster.chart import NAMESPACE, PREFIX, env, render, workloads
from tests.security import tokens
from tests.security.pki import Authority

SECURED = {
    "tls": {
        "enabled": True,
        "secretName": "api-tls",
        "internal": {
            "enabled": True,
            "secrets": {c: f"{c}-tls" for c in ("orchestrator", "story", "render", "evaluation")},
        },
    },
    "auth": {
        "enabled": True,
        "tokensSecret": "api-tokens",
        "services": {
            "enabled": True,
            "tokensSecret": "service-tokens",
            "orchestratorToken": {"name": "orchestrator-token", "key": "token"},
        },
    },
}


def mounted(variables: dict[str, str], root: Path) -> dict[str, str]:
    """The environment with the Secret mounts moved under `root`."""
    return {k: v.replace("/etc/storytelling", str(root)) for k, v in variables.items()}


@pytest.fixture
def secrets(tmp_path: Path) -> tuple[Path, Path, tokens.Token]:
    """What the chart's Secrets hold, laid out as the kubelet mounts them: the story pod's and the
    orchestrator pod's /etc/storytelling."""
    ca = Authority(tmp_path / "ca")
    story_root, orchestrator_root = tmp_path / "story", tmp_path / "orchestrator"
    # kubernetes.io/tls Secrets with ca.crt, as cert-manager writes them: tls.crt, tls.key, ca.crt.
    ca.issue("story", dns=(f"{PREFIX}-story.{NAMESPACE}.svc",), ips=(), into=story_root / "tls" / "tls")
    (story_root / "tls" / "ca.crt").write_bytes(ca.cert.read_bytes())
    client = orchestrator_root / "client-tls"
    ca.issue("orchestrator", dns=(f"{PREFIX}-orchestrator.{NAMESPACE}.svc",), ips=(), into=client / "tls")
    (client / "ca.crt").write_bytes(ca.cert.read_bytes())
    token = tokens.make("orchestrator", "read", "write")
    tokens.write(story_root / "tokens" / "tokens.json", token)
    (orchestrator_root / "service-token").mkdir(parents=True)
    (orchestrator_root / "service-token" / "token").write_text(token.value)
    return story_root, orchestrator_root, token


def story_settings(root: Path, monkeypatch) -> StorySettings:
    variables = mounted(env(workloads(render(SECURED))["story"]), root)
    with monkeypatch.context() as patch:
        for key, value in variables.items():
            if key.startswith("STORYTELLING_STORY_"):
                patch.setenv(key, value)
        settings = StorySettings.load([])
    return settings.model_copy(update={"health_port": 0, "metrics_port": 0})


def orchestrator_settings(root: Path, story_port: int, monkeypatch) -> OrchestratorSettings:
    variables = mounted(env(workloads(render(SECURED))["orchestrator"]), root)
    variables["STORYTELLING_ORCHESTRATOR_STORY_ADDRESS"] = variables[
        "STORYTELLING_ORCHESTRATOR_STORY_ADDRESS"
    ].replace(":50051", f":{story_port}")
    with monkeypatch.context() as patch:
        for key, value in variables.items():
            if key.startswith("STORYTELLING_ORCHESTRATOR_"):
                patch.setenv(key, value)
        return OrchestratorSettings.load([])


async def list_engines(
    settings: OrchestratorSettings, story_port: int, credentials: CallerCredentials
) -> None:
    with fake_api_server() as api:
        api.put(
            NAMESPACE,
            "endpointslices",
            endpoint_slice(f"{PREFIX}-story", "story-a", ["127.0.0.1"], story_port),
        )
        target = Target.parse(settings.story_address)
        watch = EndpointWatch(target, kubernetes_client=api.client())
        connection = Connection(settings.story_address, credentials=credentials, watch=watch)
        try:
            await connection.start()  # as the orchestrator does before it serves
            await StoryClient(connection).validate(pipeline_pb2.JobSpec(items=1))
        finally:
            await connection.close()


async def test_the_orchestrator_reaches_a_secured_story_service_as_the_chart_configures_them(
    secrets, monkeypatch
):
    story_root, orchestrator_root, _ = secrets
    story = story_settings(story_root, monkeypatch)
    assert story.tls and story.tls_client_identities == [f"{PREFIX}-orchestrator.{NAMESPACE}.svc"]
    port = free_port()
    async with running_service(
        StoryService.from_settings(story), story.model_copy(update={"port": port}), wait_ready=False
    ) as channel:
        port = channel.server.port
        settings = orchestrator_settings(orchestrator_root, port, monkeypatch)
        assert settings.story_address == f"kubernetes:///{PREFIX}-story.{NAMESPACE}:{port}"
        await list_engines(settings, port, CallerCredentials(settings.downstream()))


async def test_without_the_orchestrators_certificate_or_token_the_call_is_refused(secrets, monkeypatch):
    story_root, orchestrator_root, _ = secrets
    story = story_settings(story_root, monkeypatch)
    async with running_service(StoryService.from_settings(story), story, wait_ready=False) as channel:
        port = channel.server.port
        settings = orchestrator_settings(orchestrator_root, port, monkeypatch)
        without_token = dataclasses.replace(settings.downstream(), token_file=None)
        with pytest.raises(errors.ServiceError, match="UNAUTHENTICATED"):
            await list_engines(settings, port, CallerCredentials(without_token))
        without_certificate = dataclasses.replace(settings.downstream(), cert_file=None, key_file=None)
        with pytest.raises(errors.ServiceError, match="UNAVAILABLE"):
            await list_engines(settings, port, CallerCredentials(without_certificate))
