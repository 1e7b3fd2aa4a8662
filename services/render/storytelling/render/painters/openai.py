"""A hosted or self-hosted OpenAI-compatible image API (`POST /v1/images/generations`, b64_json).

The research system painted with hosted image APIs; this painter keeps that option. Such APIs take a
size but no seed, steps or guidance, so those are reported as 0 and the prompt goes through whole
(long-prompt handling is the API's business: strategy "none", token counts unknown).
"""

from __future__ import annotations

import base64
import binascii

import httpx
from storytelling.render.painters.base import Painter, PainterRef, PainterSpec, Painting, PaintJob
from storytelling.runtime import deadlines
from storytelling.runtime.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    ServiceError,
    Unavailable,
)
from storytelling.runtime.images import UndecodableImage, decode


class OpenAIImagePainter(Painter):
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 120.0,
        spec: PainterSpec | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.spec = spec or PainterSpec(
            default_width=1024,
            default_height=1024,
            default_steps=0,
            default_guidance_scale=0.0,
            max_side=2048,
        )
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.AsyncClient(base_url=self.base_url, headers=headers)

    @property
    def ref(self) -> PainterRef:
        return PainterRef(kind="openai", model=self.model, endpoint=self.base_url)

    async def close(self) -> None:
        await self.client.aclose()

    async def ready(self) -> tuple[bool, str]:
        try:
            response = await self.client.get("/models", timeout=2.0)
        except httpx.HTTPError as exc:
            return False, f"image API at {self.base_url} is unreachable: {exc!r}"
        if response.status_code >= 500:
            return False, f"image API at {self.base_url} answered {response.status_code}"
        return True, ""

    async def paint(self, job: PaintJob) -> Painting:
        body = {
            "model": self.model,
            "prompt": job.prompt,
            "n": 1,
            "size": f"{job.width}x{job.height}",
            "response_format": "b64_json",
        }
        timeout = deadlines.remaining(self.timeout_s)
        try:
            response = await self.client.post("/images/generations", json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise DeadlineExceeded(f"image API at {self.base_url} timed out after {timeout:.1f}s") from exc
        except httpx.HTTPError as exc:
            raise Unavailable(f"image API at {self.base_url} is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise _status_error(response)
        try:
            data = base64.b64decode(response.json()["data"][0]["b64_json"])
            image = decode(data, self.spec.max_side**2).convert("RGB")  # the API's bytes are untrusted too
        except (KeyError, IndexError, TypeError, ValueError, binascii.Error, UndecodableImage) as exc:
            raise Internal(f"image API returned no decodable b64_json image: {exc}") from None
        return Painting(
            image=image,
            painter=self.ref,
            prompt=job.prompt,
            long_prompt_strategy="none",
            prompt_tokens=0,
            encoded_tokens=0,
            steps=0,
            guidance_scale=0.0,
        )


def _status_error(response: httpx.Response) -> ServiceError:
    detail = f"image API answered {response.status_code}: {response.text[:300]}"
    if response.status_code == 400:
        return InvalidArgument(detail, field="prompt")
    if response.status_code == 429:
        return ResourceExhausted(detail)
    if response.status_code >= 500:
        return Unavailable(detail)
    return Internal(detail)
