"""Is it a whole image? The one check Preprocess (each labelled image) and serving (each request) make.

The size comes from the header; the decode runs at 1/8 scale (JPEG's DCT scaling, about 8x faster than a full
decode) and still fails on a broken stream; a truncated JPEG lacks its end marker, a truncated PNG its IEND chunk.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"


class NotAnImage(ValueError):
    """The bytes are not one whole JPEG or PNG (or other image OpenCV decodes)."""


def whole_image(data: bytes) -> tuple[int, int]:
    """(width, height) of a whole, decodable image; NotAnImage naming what is wrong otherwise."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            width, height = header.size
    except (OSError, ValueError, Image.DecompressionBombError):
        raise NotAnImage("not a decodable image") from None
    if data[:2] == JPEG_START and JPEG_END not in data[-64:]:
        raise NotAnImage("a truncated JPEG (no end-of-image marker)")
    if data[:8] == PNG_START and PNG_END not in data[-16:]:
        raise NotAnImage("a truncated PNG (no IEND chunk)")
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        raise NotAnImage("not a decodable image (corrupt)")
    return width, height
