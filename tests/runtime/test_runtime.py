"""The shared runtime, in-process: health, reflection, errors, deadlines and metrics."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import generate_latest

from storytelling.runtime.testing import running_service
from storytelling.v1 import story_pb2, story_pb2_grpc
from tests.runtime.probe import ProbeService, ProbeSettings


def probe(**overrides) -> tuple[ProbeService, ProbeSettings]:
    settings = ProbeSettings(port=0, metrics_port=0, ready_poll_s=0.05, **overrides)
    return ProbeService(settings), settings


async def test_health_follows_engine_readiness():
    service, settings = probe(start_delay_s=0.5)
    async with running_service(service, settings, wait_ready=False) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        first = await health.Check(health_pb2.HealthCheckRequest())
        assert first.status == health_pb2.HealthCheckResponse.NOT_SERVING
        named = health_pb2.HealthCheckRequest(service="storytelling.v1.StoryService")
        for _ in range(100):
            if (await health.Check(named)).status == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.05)
        assert (await health.Check(named)).status == health_pb2.HealthCheckResponse.SERVING
        assert channel.server.readiness.ready


async def test_domain_error_maps_to_status_naming_the_field_and_service_stays_up():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        bad = story_pb2.WriteStoryRequest(options=story_pb2.StoryRequestOptions(num_exemplars=-1))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.WriteStory(bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "options.num_exemplars: must be >= 0"
        assert (await stub.ListModes(story_pb2.ListModesRequest())).modes[0].prompt_version == "probe/1"


async def test_streaming_errors_and_results():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        got = [r.index async for r in stub.WriteStories(story_pb2.WriteStoriesRequest(count=3))]
        assert got == [0, 1, 2]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.WriteStories(story_pb2.WriteStoriesRequest(count=0)):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("count: ")


async def test_unparseable_request_bytes_get_invalid_argument():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        raw = channel.unary_unary(
            "/storytelling.v1.StoryService/WriteStory",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\xff\xff\xff\xff")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("request: cannot parse the bytes as WriteStoryRequest")
        stub = story_pb2_grpc.StoryServiceStub(channel)
        assert (await stub.WriteStory(story_pb2.WriteStoryRequest(seed=1))).story.id == "probe"


async def test_unexpected_exception_is_internal_and_logged_not_fatal():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.WriteStory(story_pb2.WriteStoryRequest(seed=-1))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "probe asked to fail" in err.value.details()
        assert (await stub.WriteStory(story_pb2.WriteStoryRequest(seed=0))).story.id == "probe"


async def test_deadline_is_visible_to_core_code_and_enforced():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        reply = await stub.WriteStory(story_pb2.WriteStoryRequest(seed=0), timeout=5.0)
        left = json.loads(reply.story.text)["deadline_s"]
        assert 3.0 < left <= 5.1  # the server sees the caller's deadline, minus transit
        no_deadline = await stub.WriteStory(story_pb2.WriteStoryRequest(seed=0))
        assert json.loads(no_deadline.story.text)["deadline_s"] is None
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.WriteStory(story_pb2.WriteStoryRequest(seed=2000), timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_metrics_count_rpcs_by_method_and_code():
    service, settings = probe()
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        for _ in range(3):
            await stub.ListModes(story_pb2.ListModesRequest())
        options = story_pb2.StoryRequestOptions(num_exemplars=-1)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.WriteStory(story_pb2.WriteStoryRequest(options=options))
        story_service = 'grpc_service="storytelling.v1.StoryService"'
        bad = (
            f'grpc_server_handled_total{{grpc_code="INVALID_ARGUMENT",grpc_method="WriteStory",{story_service}}}'
            " 1.0"
        )
        for _ in range(50):  # the server records an aborted RPC just after the client sees its status
            text = generate_latest(channel.server.registry).decode()
            if bad in text:
                break
            await asyncio.sleep(0.01)
        ok = f'grpc_server_handled_total{{grpc_code="OK",grpc_method="ListModes",{story_service}}} 3.0'
        assert ok in text
        assert bad in text
        assert f'grpc_server_handling_seconds_count{{grpc_method="ListModes",{story_service}}} 3.0' in text
        assert "storytelling_service_ready 1.0" in text
