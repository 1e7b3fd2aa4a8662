"""One logical vLLM base URL in front of real vLLM CPU servers: chats spread over every ready replica, a
stopped replica drops out, a started one is picked up.

The replicas are the session's vLLM server and vLLM servers started here (CPU build, SmolLM2-135M; about
3 GB each, so at most two run at once besides the session's). Their endpoints come from EndpointSlices that
`FakeApiServer` serves to the real `kubernetes` client: no API server can run here, so the test plays the
EndpointSlice controller.
"""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from storytelling.llm import ChatMessage, SamplingParams
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.llm.smollm2 import materialize
from storytelling.runtime.endpoints import EndpointWatch, Target
from storytelling.stack.vllm import VLLMServer, start_vllm

from tests.cluster.apiserver import FakeApiServer, endpoint_slice, fake_api_server
from tests.engines.vllm import SERVED_MODEL

pytestmark = pytest.mark.slow

ASK = [ChatMessage("user", "Name one fruit.")]


def finished(server: VLLMServer) -> int:
    """Requests this replica finished, from its own Prometheus metrics."""
    with urllib.request.urlopen(f"http://{server.host}:{server.port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return sum(
        int(float(line.rsplit(" ", 1)[1])) for line in lines if line.startswith("vllm:request_success_total{")
    )


def publish(api: FakeApiServer, replicas: list[VLLMServer]) -> None:
    for server in replicas:
        ready = server.process.poll() is None
        api.put("default", "endpointslices",
                endpoint_slice("vllm", f"vllm-{server.port}", [server.host], server.port, ready=ready,
                               port_name="http"))  # fmt: skip


async def chats(engine: OpenAIChatEngine, count: int) -> None:
    await asyncio.gather(*(engine.chat(ASK, SamplingParams(max_tokens=4, seed=n)) for n in range(count)))


async def settled(counts, expected_total: int, timeout_s: float = 10.0) -> list[int]:
    """Per-replica counts once their sum reaches `expected_total` (metrics follow requests closely)."""
    async with asyncio.timeout(timeout_s):
        while sum(values := counts()) < expected_total:
            await asyncio.sleep(0.2)
    return values


async def test_chats_spread_over_vllm_replicas_that_come_and_go(vllm_server: VLLMServer, tmp_path):
    first = vllm_server
    second: VLLMServer | None = None
    try:
        second = await asyncio.to_thread(
            start_vllm, materialize(), SERVED_MODEL, log_path=tmp_path / "second.log"
        )
        counts = {first.port: finished(first), second.port: 0}

        def served(server: VLLMServer) -> int:
            return finished(server) - counts[server.port]

        with fake_api_server() as api:
            publish(api, [first])  # the second replica is still loading: not listed yet
            watch = EndpointWatch(Target.parse("kubernetes:///vllm:http"), kubernetes_client=api.client())
            engine = OpenAIChatEngine(
                "http://vllm:8000/v1", SERVED_MODEL, max_concurrency=2, discovery="kubernetes", watch=watch
            )
            try:
                await engine.start()
                assert await engine.ready() == (True, "")
                await chats(engine, 4)
                assert await settled(lambda: [served(first)], 4) == [4]
                assert served(second) == 0

                # The second replica becomes ready: it is picked up, and chats spread over both.
                publish(api, [first, second])
                async with asyncio.timeout(10):
                    while len(engine.pool.replicas) != 2:
                        await asyncio.sleep(0.05)
                await chats(engine, 8)
                a, b = await settled(lambda: [served(first) - 4, served(second)], 8)
                assert a >= 2 and b >= 2, (a, b)

                # It stops: calls that find it gone are retried on the other at once, none fails.
                second.stop()
                before = served(first)
                await chats(engine, 4)
                assert await settled(lambda: [served(first) - before], 4) == [4]
                publish(api, [first, second])
                async with asyncio.timeout(10):
                    while len(engine.pool.replicas) != 1:
                        await asyncio.sleep(0.05)
                assert await engine.ready() == (True, "")
            finally:
                await engine.aclose()
    finally:
        if second is not None:
            second.stop()
