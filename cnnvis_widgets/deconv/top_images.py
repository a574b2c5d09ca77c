"""Top activations: for every unit of a layer, the dataset images (and positions) where it fires most.

The images are streamed in batches; per batch, each unit's spatial maximum is merged into a running
top-k on the model's device (one sort of k + batch candidates per unit), so memory is bounded by the
batch, never by the dataset. Each winner comes with the crop of the image under the unit's receptive
field, as in the figures of Zeiler & Fergus 2014 ("Visualizing and Understanding Convolutional Networks",
Fig. 2) and the top-image panels of Bau et al. 2017 (Network Dissection).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..cache.results import Slot, slot
from ..distributed.group import current as current_group
from ..distributed.merge import merge_ranked
from ..images import ImageSource
from ..model import Model, feature_layer, run_until
from ..progress import progress_reporter
from ..receptive_field import ReceptiveField
from ..resizing import ResizePolicy
from .filter_pictures import filter_images
from .projection import deconvnet, display_projection
from .rules import RULES


KEEP_EVERY_S = 30.0  # seconds between saves of an unfinished scan's running top-k (with a cache)


@dataclass
class TopActivations:
    """The result of :func:`top_activations` for one layer.

    Attributes:
        layer, model_name: where it came from.
        indices: int64 [units, k], dataset image indices, strongest first.
        values: float32 [units, k], the unit's maximum over positions in that image.
        positions: int64 [units, k, 2], (row, column) of that maximum in the layer's grid; -1 for
            layers without space (fully connected).
        boxes: int64 [units, k, 4], (top, left, bottom, right) of each crop in pixels of the image the model
            saw (half-open; may extend past the image, where the crop is padded grey). ``fit`` and
            :meth:`~cnnvis_widgets.images.ImageSource.seen_box` map them onto the original images.
        crops: uint8 [units, k, C, h, w], the image under each unit's receptive field.
        receptive_field: the layer's receptive field, or None where a unit sees the whole image.
        filters: uint8 [units, C, kh, kw] for a first conv layer (its filters as images), else None.
        projections: uint8 [units, k, C, h, w], the DeconvNet projection of each top activation cut like
            ``crops`` (zero at mid-grey; Zeiler & Fergus 2014, Fig. 2), when asked for; else None.
        image_size: (H, W) of the images the model saw.
        num_images: how many images were scanned.
        fit: the resize policy that brought the dataset's images to ``image_size`` (the model's).
    """

    layer: str
    model_name: str
    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    crops: np.ndarray
    receptive_field: ReceptiveField | None
    image_size: tuple[int, int]
    num_images: int
    filters: np.ndarray | None = None
    projections: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    fit: ResizePolicy = field(default_factory=ResizePolicy)

    @property
    def units(self) -> int:
        return self.indices.shape[0]

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def __repr__(self) -> str:
        return (f"TopActivations({self.model_name!r}, layer={self.layer!r}, units={self.units}, k={self.k}, "
                f"images={self.num_images})")

    # -- persistence --------------------------------------------------------------------------------------
    _ARRAYS = ("indices", "values", "positions", "boxes", "crops", "filters", "projections")

    def save(self, path: str | Path) -> Path:
        """Write to one ``.safetensors`` file (arrays, plus the metadata as JSON in its header)."""
        from safetensors.numpy import save_file

        path = Path(path)
        arrays = {name: np.ascontiguousarray(getattr(self, name)) for name in self._ARRAYS if getattr(self, name) is not None}
        rf = self.receptive_field
        meta = {
            "kind": "TopActivations", "layer": self.layer, "model_name": self.model_name,
            "receptive_field": None if rf is None else [rf.size, rf.stride, rf.start, rf.global_context],
            "image_size": list(self.image_size), "num_images": self.num_images, "meta": self.meta,
            "fit": self.fit.to_dict(),
        }
        save_file(arrays, str(path), metadata={"cnnvis": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TopActivations":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            if "cnnvis" not in header:
                raise ValueError(f"{path} is not a saved TopActivations result (no 'cnnvis' metadata).")
            meta = json.loads(header["cnnvis"])
            arrays = {name: f.get_tensor(name) for name in f.keys()}
        rf = meta["receptive_field"]
        return cls(
            layer=meta["layer"], model_name=meta["model_name"], num_images=meta["num_images"],
            receptive_field=None if rf is None else ReceptiveField(*(tuple(v) for v in rf[:3]), *rf[3:]),
            image_size=tuple(meta["image_size"]), meta=meta.get("meta", {}),
            fit=ResizePolicy.from_dict(meta.get("fit")),  # files from before the policy: squashed
            filters=arrays.pop("filters", None), projections=arrays.pop("projections", None), **arrays,
        )


def _merge_top_k(top_values, top_indices, top_positions, values, indices, positions, k):
    """Merge a batch's candidates [units, B] into the running top-k [units, k'] (stable: earlier wins ties)."""
    cand_values = torch.cat([top_values, values], 1)
    order = torch.argsort(cand_values, dim=1, descending=True, stable=True)[:, :k]
    return (cand_values.gather(1, order), torch.cat([top_indices, indices], 1).gather(1, order),
            torch.cat([top_positions, positions], 1).gather(1, order))


def top_activations(model: Model, dataset, layer: str, k: int = 9, batch_size: int = 64, crop_size: int = 64,
                    num_workers: int = 0, progress: bool | Callable[[float], None] = True,
                    projections: str | None = None, devices=None, timeout: float = 300.0,
                    cache=None) -> TopActivations:
    """For every unit of ``layer``, the ``k`` images of ``dataset`` where it fires most.

    A unit's response to an image is its maximum over spatial positions (Zeiler & Fergus 2014 §2.1 show
    "the top 9 activations" per feature map this way). Ties keep the earlier image.

    Args:
        model: a :class:`Model`.
        dataset: images in [0, 1]: a tensor [N, C, H, W] (C: the model's channels), a list of images or paths,
            or a dataset object; brought to the model's input size by its resize policy (``model.fit``).
        layer: a name from ``model.layers``.
        k: images per unit.
        batch_size: images per forward pass.
        crop_size: the largest side of a stored crop; larger receptive fields are downsampled to it.
        num_workers: data-loading worker processes for dataset objects.
        progress: show a progress bar, or a callable receiving the fraction done.
        projections: also project every top activation back to pixels with this rule of
            :func:`~cnnvis_widgets.deconv.projection.deconvnet` (``"deconvnet"``, ``"guided"``, ``"gradient"``), cut to
            the same boxes as the crops, as Zeiler & Fergus 2014 show them side by side.
        devices: spread the scan over these devices, one worker process each (``["cuda:0", "cuda:1"]``,
            ``"all"`` or ``["cpu", "cpu"]``; :func:`~cnnvis_widgets.distributed.run_on_devices`). Every image is
            scanned in the same batch as in one process and the lists merge by value, ties to the earlier image:
            indices, values, positions, boxes and crops are the single process's bit for bit, given the same
            activations (the README's "Running at scale" says when they are). Under ``torchrun`` leave it None
            (:func:`cnnvis_widgets.distributed.join`): each rank scans its shard and the ranks merge.
        timeout: with ``devices``, the longest wait: seconds a worker may go without reporting, while starting
            or scanning, before the job ends with an error naming it.
        cache: look the call up in the result cache (:mod:`cnnvis_widgets.cache`) and store what it computes:
            None (the configured cache), True, False, or a folder. An interrupted scan (an error, a cancel,
            a kernel interrupt) keeps the running top-k there and the next identical call resumes from it.
    """
    info = feature_layer(model, layer, "top_activations")  # a wrong layer name fails before any fingerprinting
    settings = {"layer": layer, "k": k, "crop_size": crop_size, "projections": projections}
    place = slot("top_activations", model, dataset, settings, cache)
    if place is not None:
        hit = place.load(TopActivations)
        if hit is not None:
            return hit
    if devices is not None:
        from ..distributed.launch import spread

        result = spread(top_activations, devices, dict(
            model=model, dataset=dataset, layer=layer, k=k, batch_size=batch_size, crop_size=crop_size,
            num_workers=num_workers, projections=projections, cache=False), timeout, progress)
    else:
        result = _scan(model, info, dataset, layer, k, batch_size, crop_size, num_workers, progress, projections,
                       place)
    if place is not None:
        place.save(result)
    return result


@torch.no_grad()
def _scan(model: Model, info, dataset, layer: str, k: int, batch_size: int, crop_size: int, num_workers: int, progress,
          projections: str | None, place: Slot | None) -> TopActivations:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    if projections is not None:
        if projections not in RULES:
            raise ValueError(f"projections must be None or one of {', '.join(RULES)}; got {projections!r}.")
    source = model.image_source(dataset)
    n = len(source)
    k_eff = min(k, n)
    device = model.device
    units = info.units
    top_values = torch.empty(units, 0, device=device)
    top_indices = torch.empty(units, 0, dtype=torch.long, device=device)
    top_positions = torch.empty(units, 0, dtype=torch.long, device=device)
    width = info.output_shape[-1] if info.spatial else 1
    group = current_group()
    lo, hi = group.block(n, batch_size)
    done = lo
    partial = place.load_partial() if place is not None else None
    if partial is not None and partial[0].get("range") == [lo, hi] and partial[0].get("k") == k_eff:
        done = int(partial[0]["done"])
        top_values, top_indices, top_positions = (partial[1][name].to(device) for name in ("values", "indices",
                                                                                          "positions"))
    bar, report = progress_reporter(progress if group.leader or callable(progress) else False, hi - lo,
                                    f"top activations of {layer}")
    report(done - lo)
    captured: list[torch.Tensor] = []
    last_kept = time.monotonic()

    def keep() -> None:  # what the scan has finished, for the next identical call
        if place is not None and done > lo:
            place.save_partial({"range": [lo, hi], "k": k_eff, "done": done},
                               {"values": top_values, "indices": top_indices, "positions": top_positions})

    try:
        with model.inference():
            for start, batch in source.batches(batch_size, num_workers, done, hi):
                captured.clear()
                run_until(model, batch.to(device, non_blocking=True), layer,
                          lambda out: captured.append(out.flatten(2).max(2) if out.ndim == 4 else (out, None)))
                values, argmax = captured[0]
                b = values.shape[0]
                positions = argmax.T if argmax is not None else torch.full((units, b), -1, dtype=torch.long, device=device)
                indices = torch.arange(start, start + b, device=device).expand(units, b)
                top_values, top_indices, top_positions = _merge_top_k(
                    top_values, top_indices, top_positions, values.float().T, indices, positions, k_eff)
                done = start + b
                if place is not None and time.monotonic() - last_kept > KEEP_EVERY_S:
                    keep()
                    last_kept = time.monotonic()
                report(b)
    except BaseException:
        keep()
        raise
    finally:
        if bar is not None:
            bar.close()
    top_values, top_indices, carried = merge_ranked(top_values, top_indices, {"positions": top_positions}, k_eff,
                                                    group)
    top_positions = carried["positions"]
    indices = top_indices.cpu().numpy()
    flat = top_positions.cpu().numpy()
    positions = np.where(flat[..., None] >= 0, np.stack([flat // width, flat % width], -1), -1)
    rf = info.receptive_field if info.spatial else None
    boxes = _crop_boxes(rf, positions, model.input_size[1:])
    crops = _crops(source, indices, boxes, crop_size)
    projected = None
    if projections is not None:
        projected = projection_crops(model, source, layer, indices, positions, boxes, crop_size, projections,
                                      batch_size)
    first_conv = _is_first_conv(model, layer)
    return TopActivations(
        layer=layer, model_name=model.name, indices=indices, values=top_values.cpu().numpy().astype(np.float32),
        positions=positions.astype(np.int64), boxes=boxes, crops=crops, receptive_field=rf,
        image_size=tuple(model.input_size[1:]), num_images=n,
        filters=filter_images(model, layer) if first_conv else None, projections=projected,
        meta={"projection_rule": projections} if projections else {}, fit=model.fit,
    )


def _is_first_conv(model: Model, layer: str) -> bool:
    module = model.submodule(layer)
    return isinstance(module, torch.nn.Conv2d) and module.in_channels == model.channels


def _crop_boxes(rf: ReceptiveField | None, positions: np.ndarray, image_size) -> np.ndarray:
    """Crop windows [units, k, 4]: the receptive field, at most image-sized, centred on it."""
    h, w = image_size
    units, k = positions.shape[:2]
    if rf is None:
        return np.broadcast_to(np.array([0, 0, h, w]), (units, k, 4)).astype(np.int64).copy()
    out = np.empty((units, k, 4), dtype=np.int64)
    for axis, limit in ((0, h), (1, w)):
        size = min(rf.size[axis], limit)
        lo = rf.start[axis] + positions[..., axis] * rf.stride[axis] + (rf.size[axis] - size) // 2
        out[..., axis], out[..., axis + 2] = lo, lo + size
    return out


def _crops(source: ImageSource, indices: np.ndarray, boxes: np.ndarray, crop_size: int) -> np.ndarray:
    """Cut every box out of its image (grey outside the image) as uint8 [units, k, C, h, w]."""
    units, k = indices.shape
    unique, inverse = np.unique(indices, return_inverse=True)
    crops = cut_boxes(source.images(unique.tolist()), torch.from_numpy(inverse.reshape(-1)),
                      torch.from_numpy(boxes.reshape(-1, 4)), crop_size, fill=0.5)
    crops = (crops.clamp(0, 1) * 255).round().to(torch.uint8)
    return crops.reshape(units, k, *crops.shape[1:]).numpy()


def cut_boxes(images: torch.Tensor, which: torch.Tensor, boxes: torch.Tensor, crop_size: int,
              fill: float) -> torch.Tensor:
    """Crops [M, C, h, w]: box ``boxes[m]`` (equal sizes) of image ``images[which[m]]``, ``fill`` outside the
    image, downsampled so the longer side is at most ``crop_size``; one vectorized gather.

    A box larger than ``crop_size`` is cut from the image downsampled once to the crop's scale (its corner
    rounded to that grid), not cut at full size and then downsampled: the cost and memory then grow with
    the number of images, not with units x k (a deep layer's boxes cover the whole image)."""
    ch, cw = int(boxes[0, 2] - boxes[0, 0]), int(boxes[0, 3] - boxes[0, 1])
    pad = max(ch, cw)
    padded = F.pad(images, (pad, pad, pad, pad), value=fill)
    boxes = boxes + pad
    if max(ch, cw) > crop_size:
        scale = crop_size / max(ch, cw)
        h, w = padded.shape[-2:]
        padded = F.interpolate(padded, size=(max(1, round(h * scale)), max(1, round(w * scale))),
                               mode="bilinear", antialias=True, align_corners=False)
        fy, fx = padded.shape[-2] / h, padded.shape[-1] / w
        ch, cw = max(1, round(ch * scale)), max(1, round(cw * scale))
        top = (boxes[:, 0].double() * fy).round().long().clamp(0, padded.shape[-2] - ch)
        left = (boxes[:, 1].double() * fx).round().long().clamp(0, padded.shape[-1] - cw)
        boxes = torch.stack([top, left], 1)
    rows = boxes[:, :1] + torch.arange(ch)  # [M, ch]
    cols = boxes[:, 1:2] + torch.arange(cw)  # [M, cw]
    return padded[which[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def projection_crops(model: Model, source, layer: str, indices: np.ndarray, positions: np.ndarray,
                     boxes: np.ndarray, crop_size: int, rule: str, batch_size: int,
                     on_batch: Callable[[slice, torch.Tensor], None] | None = None) -> np.ndarray:
    """The deconvnet projection of every (unit, top image) at its position, cut like the image crops and
    scaled for display (zero at mid-grey), as uint8 [units, k, C, h, w].

    ``on_batch(rows, projections)`` sees each batch's full projections [B, C, H, W] (rows of the flattened
    [units * k] order) before they are cut, for measures that need the whole image."""
    units, k = indices.shape
    unit_of = np.repeat(np.arange(units), k)
    flat_indices, flat_positions, flat_boxes = indices.reshape(-1), positions.reshape(-1, 2), boxes.reshape(-1, 4)
    spatial = model.layer(layer).spatial
    out = []
    for start in range(0, len(unit_of), batch_size):
        part = slice(start, start + batch_size)
        projected = deconvnet(model, source, layer, unit=unit_of[part],
                              position=flat_positions[part] if spatial else None, rule=rule,
                              image_indices=flat_indices[part], batch_size=batch_size)
        m = len(projected)
        full = torch.from_numpy(projected.projections)
        if on_batch is not None:
            on_batch(part, full)
        crops = cut_boxes(full, torch.arange(m),
                          torch.from_numpy(flat_boxes[part]), crop_size, fill=0.0)
        shown = torch.from_numpy(display_projection(crops.numpy()))
        out.append((shown.clamp(0, 1) * 255).round().to(torch.uint8))
    crops = torch.cat(out)
    return crops.reshape(units, k, *crops.shape[1:]).numpy()
