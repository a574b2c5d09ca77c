"""Arguments of :func:`~cnnvis_widgets.optvis.activation_maximization` checked and brought to tensors: the
units to optimize and the images to start from."""

from __future__ import annotations

import numpy as np
import torch

from ..images import ImageSource


def init_images(init, n_units: int, n: int, size: tuple[int, int], channels: int = 3, fit="squash") -> torch.Tensor:
    """``init`` (see :func:`activation_maximization`) as [n_units * n, C, H, W] at ``size``, on the CPU."""
    if isinstance(init, (torch.Tensor, np.ndarray)) and init.ndim == 5:  # [units, n, C, H, W]
        init = init.reshape(-1, *init.shape[2:])
    source = ImageSource(init, size, channels=channels, fit=fit)
    images = source.images(range(len(source)))
    if len(images) == 1:
        return images.expand(n_units * n, -1, -1, -1)
    if len(images) == n_units:
        return images.repeat_interleave(n, 0)
    if len(images) == n_units * n:
        return images
    raise ValueError(f"init has {len(images)} images; give one image, one per unit ({n_units}), or one per "
                     f"optimized image ({n_units * n} = units x n_per_unit).")


def check_units(units, count: int, what: str) -> np.ndarray:
    """``units`` (None: all ``count``) as int64 indices, each checked to lie in 0..count-1."""
    if units is None:
        return np.arange(count)
    arr = np.atleast_1d(np.asarray(units if not isinstance(units, range) else list(units)))
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"units must be integers in 0..{count - 1} ({what}), got {units!r}.")
    bad = arr[(arr < 0) | (arr >= count)]
    if bad.size:
        raise ValueError(f"Unit {int(bad[0])} is out of range: {what} has {count} units, numbered 0..{count - 1}.")
    return arr.astype(np.int64)
