"""StoryService through the real runtime (in-process aio server, full handler chain) on a scripted engine."""

from __future__ import annotations

import grpc
import pytest

from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.testing import running_service
from storytelling.story.core import Limits, Storyteller
from storytelling.api.pools import PoolRegistry, builtin_pools
from storytelling.story.service import StoryService, StorySettings
from storytelling.v1 import common_pb2, story_pb2, story_pb2_grpc
from tests.story.scripted import SCENE, ScriptedEngine

SETTINGS = ServiceSettings(port=0, metrics_port=0, ready_poll_s=0.05)


def service(engine: ScriptedEngine | None = None, concurrency: int = 8) -> StoryService:
    storyteller = Storyteller(
        {"scripted": engine or ScriptedEngine()},
        PoolRegistry(builtin_pools()),
        default_engine="scripted",
        limits=Limits(concurrency=concurrency, max_stories=64),
    )
    return StoryService(StorySettings(), storyteller)


async def test_write_story_returns_the_story_and_provenance():
    async with running_service(service(), SETTINGS) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        options = story_pb2.StoryRequestOptions(
            mode=common_pb2.STORY_MODE_COR_GUIDED,
            num_exemplars=2,
            sampling=common_pb2.SamplingParams(top_p=0.9),
        )
        reply = await stub.WriteStory(story_pb2.WriteStoryRequest(options=options, seed=3, story_id="mine"))
    story = reply.story
    assert (story.id, story.text) == ("mine", SCENE)
    p = story.provenance
    assert p.mode == common_pb2.STORY_MODE_COR_GUIDED and p.prompt_version == "cor-guided/1" and p.seed == 3
    assert [e.pool for e in p.exemplars] == ["storytelling_v1"] * 2
    assert p.engine.kind == "scripted" and p.sampling.top_p == pytest.approx(0.9)
    assert p.sampling.HasField("seed") and p.sampling.max_tokens == 320
    assert p.created_at.seconds > 0 and p.prompt_tokens == 100


async def test_write_stories_streams_every_index_with_bounded_concurrency():
    engine = ScriptedEngine(delay_s=0.05)
    async with running_service(service(engine, concurrency=4), SETTINGS) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        request = story_pb2.WriteStoriesRequest(
            options=story_pb2.StoryRequestOptions(mode=common_pb2.STORY_MODE_NAIVE), count=12, seed=1
        )
        replies = [reply async for reply in stub.WriteStories(request)]
    assert sorted(r.index for r in replies) == list(range(12))
    assert all(r.story.provenance.prompt_version == "naive/1" for r in replies)
    assert len({r.story.provenance.seed for r in replies}) == 12
    assert engine.peak_in_flight == 4


async def test_list_pools_modes_and_engines():
    async with running_service(service(), SETTINGS) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        pools = await stub.ListPools(story_pb2.ListPoolsRequest())
        modes = await stub.ListModes(story_pb2.ListModesRequest())
        engines = await stub.ListEngines(story_pb2.ListEnginesRequest())
    (pool,) = pools.pools
    assert pools.default_pool == "storytelling_v1" == pool.name
    assert pool.size == sum(pool.splits.values()) and set(pool.splits) == {"train", "test"}
    assert set(pool.dimension_counts) == {
        n for n in common_pb2.Dimension.keys() if n != "DIMENSION_UNSPECIFIED"
    }
    assert "not CogBench" in pool.source
    assert {(m.mode, m.prompt_version) for m in modes.modes} == {
        (common_pb2.STORY_MODE_NAIVE, "naive/1"),
        (common_pb2.STORY_MODE_COR_GUIDED, "cor-guided/1"),
        (common_pb2.STORY_MODE_SHORT, "short/1"),
    }
    assert engines.default_engine == "scripted"
    assert [(e.name, e.ready, e.ref.kind) for e in engines.engines] == [("scripted", True, "scripted")]


def _options(**fields) -> story_pb2.StoryRequestOptions:
    return story_pb2.StoryRequestOptions(**fields)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (story_pb2.WriteStoryRequest(options=_options(mode=9)), "options.mode"),
        (story_pb2.WriteStoryRequest(options=_options(pool="cogbench")), "options.pool"),
        (story_pb2.WriteStoryRequest(options=_options(num_exemplars=500)), "options.num_exemplars"),
        (
            story_pb2.WriteStoryRequest(
                options=_options(sampling=common_pb2.SamplingParams(temperature=2.5))
            ),
            "options.sampling.temperature",
        ),
        (
            story_pb2.WriteStoryRequest(
                options=_options(sampling=common_pb2.SamplingParams(max_tokens=4097))
            ),
            "options.sampling.max_tokens",
        ),
        (
            story_pb2.WriteStoryRequest(options=_options(inline_pool=story_pb2.InlinePool(name="x"))),
            "options.inline_pool.content",
        ),
        (
            story_pb2.WriteStoryRequest(
                options=_options(
                    inline_pool=story_pb2.InlinePool(name="x", content=b'{"id": "a", "story": "s"}\n{oops}\n')
                )
            ),
            "options.inline_pool.content",
        ),
    ],
)
async def test_bad_requests_are_invalid_argument_naming_the_field(request_, field):
    engine = ScriptedEngine()
    async with running_service(service(engine), SETTINGS) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.WriteStory(request_)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith(f"{field}: "), error.value.details()
        stream = stub.WriteStories(story_pb2.WriteStoriesRequest(options=request_.options, count=2))
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            [reply async for reply in stream]
        assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert streamed.value.details().startswith(f"{field}: ")
        assert (await stub.ListModes(story_pb2.ListModesRequest())).modes  # still serving
    assert engine.calls == []


async def test_count_out_of_range_and_exhausted_attempts():
    engine = ScriptedEngine([("", "stop")])
    async with running_service(service(engine), SETTINGS) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            [r async for r in stub.WriteStories(story_pb2.WriteStoriesRequest(count=65))]
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("count: must be in [1, 64]")
        with pytest.raises(grpc.aio.AioRpcError) as exhausted:
            await stub.WriteStory(story_pb2.WriteStoryRequest(options=_options(max_attempts=1)))
        assert exhausted.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "in 2 attempts (empty, empty)" in exhausted.value.details()
