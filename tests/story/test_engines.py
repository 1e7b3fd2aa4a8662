"""StoryService on real engines (slow): vLLM's OpenAI server and the embedded SmolLM2-135M.

SmolLM2-135M is a weak writer: these tests assert plumbing, provenance, reproducibility and recovery,
and that every output either passed the checks or was salvaged with the reason recorded.
"""

from __future__ import annotations

import grpc
import pytest

from storytelling.llm import EngineSpec
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.process import free_port
from storytelling.runtime.testing import running_service, wait_serving
from storytelling.story.service import StoryService, StorySettings
from storytelling.v1 import common_pb2, story_pb2, story_pb2_grpc
from tests.engines.vllm import SERVED_MODEL
from tests.story.relay import relay

pytestmark = pytest.mark.slow

RUNTIME = ServiceSettings(port=0, metrics_port=0, ready_poll_s=0.1)
REASONS = {"empty", "truncated", "too_short", "multi_moment", "dialogue"}


def openai_service(base_url: str) -> StoryService:
    spec = EngineSpec(kind="openai", base_url=base_url, model=SERVED_MODEL, max_retries=1)
    return StoryService.from_settings(StorySettings(engines={"vllm": spec}, default_engine="vllm"))


def options(
    mode: int = common_pb2.STORY_MODE_COR_GUIDED, max_tokens: int = 200
) -> story_pb2.StoryRequestOptions:
    return story_pb2.StoryRequestOptions(
        mode=mode, sampling=common_pb2.SamplingParams(max_tokens=max_tokens), max_attempts=3
    )


def assert_accounted_for(story: common_pb2.Story) -> None:
    assert len(story.text.split()) >= 20
    assert {r.reason for r in story.provenance.rejected} <= REASONS
    salvaged = [r for r in story.provenance.rejected if r.detail.startswith("returned anyway")]
    assert len(salvaged) <= 1 and story.provenance.completion_tokens > 0


async def test_write_story_and_stream_on_vllm(vllm_server):
    async with running_service(openai_service(vllm_server.base_url), RUNTIME) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        one = (
            await stub.WriteStory(story_pb2.WriteStoryRequest(options=options(), seed=11), timeout=300)
        ).story
        assert_accounted_for(one)
        p = one.provenance
        assert (p.engine.kind, p.engine.endpoint, p.engine.model) == (
            "openai",
            vllm_server.base_url,
            SERVED_MODEL,
        )
        assert len(p.exemplars) == 3 and p.prompt_tokens > 500  # the dimensions guide and three exemplars
        request = story_pb2.WriteStoriesRequest(
            options=options(common_pb2.STORY_MODE_NAIVE, 160), count=4, seed=2
        )
        replies = [r async for r in stub.WriteStories(request, timeout=300)]
        assert sorted(r.index for r in replies) == [0, 1, 2, 3]
        for reply in replies:
            assert_accounted_for(reply.story)
        engines = await stub.ListEngines(story_pb2.ListEnginesRequest())
        assert [(e.name, e.ready) for e in engines.engines] == [("vllm", True)]


async def test_engine_down_is_unavailable_and_the_service_recovers(vllm_server):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/v1"
    async with running_service(openai_service(endpoint), RUNTIME, wait_ready=False) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.WriteStory(story_pb2.WriteStoryRequest(options=options(), seed=1), timeout=60)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"engine {endpoint}/chat/completions is unreachable" in error.value.details()
        (engine,) = (await stub.ListEngines(story_pb2.ListEnginesRequest())).engines
        assert not engine.ready and endpoint in engine.detail
        assert not channel.server.readiness.ready
        async with relay(port, "127.0.0.1", vllm_server.port):
            await wait_serving(channel, timeout=30)
            reply = await stub.WriteStory(story_pb2.WriteStoryRequest(options=options(), seed=1), timeout=300)
            assert_accounted_for(reply.story)
            assert reply.story.provenance.engine.endpoint == endpoint


async def test_embedded_engine_is_reproducible_with_a_seed():
    service = StoryService.from_settings(StorySettings())  # default: embedded SmolLM2-135M
    async with running_service(service, RUNTIME, ready_timeout=300) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        request = story_pb2.WriteStoryRequest(options=options(max_tokens=120), seed=2024)
        first = (await stub.WriteStory(request, timeout=600)).story
        again = (await stub.WriteStory(request, timeout=600)).story
    assert_accounted_for(first)
    assert first.text == again.text and first.id == again.id
    assert [e.id for e in first.provenance.exemplars] == [e.id for e in again.provenance.exemplars]
    assert first.provenance.rejected == again.provenance.rejected
    assert (
        first.provenance.engine.kind == "embedded"
        and first.provenance.engine.model == "SmolLM2-135M-Instruct"
    )
