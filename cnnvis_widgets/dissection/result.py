"""The result of a Network Dissection: per-unit tallies, IoU, labels, summaries, CSV and HTML.

Bau, Zhou, Khosla, Oliva and Torralba, "Network Dissection: Quantifying Interpretability of Deep Visual
Representations", CVPR 2017. For unit k and concept c, over the whole dataset::

    IoU(k, c) = I(k, c) / (A(k, cat(c)) + G(c) - I(k, c))

``I`` counts the pixels where the unit's thresholded, upsampled map and the concept's mask agree, ``G`` the
concept's pixels (an image-level label covers the whole image), and ``A`` the unit's active pixels in the
images that carry any label of the concept's primary category (NetDissect-Lite's ``tally_units_cat``). A
unit's label is its best concept; it is a detector when that IoU reaches ``iou_threshold``.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file

FORMAT_VERSION = 1
UPSAMPLE_MODES = ("bilinear", "receptive_field")


@dataclass
class LayerDissection:
    """One layer's tallies.

    Attributes:
        layer: the layer's name.
        thresholds: float32 [units], T_k (the activation above which a unit counts as on).
        intersection: int64 [units, concepts], I(k, c).
        unit_pixels: int64 [units, categories], A(k, category).
        top_indices: int64 [units, k], dataset indices of each unit's images with the largest maximum
            activation, best first.
        top_values: float32 [units, k], those maxima.
        top_maps: float32 [units, k, h, w], the unit's activation maps on those images (masks are derived
            from them with :meth:`DissectionResult.unit_masks`).
        field: the layer's receptive field as (size, stride, start) pairs, for receptive-field upsampling.
        input_size: (H, W) of the model's input.
    """

    layer: str
    thresholds: np.ndarray
    intersection: np.ndarray
    unit_pixels: np.ndarray
    top_indices: np.ndarray
    top_values: np.ndarray
    top_maps: np.ndarray
    field: tuple | None = None
    input_size: tuple[int, int] = (224, 224)

    @property
    def units(self) -> int:
        return int(self.thresholds.shape[0])


@dataclass
class DissectionResult:
    """Tallies of :func:`~cnnvis_widgets.dissection.dissect` for several layers, and what they mean.

    Concepts are the dataset's labels, in ascending label number; ``concept_names[j]`` is concept ``j``
    and ``concept_categories[j]`` its primary category. Methods give the IoU table (:meth:`iou`), unit
    labels (:meth:`labels`, :meth:`table`), the layer summary (:meth:`summary`), CSV files in
    NetDissect-Lite's columns (:meth:`to_csv`), a self-contained HTML report (:meth:`to_html`) and each
    unit's top images with masks (:meth:`unit_images`, needs the dataset). ``channels`` is the model's input
    channel count: top images are shown as the model saw them (grayscale for a one-channel model).
    """

    model_name: str
    categories: list[str]
    concept_numbers: np.ndarray
    concept_names: list[str]
    concept_categories: list[str]
    concept_pixels: np.ndarray
    category_images: np.ndarray
    seg_size: tuple[int, int]
    num_images: int
    layers: dict[str, LayerDissection]
    options: dict = field(default_factory=dict)
    dataset_root: str | None = None
    dataset_split: str | None = None
    channels: int = 3
    dataset: object | None = field(default=None, repr=False, compare=False)

    # -- tables --------------------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    @property
    def quantile(self) -> float:
        return float(self.options.get("quantile", 0.005))

    @property
    def iou_threshold(self) -> float:
        return float(self.options.get("iou_threshold", 0.04))

    def _layer(self, layer: str | None) -> LayerDissection:
        if layer is None:
            if len(self.layers) != 1:
                raise ValueError(f"This result has layers {', '.join(self.layers)}; pass layer=.")
            return next(iter(self.layers.values()))
        try:
            return self.layers[layer]
        except KeyError:
            raise KeyError(f"Layer {layer!r} was not dissected; this result has {', '.join(self.layers)}. "
                           "Run cv.dissect(..., layers=[...]) with it.") from None

    @property
    def concept_category_index(self) -> np.ndarray:
        """int64 [concepts]: the index in ``categories`` of each concept's primary category."""
        return np.array([self.categories.index(c) for c in self.concept_categories], dtype=np.int64)

    def iou(self, layer: str | None = None) -> np.ndarray:
        """float64 [units, concepts]: IoU(k, c); 0 where neither the unit nor the concept has a pixel."""
        d = self._layer(layer)
        inter = d.intersection.astype(np.float64)
        active = d.unit_pixels.astype(np.float64)[:, self.concept_category_index]
        union = active + self.concept_pixels.astype(np.float64)[None] - inter
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

    def labels(self, layer: str | None = None) -> dict[str, np.ndarray]:
        """Each unit's best concept overall and in every category.

        Returns ``concept`` (int64 [units], index into ``concept_names``), ``iou`` (float64 [units]),
        ``detector`` (bool [units], iou >= iou_threshold), and ``category_concept`` / ``category_iou``
        ([units, categories]; -1 and 0 for a category without concepts). A concept competes only in its
        primary category, as in NetDissect.
        """
        iou = self.iou(layer)
        units = iou.shape[0]
        cat_index = self.concept_category_index
        cat_concept = np.full((units, len(self.categories)), -1, dtype=np.int64)
        cat_iou = np.zeros((units, len(self.categories)))
        for c in range(len(self.categories)):
            members = np.flatnonzero(cat_index == c)
            if members.size:
                best = iou[:, members].argmax(1)
                cat_concept[:, c] = members[best]
                cat_iou[:, c] = iou[np.arange(units), members[best]]
        best = iou.argmax(1) if iou.shape[1] else np.zeros(units, dtype=np.int64)
        best_iou = iou[np.arange(units), best] if iou.shape[1] else np.zeros(units)
        return {"concept": best.astype(np.int64), "iou": best_iou, "detector": best_iou >= self.iou_threshold,
                "category_concept": cat_concept, "category_iou": cat_iou}

    def table(self, layer: str | None = None):
        """A pandas DataFrame, one row per unit: unit, label, category, iou, detector, then per category
        ``<category>-label`` and ``<category>-iou``."""
        import pandas as pd

        labels = self.labels(layer)
        rows = []
        for unit in range(labels["concept"].shape[0]):
            c = int(labels["concept"][unit])
            row = {"unit": unit, "label": self.concept_names[c], "category": self.concept_categories[c],
                   "iou": float(labels["iou"][unit]), "detector": bool(labels["detector"][unit])}
            for k, category in enumerate(self.categories):
                best = int(labels["category_concept"][unit, k])
                row[f"{category}-label"] = self.concept_names[best] if best >= 0 else ""
                row[f"{category}-iou"] = float(labels["category_iou"][unit, k])
            rows.append(row)
        return pd.DataFrame(rows)

    def detectors(self, layer: str | None = None) -> dict[str, list[str]]:
        """``{category: [concepts with at least one detector unit]}``, in category order."""
        labels = self.labels(layer)
        out: dict[str, list[str]] = {c: [] for c in self.categories}
        for c in np.unique(labels["concept"][labels["detector"]]):
            out[self.concept_categories[c]].append(self.concept_names[c])
        return out

    def summary(self):
        """A pandas DataFrame: per layer (rows) the number of unique concepts detected per category
        (columns), plus the detector units and all units — Bau et al.'s interpretability summary."""
        import pandas as pd

        rows = []
        for layer in self.layers:
            found = self.detectors(layer)
            labels = self.labels(layer)
            row = {category: len(found[category]) for category in self.categories}
            row["unique concepts"] = sum(row.values())
            row["detector units"] = int(labels["detector"].sum())
            row["units"] = int(labels["detector"].shape[0])
            rows.append(row)
        return pd.DataFrame(rows, index=pd.Index(list(self.layers), name="layer"))

    def __repr__(self) -> str:
        layers = ", ".join(f"{name} ({d.units} units)" for name, d in self.layers.items())
        return (f"DissectionResult({self.model_name!r}, {self.num_images} images, {len(self.concept_names)} "
                f"concepts, layers: {layers}; quantile={self.quantile}, iou_threshold={self.iou_threshold})")

    # -- masks and images ----------------------------------------------------------------------------------
    def upsample(self, layer: str, maps: torch.Tensor) -> torch.Tensor:
        """Activation maps [N, U, h, w] of ``layer`` → [N, U, sh, sw] with this result's upsampling."""
        d = self._layer(layer)
        return upsample_maps(maps, self.seg_size, self.options.get("upsample", "bilinear"), d.field,
                             d.input_size)

    def unit_masks(self, layer: str, unit: int) -> np.ndarray:
        """bool [k, sh, sw]: where ``unit`` is on (upsampled map > T_k) in each of its top images."""
        d = self._layer(layer)
        maps = torch.from_numpy(d.top_maps[unit]).float()[:, None]
        up = self.upsample(layer, maps)[:, 0]
        return (up > float(d.thresholds[unit])).numpy()

    def _dataset(self):
        if self.dataset is not None:
            return self.dataset
        if self.dataset_root and Path(self.dataset_root).is_dir():
            from ..datasets import Broden

            self.dataset = Broden(self.dataset_root, split=self.dataset_split)
            return self.dataset
        raise RuntimeError("The dataset of this dissection is not available (it was saved without it or moved); "
                           "set result.dataset = cv.datasets.Broden(path, split=...) to show images.")

    def unit_images(self, layer: str, unit: int, concept: int | None = None, k: int | None = None):
        """A unit's top images with its mask and a concept's mask (default: the unit's label).

        Returns ``(images uint8 [k, H, W, C], unit_masks bool [k, sh, sw], concept_masks bool [k, sh, sw])``,
        the images read with the model's ``channels`` (:func:`~cnnvis_widgets.images.to_tensor`).
        """
        from ..images import to_tensor

        d = self._layer(layer)
        dataset = self._dataset()
        if concept is None:
            concept = int(self.labels(layer)["concept"][unit])
        number = int(self.concept_numbers[concept])
        indices = d.top_indices[unit][: k or d.top_indices.shape[1]]
        indices = indices[indices >= 0]
        images, truth = [], []
        for i in indices:
            image = to_tensor(dataset[int(i)], self.channels)
            images.append((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
            masks = dataset.label_masks(int(i))
            mask = masks.get(number)
            if mask is not None and mask.shape != tuple(self.seg_size):
                mask = _resize_mask(mask, self.seg_size)
            truth.append(mask if mask is not None else np.zeros(self.seg_size, dtype=bool))
        unit_masks = self.unit_masks(layer, unit)[: len(indices)]
        empty = np.zeros((0, *self.seg_size), dtype=bool)
        return (np.stack(images) if images else np.zeros((0, 1, 1, self.channels), np.uint8), unit_masks,
                np.stack(truth) if truth else empty)

    # -- files ---------------------------------------------------------------------------------------------
    def to_csv(self, folder: str | os.PathLike) -> list[Path]:
        """One CSV per layer, ``<layer>.csv``, in NetDissect-Lite's ``tally.csv`` columns.

        Columns: ``unit,category,label,score`` (the unit's best concept and its IoU), then per category
        ``<cat>-label,<cat>-truth,<cat>-activation,<cat>-intersect,<cat>-iou``: the category's best
        concept, its pixel count G, the unit's active pixels A in that category, the intersection I and the
        IoU. Units are numbered from 1, as NetDissect-Lite numbers them; rows are sorted by score, best
        first, as there.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, d in self.layers.items():
            labels = self.labels(name)
            header = ["unit", "category", "label", "score"]
            for category in self.categories:
                header += [f"{category}-{column}" for column in ("label", "truth", "activation", "intersect", "iou")]
            order = np.argsort(-labels["iou"], kind="stable")
            path = folder / f"{_safe(name)}.csv"
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(header)
                for unit in order:
                    c = int(labels["concept"][unit])
                    row = [unit + 1, self.concept_categories[c], self.concept_names[c], f"{labels['iou'][unit]:.6f}"]
                    for k in range(len(self.categories)):
                        best = int(labels["category_concept"][unit, k])
                        if best < 0:
                            row += ["", 0, int(d.unit_pixels[unit, k]), 0, "0.000000"]
                            continue
                        row += [self.concept_names[best], int(self.concept_pixels[best]),
                                int(d.unit_pixels[unit, k]), int(d.intersection[unit, best]),
                                f"{labels['category_iou'][unit, k]:.6f}"]
                    writer.writerow(row)
            written.append(path)
        return written

    def to_html(self, path: str | os.PathLike, images_per_unit: int = 4) -> Path:
        """A self-contained HTML report: the summary, then per layer every unit's label, category, IoU and
        top images with the unit's mask (magenta outline) and the concept's mask (cyan). Images need the
        dataset; without it the report has the tables only."""
        from .overlay import overlay_png

        try:
            self._dataset()
            with_images = images_per_unit > 0
        except RuntimeError:
            with_images = False
        parts = [_HTML_HEAD.format(title=html.escape(f"Network Dissection of {self.model_name}"))]
        parts.append(f"<h1>Network Dissection of {html.escape(self.model_name)}</h1>")
        parts.append(f"<p>{self.num_images} images, {len(self.concept_names)} concepts; quantile "
                     f"{self.quantile}, IoU threshold {self.iou_threshold}.</p>")
        parts.append("<h2>Unique concepts detected per category</h2>")
        parts.append(self.summary().to_html(classes="summary"))
        for name in self.layers:
            labels = self.labels(name)
            parts.append(f"<h2>{html.escape(name)}</h2><div class='units'>")
            for unit in np.argsort(-labels["iou"], kind="stable"):
                c = int(labels["concept"][unit])
                flag = "detector" if labels["detector"][unit] else "none"
                parts.append(f"<div class='unit {flag}'><div class='head'>unit {unit}: "
                             f"<b>{html.escape(self.concept_names[c])}</b> ({html.escape(self.concept_categories[c])}) "
                             f"IoU {labels['iou'][unit]:.3f}</div>")
                if with_images:
                    images, unit_masks, truth = self.unit_images(name, int(unit), k=images_per_unit)
                    for image, unit_mask, concept_mask in zip(images, unit_masks, truth):
                        data = base64.b64encode(overlay_png(image, unit_mask, concept_mask)).decode()
                        parts.append(f"<img src='data:image/png;base64,{data}' alt='unit {unit}'>")
                parts.append("</div>")
            parts.append("</div>")
        parts.append("</body></html>")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(parts), encoding="utf-8")
        return path

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to one safetensors file (arrays) with its metadata; load with :meth:`load`."""
        path = Path(path)
        tensors = {"concept_numbers": self.concept_numbers.astype(np.int64),
                   "concept_pixels": self.concept_pixels.astype(np.int64),
                   "category_images": self.category_images.astype(np.int64)}
        layers = {}
        for k, (name, d) in enumerate(self.layers.items()):
            for key in ("thresholds", "intersection", "unit_pixels", "top_indices", "top_values", "top_maps"):
                tensors[f"{k}.{key}"] = np.ascontiguousarray(getattr(d, key))
            layers[name] = {"slot": k, "field": d.field, "input_size": list(d.input_size)}
        meta = {"format": FORMAT_VERSION, "model_name": self.model_name, "categories": self.categories,
                "concept_names": self.concept_names, "concept_categories": self.concept_categories,
                "seg_size": list(self.seg_size), "num_images": self.num_images, "layers": layers,
                "options": self.options, "dataset_root": self.dataset_root, "dataset_split": self.dataset_split,
                "channels": self.channels}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp, metadata={"dissection": json.dumps(meta)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DissectionResult":
        """Read a file written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads(f.metadata()["dissection"])
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path} holds dissection format {meta.get('format')}, this version reads "
                             f"{FORMAT_VERSION}; re-run cv.dissect to regenerate it.")
        arrays = load_file(str(path))
        layers = {}
        for name, info in meta["layers"].items():
            k = info["slot"]
            field_ = info["field"]
            layers[name] = LayerDissection(
                layer=name, **{key: arrays[f"{k}.{key}"] for key in
                               ("thresholds", "intersection", "unit_pixels", "top_indices", "top_values", "top_maps")},
                field=tuple(tuple(v) for v in field_) if field_ else None, input_size=tuple(info["input_size"]))
        return cls(model_name=meta["model_name"], categories=meta["categories"],
                   concept_numbers=arrays["concept_numbers"], concept_names=meta["concept_names"],
                   concept_categories=meta["concept_categories"], concept_pixels=arrays["concept_pixels"],
                   category_images=arrays["category_images"], seg_size=tuple(meta["seg_size"]),
                   num_images=meta["num_images"], layers=layers, options=meta["options"],
                   dataset_root=meta["dataset_root"], dataset_split=meta["dataset_split"],
                   channels=meta.get("channels", 3))


def upsample_maps(maps: torch.Tensor, seg_size: Sequence[int], mode: str = "bilinear", field=None,
                  input_size: Sequence[int] = (224, 224)) -> torch.Tensor:
    """Activation maps [N, U, h, w] → [N, U, sh, sw].

    ``"bilinear"`` stretches the map over the image (``F.interpolate``, ``align_corners=False``), as
    NetDissect does. ``"receptive_field"`` puts each activation at the centre of its receptive field
    (``field = ((size_h, size_w), (stride_h, stride_w), (start_h, start_w))`` in input pixels, scaled to the
    segmentation) and interpolates bilinearly between centres, holding the edge values beyond them — the
    alignment of Bau et al.'s later ``dissect`` code.
    """
    sh, sw = int(seg_size[0]), int(seg_size[1])
    if maps.shape[-2:] == (sh, sw) and mode == "bilinear":
        return maps
    if mode == "bilinear" or field is None:
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}; got {mode!r}.")
        return F.interpolate(maps, size=(sh, sw), mode="bilinear", align_corners=False)
    if mode != "receptive_field":
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}; got {mode!r}.")
    (size_h, size_w), (stride_h, stride_w), (start_h, start_w) = field
    h, w = maps.shape[-2:]
    grids = []
    for n_out, n_in, size, stride, start, full in ((sh, h, size_h, stride_h, start_h, input_size[0]),
                                                   (sw, w, size_w, stride_w, start_w, input_size[1])):
        # segmentation pixel centre → input pixel → fractional index into the activation grid
        pixel = (torch.arange(n_out, dtype=torch.float32, device=maps.device) + 0.5) * (full / n_out) - 0.5
        index = (pixel - (start + (size - 1) / 2)) / stride
        grids.append((index.clamp(0, n_in - 1) / max(n_in - 1, 1)) * 2 - 1 if n_in > 1 else index * 0)
    gy, gx = torch.meshgrid(grids[0], grids[1], indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].expand(maps.shape[0], -1, -1, -1).to(maps.dtype)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _resize_mask(mask: np.ndarray, size: Sequence[int]) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.uint8))[None, None].float()
    return (F.interpolate(t, size=tuple(size), mode="nearest")[0, 0] > 0.5).numpy()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


_HTML_HEAD = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; background: #fff; }}
table.summary {{ border-collapse: collapse; }} table.summary td, table.summary th {{ border: 1px solid #bbb; padding: 2px 8px; }}
.units {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.unit {{ border: 1px solid #ccc; border-radius: 4px; padding: 4px; }}
.unit.none {{ opacity: 0.6; }}
.unit img {{ width: 96px; height: 96px; image-rendering: pixelated; margin: 2px; }}
.head {{ font-size: 12px; }}
@media (prefers-color-scheme: dark) {{ body {{ color: #e8e8e8; background: #161616; }} .unit {{ border-color: #555; }} }}
</style></head><body>"""
