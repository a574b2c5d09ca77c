"""The on-disk result cache: one file per result, a manifest beside it, a size limit kept by evicting the least
recently used entries.

Every entry is the result's own ``.safetensors`` file (written by its ``save``) and a ``.json`` manifest with
the file's sha256, what it was computed from and when it was last used. A file whose checksum does not match
(a crash mid-copy, a disk error, a hand edit) is reported, deleted and recomputed, never loaded. Files are
written under a temporary name and renamed, so a reader never sees half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DEFAULT_MAX_BYTES = 5 << 30
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40}


class CorruptCacheEntryWarning(UserWarning):
    """A cache entry failed its checksum or could not be read; it was deleted and the result recomputed."""


def parse_size(size: int | str) -> int:
    """Bytes from ``5368709120``, ``"5GB"``, ``"500 MB"`` or ``"2g"`` (powers of 1024)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(size))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"Cannot read the size {size!r}: give bytes, or a number with KB, MB, GB or TB (e.g. '5GB').")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class CacheEntry:
    """One cached result, as its manifest describes it."""

    key: str
    engine: str
    layer: str | None
    model: str
    bytes: int
    created: float
    used: float
    settings: dict

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.used))
        return (f"{self.key}  {self.engine:<24} {str(self.layer or '-'):<16} {self.model:<20} "
                f"{self.bytes / 1e6:8.1f} MB  used {when}")


class ResultCache:
    """Results on disk in ``directory``, at most ``max_bytes`` in all (least recently used go first)."""

    def __init__(self, directory: str | os.PathLike, max_bytes: int | str = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = parse_size(max_bytes)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory)!r}, max_bytes={self.max_bytes})"

    def _data(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def _manifest(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def partial_path(self, key: str) -> Path:
        """Where a computation with this key keeps what it finished, until it completes."""
        return self.directory / f"{key}.partial.safetensors"

    # -- reading and writing ------------------------------------------------------------------------------
    def get(self, key: str, load: Callable[[Path], Any]) -> Any | None:
        """The result stored under ``key`` (read by ``load(path)``), or None if there is none or it is damaged."""
        data, manifest = self._data(key), self._manifest(key)
        if not manifest.exists() or not data.exists():
            return None
        try:
            info = json.loads(manifest.read_text())
            if _sha256(data) != info["sha256"]:
                raise ValueError("its checksum does not match")
            result = load(data)
        except Exception as err:  # damaged: never serve it
            warnings.warn(f"The cached result {data} is damaged ({err}); it was deleted and will be recomputed.",
                          CorruptCacheEntryWarning, stacklevel=3)
            self.remove(key)
            return None
        info["used"] = time.time()
        self._write_manifest(key, info)
        return result

    def put(self, key: str, save: Callable[[Path], Any], description: dict) -> None:
        """Store a result: ``save(path)`` writes it; ``description`` (engine, layer, model, settings) goes in the
        manifest. Then the oldest entries are evicted until the cache fits its limit."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}-", suffix=".safetensors", dir=self.directory)
        os.close(fd)
        tmp = Path(tmp)
        try:
            save(tmp)
            info = {**description, "key": key, "sha256": _sha256(tmp), "bytes": tmp.stat().st_size,
                    "created": time.time(), "used": time.time()}
            os.replace(tmp, self._data(key))
        finally:
            tmp.unlink(missing_ok=True)
        self._write_manifest(key, info)
        self.partial_path(key).unlink(missing_ok=True)
        self.evict()

    def _write_manifest(self, key: str, info: dict) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{key}-", suffix=".json", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f, default=str)
        os.replace(tmp, self._manifest(key))

    def remove(self, key: str) -> None:
        for path in (self._data(key), self._manifest(key), self.partial_path(key)):
            path.unlink(missing_ok=True)

    # -- housekeeping -------------------------------------------------------------------------------------
    def entries(self) -> list[CacheEntry]:
        """Every complete entry, most recently used first."""
        out = []
        for manifest in self.directory.glob("*.json") if self.directory.exists() else []:
            try:
                info = json.loads(manifest.read_text())
                out.append(CacheEntry(key=info["key"], engine=info.get("engine", "?"), layer=info.get("layer"),
                                      model=str(info.get("model", "?")), bytes=int(info["bytes"]),
                                      created=float(info["created"]), used=float(info["used"]),
                                      settings=info.get("settings", {})))
            except (OSError, ValueError, KeyError):
                continue  # a manifest being written, or a stray file
        return sorted(out, key=lambda e: e.used, reverse=True)

    def size(self) -> int:
        """Bytes of every file in the cache folder (entries, partial results and strays)."""
        if not self.directory.exists():
            return 0
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def evict(self) -> list[str]:
        """Delete least recently used entries until the cache fits ``max_bytes``; the keys deleted."""
        entries = self.entries()
        total = sum(e.bytes for e in entries)
        gone = []
        while entries and total > self.max_bytes:
            oldest = entries.pop()
            self.remove(oldest.key)
            total -= oldest.bytes
            gone.append(oldest.key)
        return gone

    def clear(self) -> int:
        """Delete every entry and partial result; the bytes freed."""
        freed = self.size()
        if self.directory.exists():
            for path in self.directory.iterdir():
                if path.is_file() and path.suffix in (".json", ".safetensors"):
                    path.unlink(missing_ok=True)
        return freed - self.size()


__all__ = ["CacheEntry", "CorruptCacheEntryWarning", "ResultCache", "parse_size"]
