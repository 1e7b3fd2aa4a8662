"""The production painter: the diffusers model served by Triton (deploy/triton), over tritonclient gRPC.

Unary renders call the `painter` model; streamed renders call the decoupled `painter_stream` model,
which answers with one PROGRESS response per denoising step and then IMAGE + METADATA. The caller's
deadline becomes both the gRPC deadline and Triton's server-side request timeout, so a request that
would miss its deadline is dropped from Triton's queue instead of being painted for nobody.

The address may name several replicas (`dns:///...`, `kubernetes:///...`; see
`storytelling.runtime.endpoints`): renders then rotate over every ready replica (gRPC round-robin), and
the client follows replicas as the autoscaler adds or removes them.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator

import grpc
import numpy as np
import tritonclient.grpc.aio as triton
from PIL import Image
from storytelling.render.painters.base import Painter, PainterRef, PainterSpec, Painting, PaintJob, Progress
from storytelling.runtime.checkpoints import RANDOM_NOTE
from storytelling.runtime import deadlines
from storytelling.runtime.balancing import CONNECT_TIMEOUT_S, ROUND_ROBIN, Balanced
from storytelling.runtime.endpoints import EndpointWatch, Target
from storytelling.runtime.errors import DeadlineExceeded, Internal, InvalidArgument, ServiceError, Unavailable
from tritonclient.utils import InferenceServerException

# Reconnect quickly after Triton restarts, so the service recovers within a second or two.
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 64 * 2**20),
    ("grpc.max_receive_message_length", 256 * 2**20),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ROUND_ROBIN,
]
# What Triton answers while it cannot serve the model: during a restart or rollout it stops accepting
# requests and unloads its models before it exits, and loads them before it serves, so these pass like a
# refused connection (the orchestrator waits for the painter to come back).
_MODEL_NOT_LOADED = re.compile(
    r"unknown model|has no available versions|is not ready|is not loaded|Server is stopping"
    r"|stopped accepting new inference requests"
)
_STATUS = {
    "StatusCode.UNAVAILABLE": Unavailable,
    "StatusCode.DEADLINE_EXCEEDED": DeadlineExceeded,
    "StatusCode.INVALID_ARGUMENT": InvalidArgument,
}


def infer_inputs(job: PaintJob) -> list[triton.InferInput]:
    columns = [
        ("PROMPT", "BYTES", np.array([[job.prompt.encode()]], dtype=np.object_)),
        ("NEGATIVE_PROMPT", "BYTES", np.array([[job.negative_prompt.encode()]], dtype=np.object_)),
        ("SEED", "INT64", np.array([[job.seed]], dtype=np.int64)),
        ("STEPS", "INT32", np.array([[job.steps]], dtype=np.int32)),
        ("GUIDANCE_SCALE", "FP32", np.array([[job.guidance_scale]], dtype=np.float32)),
        ("WIDTH", "INT32", np.array([[job.width]], dtype=np.int32)),
        ("HEIGHT", "INT32", np.array([[job.height]], dtype=np.int32)),
    ]
    inputs = []
    for name, dtype, value in columns:
        tensor = triton.InferInput(name, list(value.shape), dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return inputs


class TritonPainter(Painter):
    def __init__(
        self,
        url: str,
        model: str = "painter",
        stream_model: str = "painter_stream",
        spec: PainterSpec | None = None,
        *,
        watch: EndpointWatch | None = None,
    ) -> None:
        self.url = url
        self.model = model
        self.stream_model = stream_model
        self.spec = spec or PainterSpec(supports_progress=bool(stream_model))
        self._clients = Balanced(
            Target.parse(url), lambda target: triton.InferenceServerClient(target, channel_args=CHANNEL_ARGS),
            _close_client, connect=_connect_client, watch=watch,
        )  # fmt: skip
        self._random_weights = False  # learned from each image's metadata
        self._configured = False

    @property
    def ref(self) -> PainterRef:
        random = self._random_weights
        return PainterRef(
            kind="triton",
            model=self.model,
            endpoint=self.url,
            is_fallback=random,
            note=RANDOM_NOTE if random else "",
        )

    async def start(self) -> None:
        await self.ready()

    async def close(self) -> None:
        await self._clients.aclose()

    async def ready(self) -> tuple[bool, str]:
        """Follows Triton's readiness of the unary model (and the streaming one where configured).

        The model's defaults are (re)read whenever it becomes ready, so a redeployed model is picked up.
        """
        try:
            async with self._clients.lease() as client:
                for model in filter(None, (self.model, self.stream_model)):
                    if not await client.is_model_ready(model, client_timeout=2.0):
                        self._configured = False
                        return False, f"triton model {model!r} at {self.url} is not ready"
                if not self._configured:
                    await self._read_config(client)
        except (InferenceServerException, grpc.RpcError) as exc:
            self._configured = False
            return False, f"triton at {self.url} is unreachable: {_message(exc)}"
        return True, ""

    async def _read_config(self, client: triton.InferenceServerClient) -> None:
        """Takes defaults and bounds from the model's config.pbtxt parameters."""
        config = await client.get_model_config(self.model, as_json=True, client_timeout=2.0)
        params = {k: v.get("string_value", "") for k, v in config["config"].get("parameters", {}).items()}
        s = self.spec
        self.spec = PainterSpec(
            default_width=int(params.get("width", s.default_width)),
            default_height=int(params.get("height", s.default_height)),
            default_steps=int(params.get("steps", s.default_steps)),
            default_guidance_scale=float(params.get("guidance_scale", s.default_guidance_scale)),
            max_side=min(s.max_side, int(params.get("max_side", s.max_side))),
            max_steps=min(s.max_steps, int(params.get("max_steps", s.max_steps))),
            supports_progress=s.supports_progress,
        )
        self._configured = True

    def _painting(self, result, job: PaintJob) -> Painting:
        pixels = result.as_numpy("IMAGE")[0]
        meta = json.loads(result.as_numpy("METADATA").reshape(-1)[0])
        self._random_weights = bool(meta.get("random_weights"))
        return Painting(
            image=Image.fromarray(pixels, "RGB"),
            painter=self.ref,
            prompt=job.prompt,
            long_prompt_strategy=meta["strategy"],
            prompt_tokens=meta["prompt_tokens"],
            encoded_tokens=meta["encoded_tokens"],
            steps=meta["steps"],
            guidance_scale=meta["guidance_scale"],
        )

    @staticmethod
    def _timeouts() -> dict:
        """The RPC deadline as gRPC deadline and as Triton's queue timeout (microseconds)."""
        left = deadlines.remaining()
        if left is None:
            return {}
        if left <= 0:
            raise DeadlineExceeded("no time left for the painter")
        return {"client_timeout": left, "timeout": max(1, math.floor(left * 1e6))}

    async def paint(self, job: PaintJob) -> Painting:
        timeouts = self._timeouts()
        try:
            async with self._clients.lease() as client:
                result = await client.infer(
                    self.model,
                    infer_inputs(job),
                    outputs=[triton.InferRequestedOutput(n) for n in ("IMAGE", "METADATA")],
                    request_id=job.story_id,
                    **timeouts,
                )
        except (InferenceServerException, grpc.RpcError) as exc:
            raise _domain_error(exc, self.url) from exc
        return self._painting(result, job)

    async def paint_stream(self, job: PaintJob) -> AsyncIterator[Progress | Painting]:
        if not self.stream_model:
            yield await self.paint(job)
            return
        timeouts = self._timeouts()
        done = asyncio.Event()

        async def requests():
            yield {
                "model_name": self.stream_model,
                "inputs": infer_inputs(job),
                "request_id": job.story_id,
                "timeout": timeouts.get("timeout"),
            }
            await done.wait()  # keep the stream open until the final response arrives

        async with self._clients.lease() as client:
            responses = client.stream_infer(requests(), stream_timeout=timeouts.get("client_timeout"))
            try:
                async for result, error in responses:
                    if error is not None:
                        raise _domain_error(error, self.url)
                    progress = result.as_numpy("PROGRESS")
                    if progress is not None:
                        yield Progress(step=int(progress[0][0]), total_steps=int(progress[0][1]))
                        continue
                    yield self._painting(result, job)
                    return
            except (InferenceServerException, grpc.RpcError) as exc:
                raise _domain_error(exc, self.url) from exc
            finally:
                done.set()
                responses.cancel()
        raise Unavailable(f"triton at {self.url} closed the stream before the image")


async def _close_client(client: triton.InferenceServerClient) -> None:
    await client.close()


async def _connect_client(client: triton.InferenceServerClient) -> None:
    await client.is_server_live(client_timeout=CONNECT_TIMEOUT_S)


def _message(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, InferenceServerException):
        return exc.message() or str(exc)
    return str(exc)


def _domain_error(exc: Exception, url: str) -> ServiceError:
    if isinstance(exc, grpc.aio.AioRpcError):
        status = str(exc.code())
    elif isinstance(exc, InferenceServerException):
        status = str(exc.status())
    else:
        status = ""
    kind = _STATUS.get(status)
    if kind is not InvalidArgument and _MODEL_NOT_LOADED.search(_message(exc)):
        return Unavailable(f"triton at {url} has not loaded the model: {_message(exc)}")
    if kind is Unavailable:
        return Unavailable(f"triton at {url} is unreachable: {_message(exc)}")
    if kind is not None:
        return kind(f"triton: {_message(exc)}")
    if "timeout" in _message(exc).lower():  # Triton's queue policy rejected a request past its timeout
        return DeadlineExceeded(f"triton: {_message(exc)}")
    return Internal(f"triton: {_message(exc)}")
