"""RenderService gRPC adapter: protobuf -> RenderCore -> protobuf, nothing more."""

from __future__ import annotations

from storytelling.render.core import PainterStatus, RenderCore, RenderRequest, RenderResult
from storytelling.render.painters.base import PainterRef, Progress
from storytelling.v1 import common_pb2, render_pb2, render_pb2_grpc

_FORMATS = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: "png",
    common_pb2.IMAGE_FORMAT_PNG: "png",
    common_pb2.IMAGE_FORMAT_JPEG: "jpeg",
    common_pb2.IMAGE_FORMAT_WEBP: "webp",
}
_FORMAT_ENUM = {
    "png": common_pb2.IMAGE_FORMAT_PNG,
    "jpeg": common_pb2.IMAGE_FORMAT_JPEG,
    "webp": common_pb2.IMAGE_FORMAT_WEBP,
}


def request_from_proto(msg: render_pb2.RenderRequest) -> RenderRequest:
    return RenderRequest(
        prompt=msg.prompt,
        negative_prompt=msg.negative_prompt,
        painter=msg.painter,
        width=msg.width,
        height=msg.height,
        steps=msg.steps,
        guidance_scale=msg.guidance_scale if msg.HasField("guidance_scale") else None,
        seed=msg.seed if msg.HasField("seed") else None,
        format=_FORMATS.get(msg.format, f"enum value {msg.format}"),
        story_id=msg.story_id,
    )


def ref_to_proto(ref: PainterRef) -> common_pb2.PainterRef:
    return common_pb2.PainterRef(
        kind=ref.kind, model=ref.model, endpoint=ref.endpoint, is_fallback=ref.is_fallback, note=ref.note
    )


def response_to_proto(result: RenderResult) -> render_pb2.RenderResponse:
    p = result.painting
    image = common_pb2.Image(
        data=result.data,
        format=_FORMAT_ENUM[result.format],
        width=result.width,
        height=result.height,
        seed=result.seed,
        painter=ref_to_proto(p.painter),
        steps=p.steps,
        guidance_scale=p.guidance_scale,
        prompt=p.prompt,
        long_prompt_strategy=p.long_prompt_strategy,
        prompt_tokens=p.prompt_tokens,
        encoded_tokens=p.encoded_tokens,
    )
    return render_pb2.RenderResponse(image=image, seconds=result.seconds)


def painter_to_proto(status: PainterStatus) -> render_pb2.PainterInfo:
    s = status.spec
    return render_pb2.PainterInfo(
        name=status.name,
        ref=ref_to_proto(status.ref),
        ready=status.ready,
        detail=status.detail,
        default_width=s.default_width,
        default_height=s.default_height,
        default_steps=s.default_steps,
        max_side=s.max_side,
        max_steps=s.max_steps,
        supports_progress=s.supports_progress,
    )


class RenderServicer(render_pb2_grpc.RenderServiceServicer):
    def __init__(self, core: RenderCore) -> None:
        self.core = core

    async def Render(self, request, context):
        return response_to_proto(await self.core.render(request_from_proto(request)))

    async def RenderStream(self, request, context):
        async for event in self.core.render_stream(request_from_proto(request)):
            if isinstance(event, Progress):
                yield render_pb2.RenderEvent(
                    progress=render_pb2.RenderProgress(step=event.step, total_steps=event.total_steps)
                )
            else:
                yield render_pb2.RenderEvent(result=response_to_proto(event))

    async def ListPainters(self, request, context):
        statuses = await self.core.statuses()
        return render_pb2.ListPaintersResponse(
            painters=[painter_to_proto(s) for s in statuses], default_painter=self.core.default
        )
