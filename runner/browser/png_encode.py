"""A painted screenshot written back as PNG, cheaply: every row "Up"-filtered, zlib level 1.

Why: Pillow's PNG encoder tries the five filters on every row and keeps the best (~20 ms for a
1280x800 capture on the bench machine, whatever the zlib level); a browser page's rows are mostly
the row above them, so one filter for all but the first (``Up``: each byte minus the byte above it,
in C through ``ImageChops.subtract_modulo``) and zlib's fastest level cost about half, for an image ~5 % larger.
Chromium encodes its own fast captures the same way (``Page.captureScreenshot`` with
``optimizeForSpeed``). The output is a plain PNG (IHDR, one IDAT, IEND) any decoder reads.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported where a mask is painted (screenshots.warm_painter), not at start-up
    from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZLIB_LEVEL = 1
_UP_BYTE = b"\x02"  # the PNG filter type "Up" (each byte minus the byte above it)
BAND = 32  # rows filtered and compressed at a time
_COLOR_TYPES = {"RGB": 2, "RGBA": 6}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(im: Image.Image) -> bytes:
    """``im`` (RGB or RGBA, 8 bits per channel) as a PNG whose pixels decode to exactly ``im``'s."""
    from PIL import ImageChops

    color_type = _COLOR_TYPES.get(im.mode)
    if color_type is None:
        raise ValueError(f"encode_png takes RGB or RGBA images, not {im.mode}")
    w, h = im.size
    stride = w * len(im.mode)
    deflate = zlib.compressobj(ZLIB_LEVEL)
    parts = [deflate.compress(b"\x00" + im.crop((0, 0, w, 1)).tobytes())]  # row 0: filter "None"
    # Bands of BAND rows: each row minus the row above it, every byte mod 256 (in C). A band at a
    # time keeps the working memory small and reused (whole-image temporaries of ~4 MB each were
    # handed back to the OS and faulted in again on every capture: ~9 ms of system time).
    for top in range(1, h, BAND):
        bottom = min(top + BAND, h)
        diff = ImageChops.subtract_modulo(im.crop((0, top, w, bottom)), im.crop((0, top - 1, w, bottom - 1)))
        rows = memoryview(diff.tobytes())
        band = _UP_BYTE + _UP_BYTE.join(rows[i:i + stride] for i in range(0, len(rows), stride))
        parts.append(deflate.compress(band))
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"".join((PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", b"".join(parts)),
                     _chunk(b"IEND", b"")))
