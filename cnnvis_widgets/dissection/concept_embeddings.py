"""Net2Vec: how well a weighted combination of a layer's units segments a concept, against the best unit.

Fong & Vedaldi, "Net2Vec: Quantifying and Explaining how Concepts are Encoded by Filters in Deep Neural
Networks", CVPR 2018 (reference code: ruthcfong/net2vec). For each concept c, with the units binarized at
their dissection thresholds (B_k = 1[A_k > T_k], Bau et al. 2017), learn weights w and a bias b so that

    p = sigmoid(upsample(sum_k w_k B_k + b))

segments c, by minimizing -mean[alpha t p + (1 - alpha)(1 - t)(1 - p)] with alpha = 1 - the mean share of
concept pixels in the training images, with SGD (lr 1e-4, momentum 0.9, batch 16, 30 epochs) on the
training images that contain c. Evaluation on held-out images containing c: the set IoU of p > 0.5,
sum |M ∩ L| / sum |M ∪ L|, against the best single unit's mask upsample(A_k) > T_k (chosen by set IoU on
the training images). The ablation retrains with only the K units of largest |w|.

All concepts (and all ablation sizes) train together as one batched problem whose per-concept gradients
are independent, each on its own schedule of batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..distributed.group import current as current_group
from ..distributed.merge import gather_along, gather_objects, merge_tail
from ..model import Model, feature_layer
from ..progress import progress_reporter
from .concepts import CodeCache, ConceptBatches, ConceptIndex
from .engine import forward_layers
from .quantile import TailQuantile
from .result import DissectionResult, upsample_maps


@dataclass
class Net2VecResult:
    """Per concept: the learned weights, and set IoUs of the combination and of the best single unit.

    Attributes:
        layer, concepts: the layer and the concept names (rows of every array).
        weights: float32 [concepts, units]; bias: float32 [concepts].
        set_iou: float64 [concepts], the learned combination on the held-out images.
        single_unit: int64 [concepts], the best unit on the training images; single_iou: its held-out set IoU.
        train_images, val_images: int64 [concepts], images containing each concept in each split.
        ablation: ``{K: float64 [concepts]}``, held-out set IoU when retrained with the top-K units by |w|.
        thresholds: float32 [units], T_k used to binarize.
        options: the settings of the run.
    """

    layer: str
    concepts: list[str]
    categories: list[str]
    weights: np.ndarray
    bias: np.ndarray
    set_iou: np.ndarray
    single_unit: np.ndarray
    single_iou: np.ndarray
    train_images: np.ndarray
    val_images: np.ndarray
    ablation: dict[int, np.ndarray] = field(default_factory=dict)
    thresholds: np.ndarray | None = None
    options: dict = field(default_factory=dict)

    def table(self):
        """A pandas DataFrame, one row per concept: category, images, the combination's and the best unit's
        held-out set IoU, which unit, whether the combination is at least as good, and the ablation."""
        import pandas as pd

        rows = []
        for c, name in enumerate(self.concepts):
            row = {"concept": name, "category": self.categories[c], "train images": int(self.train_images[c]),
                   "val images": int(self.val_images[c]), "net2vec IoU": float(self.set_iou[c]),
                   "best unit": int(self.single_unit[c]), "best unit IoU": float(self.single_iou[c]),
                   "net2vec >= unit": bool(self.set_iou[c] >= self.single_iou[c])}
            for k, values in self.ablation.items():
                row[f"top-{k} IoU"] = float(values[c])
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def wins(self) -> float:
        """Share of concepts where the learned combination's set IoU is >= the best single unit's."""
        return float(np.mean(self.set_iou >= self.single_iou)) if len(self.concepts) else 0.0

    def __repr__(self) -> str:
        return (f"Net2VecResult({self.layer!r}, {len(self.concepts)} concepts, combination >= best unit for "
                f"{self.wins:.0%}; mean set IoU {np.mean(self.set_iou):.3f} vs {np.mean(self.single_iou):.3f})")


def _splits(dataset, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out image indices: the dataset's own train/val splits when it has both, else a
    seeded random split."""
    names = [dataset.split_of(i) for i in range(len(dataset))]
    if {"train", "val"} <= set(names):
        train = np.array([i for i, s in enumerate(names) if s == "train"])
        val = np.array([i for i, s in enumerate(names) if s == "val"])
        return train, val
    order = np.random.default_rng(seed).permutation(len(dataset))
    cut = int(round(len(dataset) * (1 - val_fraction)))
    if cut < 1 or cut >= len(dataset):
        raise ValueError(f"{len(dataset)} images cannot be split with val_fraction={val_fraction}; use a dataset "
                         "with train and val splits, e.g. cv.datasets.shapeworld(split=None).")
    return np.sort(order[:cut]), np.sort(order[cut:])


@torch.no_grad()
def net2vec(model: Model, dataset, layer: str, concepts: Sequence[str] | None = None,
            thresholds: DissectionResult | np.ndarray | None = None, quantile: float = 0.005,
            epochs: int = 30, lr: float = 1e-4, momentum: float = 0.9, batch_size: int = 16,
            ablation: Sequence[int] = (1, 2, 4, 8, 16), val_fraction: float = 0.5, min_images: int = 4,
            feature_batch_size: int = 64, seed: int = 0,
            progress: bool | Callable[[float], None] = True, devices=None, timeout: float = 300.0) -> Net2VecResult:
    """Learn, per concept, a weighted combination of ``layer``'s binarized units (Fong & Vedaldi 2018).

    Args:
        model: a :class:`~cnnvis_widgets.Model`.
        dataset: a Broden-format dataset with both splits (e.g. ``cv.datasets.shapeworld(split=None)``:
            trained on ``train``, evaluated on ``val``), or one split, then divided by ``val_fraction``.
        layer: a spatial layer.
        concepts: concept names (default: every concept in at least ``min_images`` images of each split).
            A name used in several categories may be given as ``"name (category)"``.
        thresholds: T_k from a :class:`DissectionResult` of this layer or an array; default: the top
            ``quantile`` of the training images' activations.
        epochs, lr, momentum, batch_size: the SGD schedule (the paper's defaults).
        ablation: retrain with only the top-K units by |w| for each K (smaller than the layer).
        feature_batch_size: images per forward pass while reading features.
        seed: seeds the split, the initialisation and the batch order.
        progress: show a progress bar, or a callable receiving the fraction done.
        devices: read the dataset's masks and features on these devices, one worker process each (or, under
            ``torchrun``, on the group's ranks): each rank reads its block of images, the ranks exchange the
            per-image features, thresholds merge from the gathered tails, and every rank trains the same
            combinations (the training, on binarized features in memory, is not split). Given the same
            activations, the concepts, thresholds, image counts, best single units and their IoUs are one
            process's bit for bit (the IoUs sum pixel counts in float32: exact below 2**24 per unit and concept).
            The trained ``weights`` and ``bias``, and the set IoUs and ablation computed from them, are one
            process's up to rounding: with another number of CPU threads than this process, matrix products may
            sum in another order (about 1e-8 on the weights).
        timeout: with ``devices``, the longest wait: seconds a worker may go without reporting, while starting
            or working, before the job ends with an error naming it.
    """
    from ..datasets import Broden

    if devices is not None:
        from ..distributed.launch import spread

        return spread(net2vec, devices, dict(
            model=model, dataset=dataset, layer=layer, concepts=concepts, thresholds=thresholds, quantile=quantile,
            epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size, ablation=ablation,
            val_fraction=val_fraction, min_images=min_images, feature_batch_size=feature_batch_size, seed=seed),
            timeout, progress)

    if not isinstance(dataset, Broden):
        raise TypeError(f"net2vec needs a Broden-format dataset with concept masks, got {type(dataset).__name__}; "
                        "use cv.datasets.shapeworld(split=None) or cv.datasets.Broden(path).")
    info = feature_layer(model, layer, "net2vec")
    if not info.spatial:
        raise ValueError(f"Layer {layer!r} has no spatial output; Net2Vec segments images, so pick a conv layer.")
    units = info.units
    index = ConceptIndex(dataset)
    train_idx, val_idx = _splits(dataset, val_fraction, seed)
    seg_size = max({dataset.seg_size(i) for i in range(len(dataset))}, key=lambda s: s[0] * s[1])
    pixels = seg_size[0] * seg_size[1]
    device = model.device
    input_size = tuple(model.input_size[1:])
    rf = info.receptive_field
    field_ = (tuple(rf.size), tuple(rf.stride), tuple(rf.start)) if rf is not None else None

    # -- which concepts ----------------------------------------------------------------------------------------
    group = current_group()
    cache = CodeCache(dataset, index, seg_size)
    feed = ConceptBatches(dataset, index, None, seg_size, cache if cache.ready else None)
    writer = cache.writer() if not group.distributed else None  # one process writes the mask cache
    presence = np.zeros((len(dataset), len(index)), dtype=bool)
    mask_lo, mask_hi = group.block(len(dataset), 256)
    for batch_indices, _, codes, tags, carries in feed.loader(256, indices=range(mask_lo, mask_hi)):
        if writer is not None:
            writer.add(batch_indices, codes, tags, carries)
        for b, i in enumerate(batch_indices.tolist()):
            present = np.union1d(np.unique(codes[b].numpy()), tags[b].numpy())
            presence[i, present[present > 0] - 1] = True
    if writer is not None:
        writer.close()
    presence = _rows_of_all(torch.from_numpy(presence), mask_lo, mask_hi, group).numpy()
    if concepts is None:
        chosen = [c for c in range(len(index)) if presence[train_idx, c].sum() >= min_images
                  and presence[val_idx, c].sum() >= min_images]
    else:
        chosen = [_concept_index(index, name) for name in concepts]
    if not chosen:
        raise ValueError(f"No concept appears in {min_images}+ training and held-out images; lower min_images.")
    n_concepts = len(chosen)
    chosen_t = torch.tensor(chosen, device=device)

    # -- thresholds --------------------------------------------------------------------------------------------
    source = model.image_source(dataset, fit="squash")  # the whole image, as its masks (see dissect)
    lo, hi = group.block(len(dataset), feature_batch_size)
    train_lo, train_hi = group.block(len(train_idx), feature_batch_size)
    steps_total = hi - lo + (0 if thresholds is not None else train_hi - train_lo)
    bar, report = progress_reporter(progress if group.leader or callable(progress) else False, steps_total + epochs,
                                    f"net2vec on {layer}")
    try:
        with model.inference():
            if isinstance(thresholds, DissectionResult):
                t_k = torch.from_numpy(thresholds.layers[layer].thresholds).to(device)
            elif thresholds is not None:
                t_k = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32, device=device)
            else:
                h, w = info.output_shape[-2:]
                sketch = TailQuantile(units, quantile, device=device, seed=seed, expected=len(train_idx) * h * w)
                for start in range(train_lo, train_hi, feature_batch_size):
                    chunk = train_idx[start:min(start + feature_batch_size, train_hi)]
                    forward_layers(model, source.images(chunk).to(device), [layer],
                                   lambda _, out: sketch.add(out.transpose(0, 1).reshape(units, -1)))
                    report(len(chunk))
                merge_tail(sketch, group)
                t_k = sketch.result()
            if t_k.shape != (units,):
                raise ValueError(f"thresholds must have one value per unit of {layer} ({units}), got {tuple(t_k.shape)}.")

            # -- features, targets and single-unit tallies ----------------------------------------------------
            h, w = info.output_shape[-2:]
            binary = torch.zeros(len(dataset), units, h, w, dtype=torch.bool)
            labels = _Labels(len(dataset), seg_size, chosen_t.cpu())
            truth_pixels = torch.zeros(len(dataset), n_concepts)
            single_inter = torch.zeros(len(dataset), units, n_concepts)  # per image, summed by split later
            single_on = torch.zeros(len(dataset), units)
            feed = ConceptBatches(dataset, index, source, seg_size, cache if cache.ready else None)
            for batch_indices, images, codes, tags, _ in feed.loader(feature_batch_size, indices=range(lo, hi)):
                captured = []
                forward_layers(model, images.to(device), [layer], lambda _, out: captured.append(out.float()))
                acts = captured[0]
                binary[batch_indices] = (acts > t_k.view(1, -1, 1, 1)).cpu()
                codes, tags = codes.to(device), tags.to(device)
                # target masks of the chosen concepts: [B, C, sh, sw]
                hit = (codes[:, :, None] == (chosen_t + 1).view(1, 1, -1, 1, 1)).any(1)
                hit |= (tags[:, :, None] == (chosen_t + 1).view(1, 1, -1)).any(1)[..., None, None]
                labels.add(batch_indices, codes.cpu(), tags.cpu())
                truth_pixels[batch_indices] = hit.flatten(2).sum(2).float().cpu()
                on = upsample_maps(acts, seg_size, "bilinear", field_, input_size) > t_k.view(1, -1, 1, 1)
                on_f = on.flatten(2).float()
                single_on[batch_indices] = on_f.sum(2).cpu()
                single_inter[batch_indices] = torch.bmm(on_f, hit.flatten(2).float().transpose(1, 2)).cpu()
                report(len(batch_indices))

            if group.distributed:  # every rank gets every image's features and targets
                binary = _rows_of_all(binary, lo, hi, group)
                truth_pixels, single_inter, single_on = (_rows_of_all(t, lo, hi, group) for t in
                                                         (truth_pixels, single_inter, single_on))
                labels.gather(lo, hi, group)
            present = torch.from_numpy(presence[:, chosen])  # [N, C]

            def single_set_iou(split):
                mask = present[split].float()  # [n, C]
                inter = torch.einsum("nuc,nc->uc", single_inter[split], mask)
                union = single_on[split].T @ mask + (truth_pixels[split] * mask).sum(0) - inter
                return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))  # [U, C]

            best_unit = single_set_iou(train_idx).argmax(0)  # [C]
            single_val = single_set_iou(val_idx)[best_unit, torch.arange(n_concepts)]

            # -- training -------------------------------------------------------------------------------------
            train_lists = [train_idx[presence[train_idx, c]] for c in chosen]
            val_lists = [val_idx[presence[val_idx, c]] for c in chosen]
            alpha = torch.tensor([1 - float(truth_pixels[lst, k].mean()) / pixels if len(lst) else 0.5
                                  for k, lst in enumerate(train_lists)])
            sizes = sorted({int(k) for k in ablation if 0 < int(k) < units})
            masks = [torch.ones(n_concepts, units)]
            generator = torch.Generator().manual_seed(seed)
            weights, bias = _train(binary, labels, train_lists, alpha, masks, epochs, lr, momentum, batch_size,
                                   seg_size, field_, input_size, generator, report, epochs)
            full_w, full_b = weights[0], bias[0]
            set_iou = _set_iou(binary, labels, val_lists, full_w[None], full_b[None], seg_size, field_, input_size)[0]
            ablated: dict[int, np.ndarray] = {}
            if sizes:
                top = full_w.abs().argsort(1, descending=True)
                masks = []
                for k in sizes:
                    mask = torch.zeros(n_concepts, units)
                    mask.scatter_(1, top[:, :k], 1.0)
                    masks.append(mask)
                w_k, b_k = _train(binary, labels, train_lists, alpha, masks, epochs, lr, momentum, batch_size,
                                  seg_size, field_, input_size, generator, None, epochs)
                scores = _set_iou(binary, labels, val_lists, w_k, b_k, seg_size, field_, input_size)
                ablated = {k: scores[j].numpy() for j, k in enumerate(sizes)}
    finally:
        if bar is not None:
            bar.close()
    return Net2VecResult(
        layer=layer, concepts=[index.names[c] for c in chosen], categories=[index.primary[c] for c in chosen],
        weights=full_w.numpy().astype(np.float32), bias=full_b.numpy().astype(np.float32),
        set_iou=set_iou.numpy(), single_unit=best_unit.numpy().astype(np.int64), single_iou=single_val.double().numpy(),
        train_images=np.array([len(x) for x in train_lists]), val_images=np.array([len(x) for x in val_lists]),
        ablation=ablated, thresholds=t_k.float().cpu().numpy(),
        options={"epochs": epochs, "lr": lr, "momentum": momentum, "batch_size": batch_size, "seed": seed,
                 "quantile": quantile})


class _Labels:
    """Every image's concept codes, kept compactly, and the masks of the chosen concepts cut from them."""

    def __init__(self, n: int, seg_size, chosen: torch.Tensor):
        self.codes = torch.zeros(n, 1, *seg_size, dtype=torch.int16)
        self.tags = torch.zeros(n, 1, dtype=torch.int16)
        self.chosen = chosen + 1  # concept index + 1, as in the codes

    def add(self, indices: torch.Tensor, codes: torch.Tensor, tags: torch.Tensor) -> None:
        if codes.shape[1] > self.codes.shape[1]:
            self.codes = F.pad(self.codes, (0, 0, 0, 0, 0, codes.shape[1] - self.codes.shape[1]))
        if tags.shape[1] > self.tags.shape[1]:
            self.tags = F.pad(self.tags, (0, tags.shape[1] - self.tags.shape[1]))
        self.codes[indices, : codes.shape[1]] = codes.to(torch.int16)
        self.tags[indices, : tags.shape[1]] = tags.to(torch.int16)

    def gather(self, lo: int, hi: int, group) -> None:
        """Every rank's rows ``[lo, hi)`` (its block of images) to every rank, padded to the widest."""
        widths = gather_objects((self.codes.shape[1], self.tags.shape[1]), group)
        codes_width, tags_width = max(w for w, _ in widths), max(w for _, w in widths)
        self.codes = F.pad(self.codes, (0, 0, 0, 0, 0, codes_width - self.codes.shape[1]))
        self.tags = F.pad(self.tags, (0, tags_width - self.tags.shape[1]))
        self.codes = _rows_of_all(self.codes, lo, hi, group)
        self.tags = _rows_of_all(self.tags, lo, hi, group)

    def masks(self, picks: torch.Tensor, concepts: Sequence[int] | None = None) -> torch.Tensor:
        """bool [C, n, sh, sw]: concept ``concepts[c]`` (default: all chosen) on images ``picks[c]``."""
        wanted = self.chosen if concepts is None else self.chosen[list(concepts)]
        wanted = wanted.to(torch.int16)
        pixel = (self.codes[picks] == wanted.view(-1, 1, 1, 1, 1)).any(2)
        image = (self.tags[picks] == wanted.view(-1, 1, 1)).any(-1)
        return pixel | image[..., None, None]


def _rows_of_all(tensor: torch.Tensor, lo: int, hi: int, group) -> torch.Tensor:
    """``tensor`` [N, ...] with every rank's block of rows filled in (this rank filled ``[lo, hi)``)."""
    if not group.distributed:
        return tensor
    dtype = tensor.dtype
    carrier = {torch.bool: torch.uint8, torch.int16: torch.int32}.get(dtype, dtype)  # types gloo sends
    return torch.cat(gather_along(tensor[lo:hi].to(carrier), group, 0), 0).to(dtype)


def _concept_index(index: ConceptIndex, name: str) -> int:
    matches = [c for c, n in enumerate(index.names) if n == name or f"{n} ({index.primary[c]})" == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KeyError(f"No concept named {name!r}; concepts include {', '.join(index.names[:12])}, ...")
    options = ", ".join(f"'{index.names[c]} ({index.primary[c]})'" for c in matches)
    raise KeyError(f"Concept name {name!r} is used in several categories; pass one of {options}.")


def upsampling_matrix(hw: tuple[int, int], seg_size, field_, input_size) -> torch.Tensor:
    """float32 [h·w, sh·sw]: bilinear upsampling of an h x w map as a matrix (it is linear), so logits are
    upsampled with one matrix product."""
    h, w = hw
    basis = torch.eye(h * w).view(h * w, 1, h, w)
    return upsample_maps(basis, seg_size, "bilinear", field_, input_size).view(h * w, -1)


def _logits(features: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, up: torch.Tensor):
    """features [M, C, n, U, h·w] (float), weights [M, C, U], bias [M, C], up [h·w, S] → logits [M, C, n, S]."""
    z = torch.einsum("mcnup,mcu->mcnp", features, weights)
    return z @ up + bias[..., None, None]


def _train(binary, labels, train_lists, alpha, masks, epochs, lr, momentum, batch_size, seg_size, field_,
           input_size, generator, report, report_total):
    up = upsampling_matrix(binary.shape[-2:], seg_size, field_, input_size)
    """SGD with momentum on every (mask, concept) pair at once; each concept walks through its own images."""
    n_masks, n_concepts, units = len(masks), len(train_lists), binary.shape[1]
    mask = torch.stack(masks)  # [M, C, U]
    weights = (torch.randn(n_masks, n_concepts, units, generator=generator) * 0.01) * mask
    bias = torch.zeros(n_masks, n_concepts)
    v_w, v_b = torch.zeros_like(weights), torch.zeros_like(bias)
    steps = [epochs * math.ceil(len(lst) / batch_size) for lst in train_lists]
    orders = [None] * n_concepts
    total = max(steps + [0])
    alpha_v = alpha.view(1, -1, 1, 1)
    for step in range(total):
        picks = []
        for c, lst in enumerate(train_lists):
            per_epoch = math.ceil(len(lst) / batch_size)
            if step >= steps[c] or not len(lst):
                picks.append(np.resize(lst if len(lst) else np.zeros(1, np.int64), batch_size))
                continue
            position = step % per_epoch
            if position == 0:
                orders[c] = lst[torch.randperm(len(lst), generator=generator).numpy()]
            chunk = orders[c][position * batch_size:(position + 1) * batch_size]
            picks.append(np.resize(chunk, batch_size))  # the last batch of an epoch may repeat images
        picks = torch.from_numpy(np.stack(picks))  # [C, n]
        features = binary[picks].flatten(-2).float()  # [C, n, U, h·w]
        target = labels.masks(picks).float()  # [C, n, sh, sw]
        with torch.enable_grad():
            w = weights.clone().requires_grad_(True)
            b = bias.clone().requires_grad_(True)
            p = torch.sigmoid(_logits(features[None].expand(n_masks, -1, -1, -1, -1), w, b, up))
            t = target.flatten(-2)[None]
            per_pixel = alpha_v * t * p + (1 - alpha_v) * (1 - t) * (1 - p)
            # summed over pixels, averaged over images; each concept's own term, so gradients stay independent
            loss = -per_pixel.sum(3).mean(2).sum()
            g_w, g_b = torch.autograd.grad(loss, (w, b))
        active = torch.tensor([step < s for s in steps], dtype=torch.float32)
        v_w = momentum * v_w + g_w * mask
        v_b = momentum * v_b + g_b
        weights = weights - lr * v_w * active.view(1, -1, 1)
        bias = bias - lr * v_b * active.view(1, -1)
        due = (step + 1) * report_total // total - step * report_total // total  # ``report_total`` in all
        if report is not None and due:
            report(due)
    if report is not None and not total:
        report(report_total)
    return weights, bias


def _set_iou(binary, labels, val_lists, weights, bias, seg_size, field_, input_size, chunk: int = 64):
    """Held-out set IoU [M, C] of p > 0.5 (logit > 0) over each concept's images."""
    n_masks, n_concepts = weights.shape[:2]
    up = upsampling_matrix(binary.shape[-2:], seg_size, field_, input_size)
    inter = torch.zeros(n_masks, n_concepts, dtype=torch.float64)
    union = torch.zeros(n_masks, n_concepts, dtype=torch.float64)
    for c, lst in enumerate(val_lists):
        for start in range(0, len(lst), chunk):
            idx = torch.from_numpy(lst[start:start + chunk])
            features = binary[idx].flatten(-2).float()[None, None].expand(n_masks, 1, -1, -1, -1)
            on = _logits(features, weights[:, c:c + 1], bias[:, c:c + 1], up)[:, 0] > 0  # [M, n, S]
            t = labels.masks(idx[None], [c])[0].flatten(-2)[None]
            inter[:, c] += (on & t).flatten(1).sum(1).double()
            union[:, c] += (on | t).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
