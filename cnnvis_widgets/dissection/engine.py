"""Network Dissection: label every unit of several layers with the concept its activations segment.

Bau, Zhou, Khosla, Oliva and Torralba, "Network Dissection: Quantifying Interpretability of Deep Visual
Representations", CVPR 2017 (reference code: NetDissect, NetDissect-Lite). Two streamed passes over a
Broden-format dataset, all units of all requested layers at once:

1. thresholds: T_k, the top ``quantile`` of unit k's activations (:class:`TailQuantile`);
2. tallies: each map is upsampled to the segmentation size and thresholded (M_k = up(A_k) > T_k); the
   pixels where M_k meets each concept's mask, M_k's pixels per category, the concepts' pixels and each
   unit's top images are accumulated as tensors on the model's device.

Memory is bounded by the batch and the tallies ([units, concepts]) whatever the dataset's size; with
``checkpoint=`` the state is saved as it goes and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..cache.results import slot
from ..distributed.group import current as current_group
from ..distributed.merge import merge_ranked, merge_tail, rank_order, sum_counts
from ..model import HookSet, Model, StopForward, feature_layer
from ..progress import progress_reporter
from .checkpoint import Checkpoint, run_key
from .concepts import CodeCache, ConceptBatches, ConceptIndex
from .quantile import TailQuantile
from .result import UPSAMPLE_MODES, DissectionResult, LayerDissection, upsample_maps

THRESHOLD_ON = ("raw", "upsampled")
# Per-batch counts are summed in float32, exact below 2 ** 24.
_EXACT_FLOAT = 1 << 24
# Tests force the sparse (CPU) or dense (accelerator) tally path with this; None picks by device.
_SPARSE: bool | None = None
# Pass 1 writes the images it read to a temporary file of at most this many bytes, and pass 2 reads them
# back instead of decoding them again (a larger dataset is decoded twice).
_IMAGE_SPILL_BYTES = 1 << 31


def forward_layers(model: Model, images: torch.Tensor, layers: Sequence[str],
                   fn: Callable[[str, torch.Tensor], None]) -> None:
    """Forward ``images`` and call ``fn(layer, output)`` for each of ``layers`` (at its last call), inside
    the hook, before later in-place operations can change the output; stops after the last of them."""
    remaining = {name: model.layer(name).calls for name in layers}
    seen = dict.fromkeys(layers, 0)

    def make_hook(name):
        def hook(module, inputs, output):
            seen[name] += 1
            if seen[name] == remaining[name]:
                fn(name, output[0] if isinstance(output, (tuple, list)) else output)
                del remaining[name]
                if not remaining:
                    raise StopForward

        return hook

    hooks = HookSet(model)
    try:
        for name in layers:
            hooks.forward(name, make_hook(name))
        try:
            model(images)
        except StopForward:
            return
    finally:
        hooks.remove()
    raise RuntimeError(f"Layer(s) {', '.join(remaining)} did not run in the forward pass; pick layers from "
                       "model.layers that the module's forward actually calls.")


class _ImageSpill:
    """The images pass 1 read (float32 at the model's input size) in a temporary file that pass 2 reads back
    one image at a time: exact, on disk rather than in memory, removed when the run ends."""

    def __init__(self, path: Path, image_shape: tuple[int, ...]):
        self.path, self.image_shape = path, tuple(image_shape)
        self.image_bytes = 4 * int(np.prod(image_shape))
        self._file = open(path, "r+b")

    @classmethod
    def create(cls, n: int, image_shape: tuple[int, ...]) -> "_ImageSpill | None":
        """A spill for ``n`` images, or ``None`` when it would exceed ``_IMAGE_SPILL_BYTES``."""
        if 4 * n * int(np.prod(image_shape)) > _IMAGE_SPILL_BYTES:
            return None
        fd, name = tempfile.mkstemp(prefix="cnnvis-dissect-images-", suffix=".f32")
        os.close(fd)
        return cls(Path(name), image_shape)

    def write(self, start: int, images: torch.Tensor) -> None:
        self._file.seek(start * self.image_bytes)
        self._file.write(images.float().contiguous().numpy().tobytes())

    def reader(self) -> "_ImageSpill":
        """Itself, as the image source of pass 2 (everything written is flushed first)."""
        self._file.flush()
        return self

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as float [C, H, W], like ``ImageSource.image``; safe in DataLoader workers."""
        with open(self.path, "rb") as f:
            f.seek(index * self.image_bytes)
            data = bytearray(f.read(self.image_bytes))
        return torch.frombuffer(data, dtype=torch.float32).view(self.image_shape)

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def dissect(model: Model, dataset, layers: Sequence[str] | str, quantile: float = 0.005,
            iou_threshold: float = 0.04, batch_size: int = 64, upsample: str = "bilinear",
            threshold_on: str = "raw", exact_quantile: bool = False, quantile_capacity: int = 1 << 15,
            top_k: int = 10, num_workers: int = 0, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int = 20, cache: bool | str | os.PathLike = True,
            progress: bool | Callable[[float], None] = True, seed: int = 0, devices=None,
            timeout: float = 300.0, result_cache=None) -> DissectionResult:
    """Dissect every unit of ``layers`` on a Broden-format ``dataset`` (Bau et al. 2017).

    Args:
        model: a :class:`~cnnvis_widgets.Model`.
        dataset: a :class:`~cnnvis_widgets.datasets.Broden` (the real Broden or ShapeWorld).
        layers: layer names from ``model.layers`` with a spatial output.
        quantile: T_k is the top ``quantile`` of unit k's activations (NetDissect: 0.005).
        iou_threshold: a unit whose best IoU reaches it is a detector (Bau et al.: 0.04).
        batch_size: images per forward pass.
        upsample: ``"bilinear"`` (NetDissect) or ``"receptive_field"`` (maps aligned on the centres of the
            units' receptive fields).
        threshold_on: compute T_k on the ``"raw"`` maps (NetDissect-Lite) or the ``"upsampled"`` ones (the
            later ``dissect`` code).
        exact_quantile: keep every value the quantile needs (memory grows with quantile × positions)
            instead of subsampling positions once ``quantile_capacity`` values per unit are not enough.
        quantile_capacity: values kept per unit for the streamed quantile.
        top_k: images kept per unit (largest maximum activation) with their maps, for the masks shown.
        num_workers: DataLoader worker processes reading images and masks.
        checkpoint: a folder; the run's state is saved there every ``checkpoint_every`` batches and a run
            with the same model, dataset, layers and options resumes from it.
        cache: keep the decoded concept masks in a memory-mapped cache (``True``: under
            ``cv.datasets.default_cache_dir()``; a path: there; ``False``: decode the PNGs every time). It is
            written during the first dissection of a dataset (up to 2 GiB) and read by later ones.
            Independently, the images of pass 1 go to a temporary file (up to 2 GiB, removed at the end) that
            pass 2 reads instead of decoding them again.
        progress: show a progress bar, or a callable receiving the fraction done (both passes).
        seed: seeds the quantile's subsampling.
        devices: spread both passes over these devices, one worker process each (``["cuda:0", "cuda:1"]``,
            ``"all"`` or ``["cpu", "cpu"]``). Under ``torchrun`` leave it None
            (:func:`cnnvis_widgets.distributed.join`): each rank streams its shard of every round and the ranks
            merge (counts by all-reduce of int64, top images by value, thresholds from the gathered tails).
            Given the same activations (the README's "Running at scale" says when they are), thresholds (while
            no rank subsamples: ``exact_quantile=True`` or tails that fit), counts, IoUs, labels, top images and
            their maps are the single process's bit for bit. Checkpoints hold the merged state, written by rank
            0, and resume with any number of processes.
        timeout: with ``devices``, the longest wait: seconds a worker may go without reporting, while starting
            or working, before the job ends with an error naming it.
        result_cache: look the finished result up in the result cache (:mod:`cnnvis_widgets.cache`) and store
            it there: None (the configured cache), True, False, or a folder.
    """
    from ..datasets import Broden

    settings = {"layers": [layers] if isinstance(layers, str) else list(layers), "quantile": quantile,
                "iou_threshold": iou_threshold, "upsample": upsample, "threshold_on": threshold_on,
                "exact_quantile": exact_quantile, "quantile_capacity": quantile_capacity, "top_k": top_k,
                "seed": seed}
    place = slot("dissect", model, dataset, settings, result_cache) if isinstance(dataset, Broden) else None
    hit = place.load(DissectionResult) if place is not None else None
    if hit is not None:
        hit.dataset = dataset
        return hit
    if devices is not None:
        from ..distributed.launch import spread

        result = spread(dissect, devices, dict(
            model=model, dataset=dataset, layers=layers, quantile=quantile, iou_threshold=iou_threshold,
            batch_size=batch_size, upsample=upsample, threshold_on=threshold_on, exact_quantile=exact_quantile,
            quantile_capacity=quantile_capacity, top_k=top_k, num_workers=num_workers, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, cache=cache, seed=seed, result_cache=False), timeout, progress)
    else:
        result = _dissect(model, dataset, layers, quantile, iou_threshold, batch_size, upsample, threshold_on,
                          exact_quantile, quantile_capacity, top_k, num_workers, checkpoint, checkpoint_every, cache,
                          progress, seed)
    if place is not None:
        place.save(result)
    return result


@torch.no_grad()
def _dissect(model, dataset, layers, quantile, iou_threshold, batch_size, upsample, threshold_on, exact_quantile,
             quantile_capacity, top_k, num_workers, checkpoint, checkpoint_every, cache, progress,
             seed) -> DissectionResult:
    from ..datasets import Broden


    if not isinstance(dataset, Broden):
        raise TypeError(f"dissect needs a Broden-format dataset with concept masks, got {type(dataset).__name__}; "
                        "use cv.datasets.shapeworld(split='val') or cv.datasets.Broden('path/to/broden1_224').")
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("Pass at least one layer, e.g. layers=['conv5'].")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers repeat: {layers}; list each layer once.")
    for name in layers:
        if not feature_layer(model, name, "dissect").spatial:
            raise ValueError(f"Layer {name!r} has no spatial output ({model.layer(name).output_shape}); dissection "
                             "segments images, so pick convolutional layers.")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, got {quantile}; NetDissect uses 0.005.")
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}; got {upsample!r}.")
    if threshold_on not in THRESHOLD_ON:
        raise ValueError(f"threshold_on must be one of {', '.join(THRESHOLD_ON)}; got {threshold_on!r}.")
    if len(dataset) == 0:
        raise ValueError(f"{dataset!r} has no images; pick another split.")
    concepts = ConceptIndex(dataset)
    seg_sizes = {dataset.seg_size(i) for i in range(len(dataset))}
    seg_size = max(seg_sizes, key=lambda s: s[0] * s[1])
    input_size = tuple(model.input_size[1:])
    # Whole images, whatever model.fit says: the concept masks cover the whole image, and the activation maps,
    # upsampled to the mask size, line up with them only if the model saw all of it (NetDissect resizes whole
    # images to the input size too; Broden's images are made at it).
    source = model.image_source(dataset, fit="squash")
    device = model.device
    infos = {name: model.layer(name) for name in layers}
    fields = {}
    for name, info in infos.items():
        rf = info.receptive_field
        fields[name] = (tuple(rf.size), tuple(rf.stride), tuple(rf.start)) if rf is not None else None
        if upsample == "receptive_field" and rf is None:
            raise ValueError(f"Layer {name!r} has no receptive field to align on; use upsample='bilinear'.")
    pixels = seg_size[0] * seg_size[1]
    batch_size = max(1, min(batch_size, _EXACT_FLOAT // pixels))
    options = {"quantile": quantile, "iou_threshold": iou_threshold, "upsample": upsample,
               "threshold_on": threshold_on, "exact_quantile": exact_quantile,
               "quantile_capacity": quantile_capacity, "top_k": top_k, "seed": seed}
    store = Checkpoint(checkpoint, run_key(model, dataset, layers, {**options, "batch_size": batch_size}))
    n = len(dataset)
    k_top = min(top_k, n)

    def up(name, maps):
        return upsample_maps(maps.float(), seg_size, upsample, fields[name], input_size)

    # -- state, possibly resumed ------------------------------------------------------------------------------
    def positions(name):
        h, w = infos[name].output_shape[-2:]
        return n * (pixels if threshold_on == "upsampled" else h * w)

    sketches = {name: TailQuantile(infos[name].units, quantile, quantile_capacity, exact_quantile, device,
                                   seed + k, expected=positions(name)) for k, name in enumerate(layers)}
    # On the CPU, skip the (image, unit) pairs whose map cannot reach the threshold; elsewhere keep fixed
    # shapes so nothing waits on the device.
    sparse = device.type == "cpu" if _SPARSE is None else _SPARSE
    state = {"phase": "thresholds", "done": 0}
    saved = store.load()
    tallies: dict[str, dict[str, torch.Tensor]] = {}
    n_concepts, n_categories = len(concepts), len(concepts.categories)

    def fresh_tallies():
        for name in layers:
            units = infos[name].units
            h, w = infos[name].output_shape[-2:]
            tallies[name] = {
                "intersection": torch.zeros(units, n_concepts + 1, dtype=torch.long, device=device),
                "unit_pixels": torch.zeros(units, n_categories, dtype=torch.long, device=device),
                "top_values": torch.full((units, 0), -torch.inf, device=device),
                "top_indices": torch.zeros(units, 0, dtype=torch.long, device=device),
                "top_maps": torch.zeros(units, 0, h, w, device=device),
            }
        tallies["_"] = {"concept_pixels": torch.zeros(n_concepts + 1, dtype=torch.long, device=device),
                        "category_images": torch.zeros(n_categories, dtype=torch.long, device=device)}

    thresholds: dict[str, torch.Tensor] = {}
    group = current_group()
    if saved is not None:  # the merged state of the first ``done`` images: on rank 0; the others start empty
        meta, tensors = saved
        state = {"phase": meta["phase"], "done": int(meta["done"])}
        if state["phase"] == "thresholds":
            for name in layers:
                sketches[name].load_state_dict({
                    "buffer": tensors[f"{name}/buffer"] if group.leader else tensors[f"{name}/buffer"][:, :0],
                    "seen": meta["seen"][name] if group.leader else 0, "level": meta["level"][name],
                    "generator": tensors[f"{name}/generator"]})
        else:
            thresholds = {name: tensors[f"{name}/thresholds"].to(device) for name in layers}
            fresh_tallies()
            for key, tensor in tensors.items():
                name, _, field_name = key.rpartition("/")
                if group.leader and name in tallies and field_name in tallies[name]:
                    tallies[name][field_name] = tensor.to(device)

    # rounds end where a checkpoint may be saved; without one, several ranks merge once, at the end
    per_round = checkpoint_every if store.path is not None or not group.distributed else None

    def share(start):  # this rank's images from ``start`` on
        return sum(hi - lo for lo, hi, _ in group.rounds(n, batch_size, start, per_round))

    def merge_sketches(final):
        for sketch in sketches.values():
            merge_tail(sketch, group)
            if not final and not group.leader:  # the merged state lives on rank 0 until the next merge
                sketch.buffer, sketch.seen = sketch.buffer[:, :0], 0

    def merge_tallies(final):
        for name, t in tallies.items():
            for key in ("intersection", "unit_pixels", "concept_pixels", "category_images"):
                if key in t:
                    t[key] = sum_counts(t[key], group)
            if "top_values" in t:
                t["top_values"], t["top_indices"], maps = merge_ranked(
                    t["top_values"], t["top_indices"], {"top_maps": t["top_maps"]}, k_top, group)
                t["top_maps"] = maps["top_maps"]
        if not final and not group.leader:
            fresh_tallies()

    spill = None
    bar, report = progress_reporter(progress if group.leader or callable(progress) else False, 2 * share(0),
                                    f"dissecting {', '.join(layers)}")
    report(share(0) - share(state["done"]) + (share(0) if state["phase"] == "tallies" else 0))
    try:
        with model.inference():
            # -- pass 1: thresholds -----------------------------------------------------------------------
            if state["phase"] == "thresholds":
                def add(name, out):
                    sketch = sketches[name]
                    if threshold_on == "raw":
                        sketch.add(out.transpose(0, 1).reshape(out.shape[1], -1))
                        return
                    floor = sketch.floor() if sparse else None
                    if floor is None:
                        maps = up(name, out)
                        sketch.add(maps.transpose(0, 1).reshape(maps.shape[1], -1))
                        return
                    # bilinear values never exceed the largest of their neighbours: only maps whose peak
                    # is above the kept tail can add to it
                    b_idx, u_idx = (out.flatten(2).amax(2) > floor).nonzero(as_tuple=True)
                    values = torch.full((out.shape[1], out.shape[0], pixels), -torch.inf, device=device)
                    if b_idx.numel():
                        values[u_idx, b_idx] = up(name, out[b_idx, u_idx][:, None]).flatten(1)
                    sketch.add(values.reshape(out.shape[1], -1))

                if state["done"] == 0:
                    spill = _ImageSpill.create(n, (model.channels, *input_size))
                for lo, hi, end in group.rounds(n, batch_size, state["done"], per_round):
                    for start, images in source.batches(batch_size, num_workers, lo, hi):
                        if spill is not None:
                            spill.write(start, images)
                        forward_layers(model, images.to(device, non_blocking=True), layers, add)
                        report(images.shape[0])
                    state["done"] = end
                    if end < n and store.path is not None:  # the merged state after the first ``end`` images
                        merge_sketches(final=False)
                        if group.leader:
                            store.save({"phase": "thresholds", "done": end,
                                        "seen": {k: s.seen for k, s in sketches.items()},
                                        "level": {k: s.level for k, s in sketches.items()}},
                                       {**{f"{k}/buffer": s.buffer for k, s in sketches.items()},
                                        **{f"{k}/generator": s.generator.get_state() for k, s in sketches.items()}})
                merge_sketches(final=True)
                thresholds = {name: sketches[name].result() for name in layers}
                state = {"phase": "tallies", "done": 0}
                fresh_tallies()
                del sketches

            # -- pass 2: tallies --------------------------------------------------------------------------
            codes_cache = None
            if cache is not False:
                codes_cache = CodeCache(dataset, concepts, seg_size, None if cache is True else cache)
            # the mask cache is written by a single process only (each rank sees a part of the dataset)
            writer = codes_cache.writer() if codes_cache is not None and state["done"] == 0 and not group.distributed \
                else None
            feed = ConceptBatches(dataset, concepts, spill.reader() if spill is not None else source, seg_size,
                                  codes_cache)
            for indices, images, codes, image_concepts, carries in _rounds_of(feed, group, n, batch_size, num_workers,
                                                                              state, per_round, store, thresholds,
                                                                              tallies, merge_tallies):
                b = images.shape[0]
                if writer is not None:
                    writer.add(indices, codes, image_concepts, carries)
                codes = codes.to(device, non_blocking=True)
                carries_f = carries.to(device, non_blocking=True).float()
                # image-level concepts as a multi-hot [B, concepts + 1] (column 0 = padding, dropped later)
                tagged = torch.zeros(b, n_concepts + 1, device=device).scatter_(1, image_concepts.to(device), 1.0)
                tagged[:, 0] = 0
                shared = tallies["_"]
                shared["concept_pixels"] += torch.bincount(codes.flatten(), minlength=n_concepts + 1)
                shared["concept_pixels"] += (tagged.sum(0) * pixels).long()
                shared["category_images"] += carries.to(device).long().sum(0)
                flat_codes = codes.flatten(2)  # [B, L, S]
                indices_d = indices.to(device)

                def tally(name, out):
                    t = tallies[name]
                    units = out.shape[1]
                    threshold = thresholds[name]
                    if sparse:
                        _tally_sparse(t, up, name, out, threshold, flat_codes, tagged, carries_f, n_concepts)
                    else:
                        _tally_dense(t, up, name, out, threshold, flat_codes, tagged, carries_f, n_concepts)
                    # each unit's top images by maximum activation, with their maps
                    peak = out.flatten(2).amax(2).float().T  # [U, B]
                    values = torch.cat([t["top_values"], peak], 1)
                    candidates = torch.cat([t["top_indices"], indices_d.expand(units, b)], 1)
                    order = rank_order(values, candidates, k_top)  # ties: the earlier image
                    maps = torch.cat([t["top_maps"], out.float().transpose(0, 1)], 1)
                    t["top_values"] = values.gather(1, order)
                    t["top_indices"] = candidates.gather(1, order)
                    t["top_maps"] = maps[torch.arange(units, device=device)[:, None], order]

                forward_layers(model, images.to(device, non_blocking=True), layers, tally)
                report(b)
            merge_tallies(final=True)
            if writer is not None:
                writer.close()
                writer = None
    finally:
        if bar is not None:
            bar.close()
        if "writer" in locals() and writer is not None:
            writer.close()  # incomplete: discarded
        if spill is not None:
            spill.close()

    result_layers = {}
    for name in layers:
        t = tallies[name]
        result_layers[name] = LayerDissection(
            layer=name, thresholds=thresholds[name].float().cpu().numpy(),
            intersection=t["intersection"][:, 1:].cpu().numpy(), unit_pixels=t["unit_pixels"].cpu().numpy(),
            top_indices=t["top_indices"].cpu().numpy(), top_values=t["top_values"].cpu().numpy(),
            top_maps=t["top_maps"].cpu().numpy(), field=fields[name], input_size=input_size)
    if group.leader and store.path is not None and store.path.exists():
        store.path.unlink()
    return DissectionResult(
        model_name=model.name, categories=list(concepts.categories), concept_numbers=concepts.numbers,
        concept_names=list(concepts.names), concept_categories=list(concepts.primary),
        concept_pixels=tallies["_"]["concept_pixels"][1:].cpu().numpy(),
        category_images=tallies["_"]["category_images"].cpu().numpy(), seg_size=tuple(seg_size), num_images=n,
        layers=result_layers, options=options, dataset_root=str(dataset.root), dataset_split=dataset.split,
        channels=model.channels, dataset=dataset)


def _rounds_of(feed: ConceptBatches, group, n: int, batch_size: int, num_workers: int, state: dict, per_round,
               store: Checkpoint, thresholds: dict, tallies: dict, merge_tallies: Callable):
    """Pass 2's batches of this rank, round by round; at the end of a round before the last, the ranks' tallies
    merge on rank 0, which saves them as the checkpoint of the first ``end`` images."""
    for lo, hi, end in group.rounds(n, batch_size, state["done"], per_round):
        yield from feed.loader(batch_size, num_workers, indices=range(lo, hi))
        state["done"] = end
        if end < n and store.path is not None:
            merge_tallies(final=False)
            if group.leader:
                store.save({"phase": "tallies", "done": end},
                           {**{f"{k}/thresholds": v for k, v in thresholds.items()},
                            **{f"{name}/{key}": value for name, t in tallies.items() for key, value in t.items()}})


def _tally_dense(t: dict, up, name: str, out: torch.Tensor, threshold: torch.Tensor, flat_codes: torch.Tensor,
                 tagged: torch.Tensor, carries: torch.Tensor, n_concepts: int) -> None:
    """Every (image, unit) map upsampled and counted: fixed shapes, no host synchronisation."""
    b, units = out.shape[:2]
    on = up(name, out) > threshold.view(1, -1, 1, 1)  # [B, U, sh, sw]
    pixels = on.shape[-2] * on.shape[-1]
    on_pixels = on.flatten(2).permute(0, 2, 1).reshape(b * pixels, units).float()  # [B·S, U]
    active = on_pixels.view(b, pixels, units).sum(1)  # [B, U]
    t["unit_pixels"] += (active.T @ carries).round_().long()
    inter = torch.zeros(n_concepts + 1, units, device=out.device)
    for layer in range(flat_codes.shape[1]):
        inter.index_add_(0, flat_codes[:, layer].reshape(-1), on_pixels)
    inter += tagged.T @ active
    t["intersection"] += inter.T.round_().long()


def _tally_sparse(t: dict, up, name: str, out: torch.Tensor, threshold: torch.Tensor, flat_codes: torch.Tensor,
                  tagged: torch.Tensor, carries: torch.Tensor, n_concepts: int) -> None:
    """Only the (image, unit) maps whose peak exceeds the threshold are upsampled (bilinear values never
    exceed their neighbours' maximum, so the others have no pixel on), and only their on pixels counted."""
    b_idx, u_idx = (out.flatten(2).amax(2) > threshold).nonzero(as_tuple=True)
    if b_idx.numel() == 0:
        return
    on = up(name, out[b_idx, u_idx][:, None])[:, 0] > threshold[u_idx].view(-1, 1, 1)
    pair, pixel = on.flatten(1).nonzero(as_tuple=True)  # the on pixels, pair-major
    active = torch.bincount(pair, minlength=b_idx.numel())  # [pairs]
    t["unit_pixels"].index_add_(0, u_idx, active[:, None] * carries[b_idx].long())
    width = n_concepts + 1
    units = t["intersection"].shape[0]
    unit_of, image_of = u_idx[pair], b_idx[pair]
    inter = torch.zeros(units * width, dtype=torch.long, device=out.device)
    for layer in range(flat_codes.shape[1]):
        inter += torch.bincount(unit_of * width + flat_codes[image_of, layer, pixel], minlength=units * width)
    inter = inter.view(units, width)
    inter.index_add_(0, u_idx, tagged[b_idx].long() * active[:, None])
    t["intersection"] += inter
