"""Small image helpers for the widgets: arrays to PNG bytes, receptive-field boxes drawn on images."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def to_hwc_uint8(image) -> np.ndarray:
    """A [3, H, W] or [H, W, 3] array (uint8, or float in [0, 1]) or tensor as uint8 [H, W, 3]."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def png_bytes(image) -> bytes:
    """Encode an image as PNG (lossless, deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(to_hwc_uint8(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def draw_box(image, box, color=(255, 0, 255), scale: int = 1) -> np.ndarray:
    """The image (upscaled ``scale`` times) with the half-open box (top, left, bottom, right) outlined."""
    im = Image.fromarray(to_hwc_uint8(image))
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    top, left, bottom, right = (int(v) * scale for v in box)
    ImageDraw.Draw(im).rectangle([left, top, right - 1, bottom - 1], outline=color, width=max(1, scale))
    return np.asarray(im)
