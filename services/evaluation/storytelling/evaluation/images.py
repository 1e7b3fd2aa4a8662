"""Validation of encoded images before they reach a judge."""

import base64
import io
from dataclasses import dataclass

from PIL import Image as PILImage

from storytelling.runtime.images import DEFAULT_MAX_PIXELS, decode

SUPPORTED = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: str  # "PNG", "JPEG" or "WEBP", as Pillow names it

    @property
    def mime(self) -> str:
        return SUPPORTED[self.format]

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"

    def pil(self) -> PILImage.Image:
        return PILImage.open(io.BytesIO(self.data)).convert("RGB")


def check_image(
    data: bytes, declared: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> EncodedImage:
    """The bytes as a supported image, decoded once under `max_pixels`; raises ValueError saying why not.

    `declared` (PNG, JPEG, WEBP) must match what the bytes are; None accepts any supported format.
    """
    with decode(data, max_pixels) as image:
        actual = image.format
    if actual not in SUPPORTED:
        raise ValueError(f"unsupported image format {actual}; use {', '.join(SUPPORTED)}")
    if declared is not None and declared != actual:
        raise ValueError(f"declared {declared} but the bytes are {actual}")
    return EncodedImage(data, actual)
