"""Image bytes from callers and remote APIs, decoded by Pillow under a pixel limit.

A few kilobytes of PNG or WebP can declare a billion pixels (a decompression bomb); decoding them would
take gigabytes. The size is read from the header first and checked against the limit, so such bytes
are refused before any pixel is decoded; the limit also bounds the memory of every image accepted.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 4096 * 4096


class UndecodableImage(ValueError):
    """The bytes are not an image Pillow can decode within the limit; the message says which."""


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded image (first frame); raises UndecodableImage for non-images, bombs and corrupt data."""
    if not data:
        raise UndecodableImage("image bytes are empty")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as exc:  # Pillow's own, higher, process-wide limit
        raise UndecodableImage(f"the image declares too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UndecodableImage(f"the bytes are not a decodable image ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise UndecodableImage(
            f"the image is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}"
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
        raise UndecodableImage(f"the bytes are not a decodable image (corrupt pixel data: {exc})") from None
    return image
