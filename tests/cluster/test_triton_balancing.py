"""One logical Triton target in front of real tritonserver replicas: renders spread over every ready
replica, a stopped replica drops out, a started one is picked up.

The replicas are real Triton processes (the nvidia-pytriton wheel, CPU, tiny random pipeline): the
session's shared server and two more started here. Their endpoints come from EndpointSlices that
`FakeApiServer` serves to the real `kubernetes` client: no API server can run here, so the test plays the
EndpointSlice controller (a replica is listed once ready, marked not ready when it stops). Each replica's
slice names its own number for the Service's `grpc` port, as pods with different container ports do.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest
from storytelling.render.painters.base import PaintJob
from storytelling.render.painters.triton import TritonPainter
from storytelling.runtime.endpoints import EndpointWatch, Target
from storytelling.stack.triton import TritonServer, prepare_repository, start

from tests.cluster.apiserver import FakeApiServer, endpoint_slice, fake_api_server
from tests.engines.triton import tiny_parameters

pytestmark = pytest.mark.slow


def successes(server: TritonServer) -> int:
    """Inferences this replica served, from its own statistics (exact; its metrics lag by seconds). The
    Python backend reports them after `execute` returns, so they can trail the replies by a moment."""
    with urllib.request.urlopen(f"{server.http_url}/v2/models/painter/stats", timeout=5) as reply:
        stats = json.load(reply)["model_stats"]
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats)


def job(n: int) -> PaintJob:
    return PaintJob(prompt=f"a boy on a tipping stool, take {n}", negative_prompt="", seed=n, steps=1,
                    guidance_scale=0.0, width=64, height=64, story_id=f"s-{n}")  # fmt: skip


def publish(api: FakeApiServer, replicas: list[TritonServer]) -> None:
    """The EndpointSlice controller's view: one slice per replica, ready while it runs."""
    for server in replicas:
        running = server.process.poll() is None
        api.put("default", "endpointslices",
                endpoint_slice("triton", f"triton-{server.grpc_port}", [server.host], server.grpc_port,
                               ready=running))  # fmt: skip


async def paint_many(painter: TritonPainter, first: int, count: int) -> None:
    await asyncio.gather(*(painter.paint(job(n)) for n in range(first, first + count)))


async def wait_for(condition, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


async def served_in_all(served, replicas: list[TritonServer], total: int) -> list[int]:
    """Each replica's count once they add up to `total`, the renders that succeeded; fails if they never
    do (a render went elsewhere, or twice)."""
    try:
        await wait_for(lambda: sum(served(server) for server in replicas) == total, timeout_s=10.0)
    except TimeoutError:
        raise AssertionError(f"replicas served {[served(s) for s in replicas]}, not {total} in all") from None
    return [served(server) for server in replicas]


@pytest.fixture(scope="module")
def repository(tiny_painter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("balanced-triton")
    return prepare_repository(root / "model_repository", tiny_parameters(tiny_painter), models=["painter"])


async def test_renders_spread_over_replicas_that_come_and_go(
    triton_painter: TritonServer, repository: Path, tmp_path: Path
):
    first = triton_painter
    second = await asyncio.to_thread(start, repository, ["painter"], tmp_path / "second")
    try:
        counts = {first.grpc_port: successes(first), second.grpc_port: 0}

        def served(server: TritonServer) -> int:
            return successes(server) - counts[server.grpc_port]

        with fake_api_server() as api:
            publish(api, [first])  # the second replica is still loading its model: not listed yet
            target = "kubernetes:///triton:grpc"
            watch = EndpointWatch(Target.parse(target), kubernetes_client=api.client())
            painter = TritonPainter(target, stream_model="", watch=watch)
            try:
                await painter.start()
                await paint_many(painter, 0, 4)
                assert await served_in_all(served, [first, second], 4) == [4, 0]

                # The second replica becomes ready: it is picked up, and renders spread over both.
                publish(api, [first, second])
                await wait_for(lambda: painter._clients.address.count(",") == 1)
                await paint_many(painter, 100, 8)
                on_first, on_second = await served_in_all(served, [first, second], 12)
                assert on_first - 4 >= 2 and on_second >= 2

                # It stops. gRPC skips it at once, before Kubernetes marks it not ready; none fails.
                before = served(first)
                second.stop()
                await paint_many(painter, 200, 4)
                assert await served_in_all(served, [first], before + 4) == [before + 4]
                publish(api, [first, second])
                await wait_for(lambda: "," not in painter._clients.address)
                await paint_many(painter, 300, 2)
                assert (await painter.ready())[0]
            finally:
                await painter.close()
    finally:
        second.stop()
