"""Checkpoints of a dissection run: the tallies saved as a run goes, named by what the run depends on, so an
interrupted run resumes where it stopped (with the same or another number of ranks)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..model import Model


class Checkpoint:
    """Tallies saved atomically to ``folder/dissection-<key>.safetensors`` as a run goes."""

    def __init__(self, folder: str | os.PathLike | None, key: str):
        self.path = Path(folder) / f"dissection-{key}.safetensors" if folder is not None else None

    def load(self) -> tuple[dict, dict] | None:
        if self.path is None or not self.path.is_file():
            return None
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as f:
            meta = json.loads(f.metadata()["state"])
        return meta, load_file(str(self.path))

    def save(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        os.close(fd)
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata={"state": json.dumps(meta)})
        os.replace(tmp, self.path)


def run_key(model: Model, broden, layers, options: dict) -> str:
    """A run's checkpoint name: the model's weights, the dataset, the layers and the options."""
    h = hashlib.sha256(model.fingerprint().encode())
    h.update(json.dumps([str(broden.root), broden.split, len(broden), list(layers), options], sort_keys=True).encode())
    return h.hexdigest()[:16]
