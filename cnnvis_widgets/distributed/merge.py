"""Exact merges of the engines' streamed states across the ranks of a process group.

- counts: an all-reduce sum of integer tensors (:func:`sum_counts`);
- top-k lists: every rank's list gathered and re-ranked by (value descending, global image index ascending),
  the order one process keeps (:func:`merge_ranked`);
- quantile tails: every rank's kept tail gathered and the largest kept (:func:`merge_tail`): while no rank
  has subsampled (the tails fit), the union holds the global tail and the quantile is the single process's.

Every rank ends with the merged state. :data:`traffic` counts the bytes each collective moved from this
rank and the seconds spent in them, for the benchmark and the README's cost table.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from .group import Group, collective_device

traffic = {"bytes": 0, "seconds": 0.0, "calls": 0}


@contextmanager
def _counted(nbytes: int):
    start = time.perf_counter()
    yield
    traffic["bytes"] += int(nbytes)
    traffic["seconds"] += time.perf_counter() - start
    traffic["calls"] += 1


def reset_traffic() -> None:
    traffic.update(bytes=0, seconds=0.0, calls=0)


def sum_counts(tensor: torch.Tensor, group: Group) -> torch.Tensor:
    """The sum over ranks of ``tensor`` (same shape everywhere), on its own device."""
    if not group.distributed:
        return tensor
    import torch.distributed as dist

    work = tensor.to(collective_device(tensor.device)).contiguous()
    with _counted(work.numel() * work.element_size()):
        dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)


def gather_along(tensor: torch.Tensor, group: Group, dim: int, fill: float | int = 0) -> list[torch.Tensor]:
    """Every rank's ``tensor``, in rank order; they may differ in length along ``dim`` (padded to send)."""
    if not group.distributed:
        return [tensor]
    import torch.distributed as dist

    device = collective_device(tensor.device)
    length = torch.tensor([tensor.shape[dim]], device=device)
    lengths = [torch.zeros_like(length) for _ in range(group.world)]
    dist.all_gather(lengths, length)
    longest = int(max(int(x) for x in lengths))
    pad_shape = list(tensor.shape)
    pad_shape[dim] = longest - tensor.shape[dim]
    padded = torch.cat([tensor.to(device), torch.full(pad_shape, fill, dtype=tensor.dtype, device=device)], dim)
    padded = padded.contiguous()
    parts = [torch.empty_like(padded) for _ in range(group.world)]
    with _counted(padded.numel() * padded.element_size() * (group.world - 1)):
        dist.all_gather(parts, padded)
    return [part.narrow(dim, 0, int(n)).to(tensor.device) for part, n in zip(parts, lengths)]


def rank_order(values: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the positions of the ``k`` best entries by value (descending), ties to the smaller index."""
    by_index = torch.argsort(indices, dim=1, stable=True)
    by_value = torch.argsort(values.gather(1, by_index), dim=1, descending=True, stable=True)
    return by_index.gather(1, by_value)[:, :k]


def merge_ranked(values: torch.Tensor, indices: torch.Tensor, extras: dict[str, torch.Tensor], k: int,
                 group: Group) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Merge every rank's per-row top list ``values``/``indices`` [rows, k_r] (and ``extras`` [rows, k_r, ...],
    e.g. positions or maps, carried along) into the global top ``k``."""
    if not group.distributed:
        return values, indices, extras
    all_values = torch.cat(gather_along(values, group, 1, float("-inf")), 1)
    all_indices = torch.cat(gather_along(indices, group, 1, -1), 1)
    gathered = {name: torch.cat(gather_along(t, group, 1), 1) for name, t in extras.items()}
    order = rank_order(all_values, all_indices, min(k, all_values.shape[1]))
    picked = {}
    for name, t in gathered.items():
        index = order.view(*order.shape, *([1] * (t.ndim - 2))).expand(*order.shape, *t.shape[2:])
        picked[name] = t.gather(1, index)
    return all_values.gather(1, order), all_indices.gather(1, order), picked


def merge_tail(sketch, group: Group) -> None:
    """Merge the :class:`~cnnvis_widgets.dissection.quantile.TailQuantile` ``sketch`` of every rank in place:
    afterwards every rank holds the tail of all positions seen by all ranks."""
    if not group.distributed:
        return
    levels = gather_along(torch.tensor([[sketch.level, sketch.seen]], dtype=torch.long), group, 0)
    level = max(int(t[0, 0]) for t in levels)
    seen = sum(int(t[0, 1]) for t in levels)
    if any(int(t[0, 0]) != level for t in levels):
        raise RuntimeError("The ranks' quantile sketches subsampled at different rates; pass exact_quantile=True "
                           "or a larger quantile_capacity so that every rank keeps the whole tail.")
    buffers = torch.cat(gather_along(sketch.buffer, group, 1, float("-inf")), 1)
    sketch.seen, sketch.level = seen, level
    size = sketch._size()
    sketch.buffer = buffers.topk(size, dim=1, sorted=False).values if size is not None and buffers.shape[1] > size \
        else buffers


def gather_objects(obj, group: Group) -> list:
    """Every rank's picklable ``obj``, in rank order (for results that are not one tensor)."""
    if not group.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * group.world
    start = time.perf_counter()
    dist.all_gather_object(out, obj)
    traffic["seconds"] += time.perf_counter() - start
    traffic["calls"] += 1
    return out


__all__ = ["gather_along", "gather_objects", "merge_ranked", "merge_tail", "rank_order", "reset_traffic",
           "sum_counts", "traffic"]
