"""The result of a network inversion: reconstructions per layer, and how far they are from the original."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class InversionResult:
    """Reconstructions of the same images from several layers' features.

    Attributes:
        original: float32 [N, C, H, W] in [0, 1], the images that were inverted (C: the model's channels).
        images: layer -> float32 [N, C, H, W] in [0, 1], the reconstruction from that layer.
        feature_errors: layer -> float32 [N], ``||Phi(x) - Phi0||^2 / ||Phi0||^2`` of the reconstruction
            (Mahendran & Vedaldi's normalized feature error), measured on unperturbed features.
        pixel_errors: layer -> float32 [N], ``||x - x0||^2 / ||x0 - mean(x0)||^2``: the share of the
            original's pixel variance the reconstruction misses (0 is perfect; 1 is as far as a flat grey
            image at the mean).
        method: ``"regularized"`` or ``"upconv"``.
        perturbation: None, ``"binarize"`` or ``"dropout"`` (applied to the features before inverting).
        model_name, meta: where it came from, and the settings used.
    """

    original: np.ndarray
    images: dict[str, np.ndarray]
    feature_errors: dict[str, np.ndarray]
    pixel_errors: dict[str, np.ndarray]
    method: str
    perturbation: str | None = None
    model_name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.images)

    @property
    def errors(self) -> dict[str, dict[str, float]]:
        """Per layer, the mean normalized feature and pixel errors over the images."""
        return {layer: {"feature": float(np.mean(self.feature_errors[layer])),
                        "pixel": float(np.mean(self.pixel_errors[layer]))} for layer in self.layers}

    def table(self) -> str:
        """The errors per layer as aligned text."""
        rows = [("layer", "feature error", "pixel error")]
        rows += [(layer, f"{e['feature']:.4f}", f"{e['pixel']:.4f}") for layer, e in self.errors.items()]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                         for r in rows)

    def __repr__(self) -> str:
        label = self.method + (f", {self.perturbation}" if self.perturbation else "")
        return f"InversionResult({self.model_name!r}, {label}, images={len(self.original)}, layers={self.layers})\n" \
               + self.table()

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write to one ``.safetensors`` file (arrays, plus the settings as JSON in its header)."""
        from safetensors.numpy import save_file

        path = Path(path)
        arrays = {"original": np.ascontiguousarray(self.original, dtype=np.float32)}
        for i, layer in enumerate(self.layers):
            arrays[f"images.{i}"] = np.ascontiguousarray(self.images[layer], dtype=np.float32)
            arrays[f"feature_errors.{i}"] = np.asarray(self.feature_errors[layer], dtype=np.float32)
            arrays[f"pixel_errors.{i}"] = np.asarray(self.pixel_errors[layer], dtype=np.float32)
        meta = {"kind": "InversionResult", "layers": self.layers, "method": self.method,
                "perturbation": self.perturbation, "model_name": self.model_name, "meta": self.meta}
        save_file(arrays, str(path), metadata={"cnnvis": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "InversionResult":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            if "cnnvis" not in header:
                raise ValueError(f"{path} is not a saved InversionResult (no 'cnnvis' metadata).")
            meta = json.loads(header["cnnvis"])
            if meta.get("kind") != "InversionResult":
                raise ValueError(f"{path} holds a {meta.get('kind')}, not an InversionResult.")
            get = f.get_tensor
            layers = meta["layers"]
            return cls(original=get("original"), images={l: get(f"images.{i}") for i, l in enumerate(layers)},
                       feature_errors={l: get(f"feature_errors.{i}") for i, l in enumerate(layers)},
                       pixel_errors={l: get(f"pixel_errors.{i}") for i, l in enumerate(layers)},
                       method=meta["method"], perturbation=meta["perturbation"], model_name=meta["model_name"],
                       meta=meta.get("meta", {}))


def pixel_error(reconstruction: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``||x - x0||^2 / ||x0 - mean(x0)||^2`` per image (arrays [N, C, H, W])."""
    x, x0 = np.asarray(reconstruction, np.float64), np.asarray(original, np.float64)
    centred = x0 - x0.mean(axis=(1, 2, 3), keepdims=True)
    return (((x - x0) ** 2).sum((1, 2, 3)) / np.maximum((centred ** 2).sum((1, 2, 3)), 1e-12)).astype(np.float32)


__all__ = ["InversionResult", "pixel_error"]
