"""EndpointPool: which replica of an OpenAI-compatible engine takes each request."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from storytelling.llm.pool import EndpointPool
from storytelling.runtime.endpoints import Endpoint, EndpointWatch, Target


def pool_of(*hosts: str, per_replica: int = 2) -> tuple[EndpointPool, EndpointWatch]:
    watch = EndpointWatch(Target("kubernetes", "vllm", 8000))
    pool = EndpointPool("http://vllm:8000/v1", "kubernetes", per_replica=per_replica, watch=watch)
    watch._publish(tuple(Endpoint(h, 8000) for h in hosts))  # what the EndpointSlice watch reports
    return pool, watch


async def test_without_discovery_the_base_url_is_the_only_replica():
    pool = EndpointPool("http://engine:8000/v1/")
    async with pool.lease() as replica:
        assert replica.url == "http://engine:8000/v1"


async def test_requests_go_to_the_least_busy_replica_and_rotate_between_equals():
    pool, _ = pool_of("10.0.0.1", "10.0.0.2", per_replica=4)
    async with contextlib.AsyncExitStack() as held:
        first = await held.enter_async_context(pool.lease())
        second = await held.enter_async_context(pool.lease())
        assert {first.url, second.url} == {"http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"}
        third = await held.enter_async_context(pool.lease())
        async with pool.lease() as fourth:  # both busy with 1 or 2: the one with 1 gets it
            assert fourth is not third
    assert [r.served for r in pool.replicas] == [2, 2]


async def test_each_replica_is_bounded_and_a_full_pool_waits():
    pool, watch = pool_of("10.0.0.1", per_replica=2)
    async with pool.lease(), pool.lease():
        waiting = asyncio.ensure_future(pool.lease().__aenter__())
        await asyncio.sleep(0.05)
        assert not waiting.done(), "a third request must wait for the one replica's capacity"
        watch._publish((Endpoint("10.0.0.1", 8000), Endpoint("10.0.0.2", 8000)))  # scaled out
        replica = await asyncio.wait_for(waiting, 2)
        assert replica.url == "http://10.0.0.2:8000/v1"


async def test_a_refusing_replica_sits_out_its_cooldown():
    pool, _ = pool_of("10.0.0.1", "10.0.0.2")
    pool.cooldown_s = 0.2
    async with pool.lease() as replica:
        pool.failed(replica)
        assert pool.others_available(replica)
    for _ in range(3):
        async with pool.lease() as other:
            assert other is not replica
    await asyncio.sleep(0.25)
    urls = set()
    for _ in range(2):
        async with pool.lease() as any_replica:
            urls.add(any_replica.url)
    assert len(urls) == 2


async def test_when_every_replica_is_down_requests_still_try_them():
    pool, _ = pool_of("10.0.0.1")
    async with pool.lease() as replica:
        pool.failed(replica)
    async with pool.lease() as again:
        assert again is replica


async def test_replicas_follow_discovery_and_keep_their_state():
    pool, watch = pool_of("10.0.0.1", "10.0.0.2")
    async with pool.lease():
        pass
    served = {r.url: r.served for r in pool.replicas}
    watch._publish((Endpoint("10.0.0.2", 8000), Endpoint("10.0.0.3", 8000)))
    urls = [r.url for r in pool.replicas]
    assert urls == ["http://10.0.0.2:8000/v1", "http://10.0.0.3:8000/v1"]
    assert pool.replicas[0].served == served["http://10.0.0.2:8000/v1"]
    watch._publish(())
    assert [r.url for r in pool.replicas] == ["http://vllm:8000/v1"], "no replica known: the Service name"


def test_discovery_needs_a_host():
    with pytest.raises(ValueError, match="no host"):
        EndpointPool("http:///v1", "dns")
