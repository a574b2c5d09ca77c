"""The result-cache key of an activation-maximization call (:mod:`cnnvis_widgets.cache`)."""

from __future__ import annotations

import numpy as np

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
