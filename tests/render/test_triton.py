"""The render service against a real tritonserver (nvidia-pytriton wheel, CPU) serving the tiny random
pipeline through deploy/triton/model_repository. Images are noise: these tests check plumbing."""

import asyncio
import io

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from storytelling.render.core import RenderCore, RenderRequest
from storytelling.render.painters.sketch import SketchPainter
from storytelling.render.painters.triton import TritonPainter
from storytelling.render.service import RenderService
from storytelling.render.settings import RenderSettings
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded
from storytelling.runtime.testing import running_service, wait_serving
from storytelling.stack.triton import prepare_repository, start
from storytelling.v1 import render_pb2, render_pb2_grpc

from tests.engines.triton import tiny_parameters
from tests.render.stories import LONG, LONG_OTHER_ENDING, SHORT

pytestmark = pytest.mark.slow


def service_for(url: str, stream_model: str = "painter_stream") -> RenderService:
    painter = TritonPainter(url, stream_model=stream_model)
    core = RenderCore({"triton": painter, "sketch": SketchPainter()}, default="triton")
    return RenderService(RenderSettings(), core)


@pytest.fixture
async def stub(triton_painter):
    async with running_service(service_for(triton_painter.grpc_url)) as channel:
        yield render_pb2_grpc.RenderServiceStub(channel)


def pixels(reply) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(reply.image.data)))


async def test_ready_and_listed_with_the_models_defaults(stub):
    reply = await stub.ListPainters(render_pb2.ListPaintersRequest())
    triton_info = next(p for p in reply.painters if p.name == "triton")
    assert triton_info.ready and triton_info.supports_progress
    assert (triton_info.default_width, triton_info.default_steps) == (64, 2)  # read from config.pbtxt


async def test_unary_render_is_a_png_labelled_random(stub):
    reply = await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=5, story_id="s-1"))
    image = reply.image
    assert (image.width, image.height, image.steps) == (64, 64, 2)
    assert Image.open(io.BytesIO(image.data)).format == "PNG"
    assert image.painter.kind == "triton" and image.painter.model == "painter"
    assert image.painter.is_fallback and image.painter.note == "random weights: plumbing test only"


async def test_stream_reports_every_step_then_the_image(stub):
    events = [e async for e in stub.RenderStream(render_pb2.RenderRequest(prompt=SHORT, steps=4, seed=1))]
    assert [(e.progress.step, e.progress.total_steps) for e in events[:-1]] == [
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
    ]
    assert events[-1].result.image.steps == 4 and events[-1].result.image.data


async def test_cancelled_stream_stops_and_the_model_keeps_serving(stub, triton_painter):
    call = stub.RenderStream(render_pb2.RenderRequest(prompt=SHORT, steps=100, seed=1))
    first = await call.read()
    assert first.progress.step == 1
    call.cancel()  # the service cancels its Triton stream; the model sees is_cancelled() and stops
    events = [e async for e in stub.RenderStream(render_pb2.RenderRequest(prompt=SHORT, steps=2, seed=1))]
    assert [e.progress.step for e in events[:-1]] == [1, 2] and events[-1].result.image.data
    assert "Traceback" not in triton_painter.log_tail(200_000)


async def test_same_seed_same_image(stub):
    a, b, c = [await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=s)) for s in (11, 11, 12)]
    assert np.array_equal(pixels(a), pixels(b))
    assert not np.array_equal(pixels(a), pixels(c))


async def test_long_prompt_is_not_truncated(stub):
    a, b = [await stub.Render(render_pb2.RenderRequest(prompt=p, seed=2)) for p in (LONG, LONG_OTHER_ENDING)]
    assert a.image.long_prompt_strategy == "chunked"
    assert a.image.encoded_tokens == a.image.prompt_tokens > 77
    assert not np.array_equal(pixels(a), pixels(b))  # only tokens far past 77 differ


async def test_concurrent_requests_are_batched(stub, triton_painter):
    client = triton.InferenceServerClient(triton_painter.grpc_url)

    async def counts() -> tuple[int, int]:
        stats = (await client.get_inference_statistics("painter")).model_stats[0]
        return stats.inference_count, stats.execution_count

    before = await counts()
    replies = await asyncio.gather(
        *[stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=i)) for i in range(8)]
    )
    after = await counts()
    await client.close()
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == 8
    assert inferences / executions > 1  # Triton's own statistics: several requests per execute()
    assert len({r.image.data for r in replies}) == 8
    # Each request gets its own picture back, as painted alone (batch mates change pixels by at most 1).
    for seed in range(8):
        alone = await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=seed))
        assert np.abs(pixels(alone).astype(int) - pixels(replies[seed]).astype(int)).max() <= 1


async def test_rpc_deadline_bounds_the_triton_call(triton_painter):
    painter = TritonPainter(triton_painter.grpc_url)
    _, job = RenderCore({"triton": painter}, "triton").plan(
        RenderRequest(prompt=SHORT, steps=50, width=512, height=512)
    )
    try:
        with deadlines.scope(0.05), pytest.raises(DeadlineExceeded):
            await painter.paint(job)
        with deadlines.scope(0.0), pytest.raises(DeadlineExceeded):  # no time left: Triton is not even asked
            await painter.paint(job)
    finally:
        await painter.close()


async def health(channel, timeout: float = 10.0) -> int:
    """The health status once it has settled on NOT_SERVING (or the last status seen)."""
    stub = health_pb2_grpc.HealthStub(channel)
    status = None
    for _ in range(int(timeout / 0.1)):
        status = (await stub.Check(health_pb2.HealthCheckRequest())).status
        if status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.1)
    return status


@pytest.mark.own_engines
async def test_service_recovers_when_triton_restarts(tiny_painter, tmp_path):
    repository = prepare_repository(tmp_path / "repo", tiny_parameters(tiny_painter), models=["painter"])
    server = start(repository, ["painter"], tmp_path)
    ports = {
        "http_port": server.http_port,
        "grpc_port": server.grpc_port,
        "metrics_port": server.metrics_port,
    }
    try:
        async with running_service(service_for(server.grpc_url, stream_model="")) as channel:
            stub = render_pb2_grpc.RenderServiceStub(channel)
            assert (await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=1))).image.data
            server.stop()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=1))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert await health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING  # follows Triton
            server = await asyncio.to_thread(start, repository, ["painter"], tmp_path, **ports)
            await wait_serving(channel, timeout=30)
            reply = await stub.Render(render_pb2.RenderRequest(prompt=SHORT, seed=1))
            assert reply.image.painter.kind == "triton"
    finally:
        server.stop()
