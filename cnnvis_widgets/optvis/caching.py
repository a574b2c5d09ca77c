"""An activation-maximization call in the result cache (:mod:`cnnvis_widgets.cache`): its key, and the batches
of units an interrupted run had finished, kept so the next identical call starts after them."""

from __future__ import annotations

import numpy as np
import torch

from ..cache.fingerprints import dataset_fingerprint, module_fingerprint
from ..cache.results import Slot, slot


def am_cache_slot(model, layer, units, objective, preset, steps, n_per_unit, diversity, seed, image_size, batch_size,
                  snapshot_steps, generator, init, overrides, cache) -> Slot | None:
    """The call's result-cache slot; None where an argument cannot be keyed (a callable, an AMConfig, images
    without a fingerprint)."""
    if not isinstance(objective, str) or not isinstance(preset, str):
        return None
    extra = {}
    if generator is not None:
        extra["generator"] = module_fingerprint(generator)
    if init is not None:
        extra["init"] = dataset_fingerprint(init)
        if extra["init"] is None:
            return None
    settings = {"layer": layer, "units": None if units is None else np.asarray(units).tolist(),
                "objective": objective, "preset": preset, "steps": steps, "n_per_unit": n_per_unit,
                "diversity": diversity, "seed": seed, "image_size": image_size, "batch_size": batch_size,
                "snapshot_steps": list(snapshot_steps), "overrides": overrides, **extra}
    return slot("activation_maximization", model, None, settings, cache)


_ARRAYS = ("images", "activations", "transparency", "history")


def keep_chunks(place: Slot, units: np.ndarray, chunks: list[dict]) -> None:
    """Save the finished batches of units (the engine's chunk dicts) as the call's partial result."""
    if not chunks:
        return
    tensors = {}
    for i, chunk in enumerate(chunks):
        tensors.update({f"{i}.{name}": torch.from_numpy(np.ascontiguousarray(chunk[name])) for name in _ARRAYS})
        tensors.update({f"{i}.snapshot.{step}": torch.from_numpy(np.ascontiguousarray(image))
                        for step, image in chunk["snapshots"].items()})
    place.save_partial({"units": np.asarray(units).tolist(), "chunks": len(chunks),
                        "snapshots": [sorted(int(s) for s in c["snapshots"]) for c in chunks]}, tensors)


def kept_chunks(place: Slot, units: np.ndarray) -> list[dict]:
    """The batches an interrupted run of the same call finished, for the same units; else none."""
    kept = place.load_partial()
    if kept is None or kept[0].get("units") != np.asarray(units).tolist():
        return []
    meta, tensors = kept
    return [{**{name: tensors[f"{i}.{name}"].numpy() for name in _ARRAYS},
             "snapshots": {step: tensors[f"{i}.snapshot.{step}"].numpy() for step in meta["snapshots"][i]}}
            for i in range(meta["chunks"])]
