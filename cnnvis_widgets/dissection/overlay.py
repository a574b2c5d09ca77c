"""Masks drawn over images: a unit's thresholded mask and a concept's mask on one picture."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..images import display_array

# Vivid on any photo and distinct from each other; the widget's legend uses the same colours.
UNIT_COLOUR = (255, 43, 214)  # magenta
CONCEPT_COLOUR = (0, 194, 255)  # cyan


def _fit(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == tuple(size):
        return mask.astype(bool)
    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(image) > 127


def _edge(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def overlay(image: np.ndarray, unit_mask: np.ndarray | None = None, concept_mask: np.ndarray | None = None,
            opacity: float = 0.45, scale: int = 2) -> np.ndarray:
    """uint8 [H·scale, W·scale, 3]: the image with the unit's mask tinted magenta (outlined) and the
    concept's mask outlined in cyan. Masks of another size are resized (nearest) to the image. A grayscale
    image ([H, W] or [H, W, 1]) turns RGB so that the masks keep their colours."""
    picture = Image.fromarray(display_array(image)).convert("RGB")
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    out = np.asarray(picture).astype(np.float32)
    size = out.shape[:2]
    if unit_mask is not None:
        mask = _fit(unit_mask, size)
        out[mask] = out[mask] * (1 - opacity) + np.array(UNIT_COLOUR) * opacity
        out[_edge(mask)] = UNIT_COLOUR
    if concept_mask is not None:
        out[_edge(_fit(concept_mask, size))] = CONCEPT_COLOUR
    return out.round().clip(0, 255).astype(np.uint8)


def overlay_png(image: np.ndarray, unit_mask: np.ndarray | None = None, concept_mask: np.ndarray | None = None,
                **kwargs) -> bytes:
    """:func:`overlay` encoded as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(overlay(image, unit_mask, concept_mask, **kwargs)).save(buffer, format="PNG")
    return buffer.getvalue()
