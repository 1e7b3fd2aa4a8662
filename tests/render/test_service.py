"""RenderCore validation and the gRPC service in-process (full runtime interceptors), no Triton needed."""

import io

import grpc
import pytest
from PIL import Image
from storytelling.render.core import RenderCore, RenderRequest
from storytelling.render.diffusion import EngineConfig
from storytelling.render.painters.embedded import EmbeddedPainter
from storytelling.render.painters.sketch import SketchPainter
from storytelling.render.service import RenderService
from storytelling.render.settings import RenderSettings
from storytelling.runtime.errors import InvalidArgument
from storytelling.runtime.testing import running_service
from storytelling.v1 import common_pb2, render_pb2, render_pb2_grpc

from tests.render.stories import LONG, SHORT

BAD = [
    (dict(prompt="   "), "prompt"),
    (dict(prompt="x" * 8001), "prompt"),
    (dict(negative_prompt="x" * 8001), "negative_prompt"),
    (dict(width=100), "width"),
    (dict(height=4096), "height"),
    (dict(width=32), "width"),
    (dict(steps=101), "steps"),
    (dict(steps=-1), "steps"),
    (dict(guidance_scale=31.0), "guidance_scale"),
    (dict(seed=-5), "seed"),
    (dict(painter="dalle-9"), "painter"),
]


@pytest.fixture
def core() -> RenderCore:
    return RenderCore({"sketch": SketchPainter()}, default="sketch")


@pytest.mark.parametrize(("fields", "field"), BAD)
def test_bad_requests_name_the_field(core, fields, field):
    with pytest.raises(InvalidArgument) as info:
        core.plan(RenderRequest(**({"prompt": SHORT} | fields)))
    assert info.value.field == field


def test_defaults_filled_and_random_seed_recorded(core):
    _, job = core.plan(RenderRequest(prompt=SHORT))
    assert (job.width, job.height) == (512, 512)
    assert 0 <= job.seed < 2**31
    assert core.plan(RenderRequest(prompt=SHORT, seed=9))[1].seed == 9


@pytest.fixture
async def channel():
    async with running_service(RenderService.from_settings(RenderSettings())) as ch:
        yield ch


async def test_render_returns_a_labelled_png(channel):
    stub = render_pb2_grpc.RenderServiceStub(channel)
    reply = await stub.Render(render_pb2.RenderRequest(prompt=LONG, width=256, height=192, seed=4))
    image = reply.image
    assert image.format == common_pb2.IMAGE_FORMAT_PNG and image.seed == 4
    assert (
        image.painter.kind == "sketch"
        and image.painter.is_fallback
        and "not a diffusion" in image.painter.note
    )
    png = Image.open(io.BytesIO(image.data))
    assert png.format == "PNG" and png.size == (256, 192)
    assert png.text["is_fallback"] == "true"


async def test_jpeg_on_request(channel):
    stub = render_pb2_grpc.RenderServiceStub(channel)
    reply = await stub.Render(render_pb2.RenderRequest(prompt=SHORT, format=common_pb2.IMAGE_FORMAT_JPEG))
    assert Image.open(io.BytesIO(reply.image.data)).format == "JPEG"


async def test_invalid_argument_names_the_field(channel):
    stub = render_pb2_grpc.RenderServiceStub(channel)
    for request, prefix in (
        (render_pb2.RenderRequest(prompt=SHORT, width=100), "width: "),
        (render_pb2.RenderRequest(prompt=SHORT, painter="nope"), "painter: "),
        (render_pb2.RenderRequest(prompt=""), "prompt: "),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Render(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith(prefix)


async def test_list_painters(channel):
    reply = await render_pb2_grpc.RenderServiceStub(channel).ListPainters(render_pb2.ListPaintersRequest())
    assert reply.default_painter == "sketch"
    [sketch] = reply.painters
    assert sketch.ready and sketch.ref.is_fallback and sketch.max_side == 1024


async def test_embedded_painter_streams_progress_then_the_image(tiny_painter):
    painter = EmbeddedPainter(EngineConfig(model=str(tiny_painter), steps=3, width=64, height=64))
    core = RenderCore({"embedded": painter, "sketch": SketchPainter()}, default="embedded")
    async with running_service(RenderService(RenderSettings(), core)) as ch:
        events = [
            e
            async for e in render_pb2_grpc.RenderServiceStub(ch).RenderStream(
                render_pb2.RenderRequest(prompt=LONG, seed=1)
            )
        ]
    assert [e.progress.step for e in events[:-1]] == [1, 2, 3]
    image = events[-1].result.image
    assert image.painter.kind == "embedded" and image.painter.is_fallback
    assert image.painter.note == "random weights: plumbing test only"
    assert image.long_prompt_strategy == "chunked" and image.encoded_tokens == image.prompt_tokens > 77
