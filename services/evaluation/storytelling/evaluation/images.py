"""Validation of encoded images before they reach a judge."""

from dataclasses import dataclass


from storytelling.runtime.images import DEFAULT_MAX_PIXELS, decode

from storytelling.llm import ImagePart

SUPPORTED = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: str  # "PNG", "JPEG" or "WEBP", as Pillow names it

    @property
    def mime(self) -> str:
        return SUPPORTED[self.format]

    def part(self) -> ImagePart:
        """The image as a part of an LLM message, for a vision-language model."""
        return ImagePart(self.data, self.mime)


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
