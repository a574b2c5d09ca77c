"""The result of activation maximization: one image per unit (or several), with their objective values.

Saved as one ``.safetensors`` file (arrays, with the layer, seed and preset as JSON metadata) and read back
with :meth:`AMResult.load`; it displays as a :class:`~cnnvis_widgets.widgets.neuron_gallery.NeuronGallery`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .presets import AMConfig
from .transforms import transforms_from_dict


@dataclass
class AMResult:
    """What :func:`activation_maximization` returns.

    Attributes:
        layer: the target layer (``None``: the model's output).
        units: the optimized units, int array [U].
        images: float32 in [0, 1], [U, C, H, W] (C: the model's channels), or [U, n, C, H, W] when ``n_per_unit > 1``.
        activations: the objective of every image on its final image, without random transforms,
            [U] or [U, n].
        history: the objective (on the transformed images) at every step, [steps, U * n].
        snapshots: step -> images at that step (step 0: the initial images), shaped like ``images``.
        config: the preset with overrides that ran.
        seed: the seed.
        transparency: per image, the sum over steps of ``|d objective / d image|``, shaped like ``images``
            (Fel et al. 2023's transparency map: where the optimization pushed the pixels, i.e. what
            mattered); ``None`` for results saved without it.
        labels: a name per unit where the units are the model's classes (class AM of the output with
            ``model.classes`` known), else ``None``.
    """

    layer: str | None
    units: np.ndarray
    images: np.ndarray
    activations: np.ndarray
    history: np.ndarray
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    config: AMConfig | None = None
    seed: int = 0
    transparency: np.ndarray | None = None
    labels: list[str] | None = None

    def __repr__(self) -> str:
        return (f"AMResult(layer={self.layer!r}, units={len(self.units)}, images={tuple(self.images.shape)}, "
                f"steps={self.history.shape[0]})")

    def save(self, path) -> Path:
        """Write to one ``.safetensors`` file (arrays, with the layer, seed and config as JSON metadata)."""
        from safetensors.numpy import save_file

        arrays = {"units": self.units, "images": self.images, "activations": self.activations,
                  "history": self.history, **{f"snapshot_{k}": v for k, v in self.snapshots.items()}}
        if self.transparency is not None:
            arrays["transparency"] = self.transparency
        config = None if self.config is None else dataclasses.asdict(self.config)
        meta = {"kind": "AMResult", "layer": self.layer, "seed": self.seed, "config": config, "labels": self.labels}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path),
                  metadata={"cnnvis": json.dumps(meta)})
        return Path(path)

    @classmethod
    def load(cls, path) -> "AMResult":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("cnnvis", "{}"))
            if meta.get("kind") != "AMResult":
                raise ValueError(f"{path} is not a saved AMResult (no 'cnnvis' metadata of that kind).")
            arrays = {name: f.get_tensor(name) for name in f.keys()}
        config = meta["config"]
        if config is not None:
            transforms = config.pop("transforms")
            config = AMConfig(**config, transforms=None if transforms is None else transforms_from_dict(transforms))
        snapshots = {int(k.removeprefix("snapshot_")): v for k, v in arrays.items() if k.startswith("snapshot_")}
        return cls(layer=meta["layer"], units=arrays["units"], images=arrays["images"],
                   activations=arrays["activations"], history=arrays["history"], snapshots=snapshots,
                   config=config, seed=meta["seed"], transparency=arrays.get("transparency"),
                   labels=meta.get("labels"))


__all__ = ["AMResult"]
