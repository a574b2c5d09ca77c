"""Where the engines ask the result cache: the cache in use, and one computation's slot in it.

An engine describes its call (engine name, model, images, settings) and gets a :class:`Slot` keyed by
(model fingerprint, layer, method, settings, dataset fingerprint, seed) — the settings dict carries layer,
method and seed — or ``None`` when the call cannot be cached: the cache is off, the images have no
fingerprint, a setting is not plain data (a callable objective), or the call runs under a process group
(each rank holds a shard; the caller caches the merged result).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .fingerprints import dataset_fingerprint, digest, model_fingerprint
from .store import DEFAULT_MAX_BYTES, ResultCache

# Part of every key: bump when a cached result's meaning or format changes.
RESULTS_FORMAT = 1
OFF = ("0", "off", "false", "no")

_settings: dict[str, Any] = {"directory": None, "max_size": None, "enabled": None}


def configure(directory: str | os.PathLike | None = None, max_size: int | str | None = None,
              enabled: bool | None = None) -> ResultCache | None:
    """Set where results are cached, its size limit (bytes or ``"5GB"``) and whether engines use it.

    Unset values come from the environment: ``CNNVIS_RESULT_CACHE`` (a folder, or ``off``),
    ``CNNVIS_RESULT_CACHE_SIZE`` (default 5 GB); the default folder is ``results/`` in
    ``cv.datasets.default_cache_dir()``. Returns the cache now in use (None when off).
    """
    if directory is not None:
        _settings["directory"] = Path(directory)
    if max_size is not None:
        _settings["max_size"] = max_size
    if enabled is not None:
        _settings["enabled"] = bool(enabled)
    return default_cache()


def _configured_directory() -> Path:
    from ..datasets.shapeworld import default_cache_dir

    if _settings["directory"] is not None:
        return _settings["directory"]
    env = os.environ.get("CNNVIS_RESULT_CACHE", "")
    if env and env.lower() not in OFF:
        return Path(env)
    return default_cache_dir() / "results"


def _max_size():
    return _settings["max_size"] or os.environ.get("CNNVIS_RESULT_CACHE_SIZE") or DEFAULT_MAX_BYTES


def default_cache(ignore_switch: bool = False) -> ResultCache | None:
    """The result cache engines use when called with ``cache=None`` (None when it is switched off)."""
    enabled = _settings["enabled"]
    if enabled is None:
        enabled = os.environ.get("CNNVIS_RESULT_CACHE", "").lower() not in OFF
    if not enabled and not ignore_switch:
        return None
    return ResultCache(_configured_directory(), _max_size())


def resolve(cache) -> ResultCache | None:
    """An engine's ``cache=`` argument as a cache: None (the default cache), True (on, even if switched off
    globally), False (off), a folder, or a :class:`ResultCache`."""
    if cache is None:
        return default_cache()
    if cache is True:
        return default_cache(ignore_switch=True)
    if cache is False:
        return None
    if isinstance(cache, ResultCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return ResultCache(cache, _max_size())
    raise TypeError(f"cache= takes None, True, False, a folder or a ResultCache; got {type(cache).__name__}.")


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cnnvis-widgets")
    except PackageNotFoundError:
        return "source"


def _plain(value) -> bool:
    try:
        json.dumps(value, allow_nan=True)
        return True
    except (TypeError, ValueError):
        return False


class Slot:
    """One computation's place in the cache: the finished result, and what an interrupted run finished."""

    def __init__(self, store: ResultCache, key: str, description: dict):
        self.store, self.key, self.description = store, key, description

    def load(self, kind) -> Any | None:
        """The cached result (a class with ``load(path)``), or None."""
        return self.store.get(self.key, kind.load)

    def save(self, result) -> None:
        self.store.put(self.key, result.save, self.description)

    # what an interrupted computation had finished: tensors plus JSON metadata, in one safetensors file
    def load_partial(self) -> tuple[dict, dict] | None:
        path = self.store.partial_path(self.key)
        if not path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["partial"])
                return meta, {name: f.get_tensor(name) for name in f.keys()}
        except Exception:  # an unreadable partial result only costs the work it held
            path.unlink(missing_ok=True)
            return None

    def save_partial(self, meta: dict, tensors: dict) -> None:
        import tempfile

        from safetensors.torch import save_file

        path = self.store.partial_path(self.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.key}-", suffix=".partial", dir=path.parent)
        os.close(fd)
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata={"partial": json.dumps(meta)})
        os.replace(tmp, path)


def slot(engine: str, model, images, settings: dict, cache=None) -> Slot | None:
    """The cache slot of ``engine(model, images, **settings)``, or None if this call is not cached."""
    import torch.distributed as dist

    store = resolve(cache)
    if store is None or (dist.is_available() and dist.is_initialized()) or not _plain(settings):
        return None
    images_key = "none" if images is None else dataset_fingerprint(images)
    if images_key is None:
        return None
    model_key = model_fingerprint(model)
    key = digest(RESULTS_FORMAT, _package_version(), engine, model_key, images_key, settings)
    description = {"engine": engine, "layer": settings.get("layer"), "model": model.name, "model_key": model_key,
                   "dataset_key": images_key, "settings": settings}
    return Slot(store, key, description)


__all__ = ["RESULTS_FORMAT", "Slot", "configure", "default_cache", "resolve", "slot"]
