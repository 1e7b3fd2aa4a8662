"""Decompression bombs: a few hundred kilobytes of PNG that declare hundreds of millions of pixels.

Built by hand (IHDR, a zlib stream of zero rows, IEND) so that making one never needs the memory that
decoding it would.
"""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, *, rgb: bool = False) -> bytes:
    """A valid PNG of `width` x `height` black pixels, greyscale 1 bit per pixel or RGB 8 bits."""
    color_type, bit_depth, row_bytes = (2, 8, 3 * width) if rgb else (0, 1, (width + 7) // 8)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = bytes(row_bytes + 1)  # filter byte 0, then zero samples
    parts = [compressor.compress(row) for _ in range(height)]
    data = b"".join(parts) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
