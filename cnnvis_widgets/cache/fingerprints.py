"""Fingerprints of what a result depends on: the model (architecture, code, weights, preprocessing) and the images.

A fingerprint is a short hex digest; two inputs with the same fingerprint give the same result. Images are
fingerprinted by content where they are in memory (tensors, arrays, PIL images), by path, size and
modification time where they are files, and by a dataset's own ``cache_fingerprint()`` where it has one
(:class:`~cnnvis_widgets.datasets.Broden`, :class:`~cnnvis_widgets.datasets.PhotoCrops`). A dataset that none
of these covers has no fingerprint (``None``), and its results are not cached: a stale answer is worse than
recomputing. A model's code counts as described in :mod:`~cnnvis_widgets.cache.module_code`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from .module_code import code_fingerprint

CHUNK = 1 << 24  # bytes hashed at a time, so a large tensor is never copied whole


def digest(*parts) -> str:
    """sha256 of the JSON of ``parts`` (dict keys sorted), 20 hex digits."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _hash_array(h, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    h.update(f"{array.dtype.str}{array.shape}".encode())
    flat = array.reshape(-1).view(np.uint8)
    for start in range(0, flat.size, CHUNK):
        h.update(flat[start:start + CHUNK].data)


def _hash_tensor(h, tensor: torch.Tensor) -> None:
    tensor = tensor.detach()
    h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    flat = tensor.reshape(-1)
    step = max(1, CHUNK // max(1, tensor.element_size()))
    for start in range(0, flat.numel(), step):  # one bounded host copy at a time
        h.update(flat[start:start + step].cpu().contiguous().view(torch.uint8).numpy().data)


def file_fingerprint(path: str | os.PathLike) -> str:
    """A file by its resolved path, size and modification time (no read)."""
    path = Path(path).resolve()
    stat = path.stat()
    return digest("file", str(path), stat.st_size, stat.st_mtime_ns)


def module_fingerprint(module: torch.nn.Module) -> str:
    """An ``nn.Module``: its architecture (repr), the code it runs, its hooks and plain settings
    (:func:`~.module_code.code_fingerprint`), and every tensor of its state."""
    h = hashlib.sha256(repr(module).encode())
    h.update(code_fingerprint(module).encode())
    for key, tensor in module.state_dict().items():
        h.update(key.encode())
        _hash_tensor(h, tensor)
    return h.hexdigest()[:20]


def model_fingerprint(model) -> str:
    """A :class:`~cnnvis_widgets.Model`: its weights and architecture (``Model.fingerprint``) and everything
    that decides what it sees: normalization, input size, resize policy, channels, name, classes and mode."""
    return digest("model", module_fingerprint(model.module), model.mean, model.std, model.input_size, model.fit.to_dict(),
                  model.channels, model.name, model.classes, model.module.training)


def dataset_fingerprint(images) -> str | None:
    """The fingerprint of any image collection the engines accept, or ``None`` where it cannot be known."""
    from PIL import Image

    from ..images import ImageSource
    from ..normalization import NormalizedImages

    if isinstance(images, ImageSource):
        images = images._tensor if images._tensor is not None else images._items
    if isinstance(images, NormalizedImages):
        inner = dataset_fingerprint(images.images)
        return None if inner is None else digest("normalized", inner, images.mean, images.std)
    own = getattr(images, "cache_fingerprint", None)
    if callable(own):
        value = own()
        return None if value is None else digest("own", type(images).__qualname__, value)
    h = hashlib.sha256()
    if isinstance(images, torch.Tensor):
        _hash_tensor(h, images)
        return "t" + h.hexdigest()[:19]
    if isinstance(images, np.ndarray):
        _hash_array(h, images)
        return "a" + h.hexdigest()[:19]
    if isinstance(images, Image.Image):
        h.update(f"{images.mode}{images.size}".encode())
        h.update(images.tobytes())
        return "p" + h.hexdigest()[:19]
    if isinstance(images, (bool, int, float)):  # e.g. the target of an (image, target) pair
        return digest("number", images)
    if isinstance(images, (str, os.PathLike)):
        return file_fingerprint(images) if Path(images).is_file() else None
    if isinstance(images, torch.utils.data.Subset):
        inner = dataset_fingerprint(images.dataset)
        return None if inner is None else digest("subset", inner, [int(i) for i in images.indices])
    samples = getattr(images, "samples", None)  # torchvision's ImageFolder / DatasetFolder
    if isinstance(samples, list) and samples and isinstance(samples[0], tuple):
        files = [file_fingerprint(s[0]) for s in samples]
        return digest("folder", files, [s[1:] for s in samples], repr(getattr(images, "transform", None)))
    if isinstance(images, (list, tuple)):
        parts = [dataset_fingerprint(item) for item in images]
        return None if any(p is None for p in parts) else digest("list", parts)
    return None


__all__ = ["dataset_fingerprint", "digest", "file_fingerprint", "model_fingerprint", "module_fingerprint"]
