"""Pictures as files: the one encoder the tests use to turn an image into the bytes a user would upload."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode(image: np.ndarray | Image.Image, image_format: str = "PNG", **save_options) -> bytes:
    """`image` (a uint8 array or a Pillow image) saved as an `image_format` file in memory, with Pillow's
    `save_options` (quality, exif, transparency, …)."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, image_format, **save_options)
    return buffer.getvalue()
