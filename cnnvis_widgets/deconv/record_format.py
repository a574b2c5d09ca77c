"""The on-disk format of a training record: a JSON index and one safetensors file per recorded epoch.

A record folder holds ``record.json`` (layer, units, k, the recorded epochs and the metrics of every
epoch) and ``epoch_NNNNN.safetensors`` (that epoch's crops, projections, values, indices and optional
activation-maximization images). Both are written atomically (a temporary file in the same folder, then
``os.replace``), so a kernel that dies mid-training leaves every finished epoch readable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

FORMAT = "cnnvis-training-record"
FORMAT_VERSION = 1
INDEX_NAME = "record.json"

Pathish = str | os.PathLike


def epoch_file(epoch: int) -> str:
    return f"epoch_{epoch:05d}.safetensors"


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then move the finished file onto ``path`` in one step."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def json_number(value) -> float | None:
    """A metric as a JSON number; NaN and infinities become null (JSON has neither)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Metrics must be numbers, got {type(value).__name__} ({value!r}).") from None
    return number if math.isfinite(number) else None


def read_index(directory: Path) -> dict:
    path = directory / INDEX_NAME
    if not path.exists():
        if not directory.exists():
            raise FileNotFoundError(
                f"{directory} does not exist. Record a training run into it first, with "
                "cv.TrainingMonitor(dataset, layer, units, directory) (or TrainingRecord.from_mini_alexnet(...)).")
        raise FileNotFoundError(
            f"{directory} holds no {INDEX_NAME}, so it is not a training record. Point to the folder a "
            "cv.TrainingMonitor wrote, or record one there with cv.TrainingMonitor(dataset, layer, units, directory).")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the record index is damaged.") from err
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnnvis training record index (no \"format\": \"{FORMAT}\").")
    if index.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {index['version']}; this cnnvis_widgets reads up to version "
                         f"{FORMAT_VERSION}. Upgrade cnnvis_widgets to read it.")
    return index


__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_NAME", "Pathish", "epoch_file", "json_number", "read_index",
           "write_atomically"]
