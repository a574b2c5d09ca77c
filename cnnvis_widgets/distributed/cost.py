"""What the merges send: bytes per rank for one job, from the engines' own state sizes.

The convention is :data:`~.merge.traffic`'s: an all-reduce counts the tensor once (what a rank contributes;
a ring all-reduce moves about twice that over the wire), an all-gather counts the rank's part once per other
rank. Checkpoint rounds add one merge of the same size per round; these figures are for a job without.
"""

from __future__ import annotations

import math

from ..dissection.quantile import TailQuantile

_FLOAT, _INDEX = 4, 8  # float32 values, int64 indices and counts


def tail_length(units: int, positions: int, quantile: float, capacity: int = 1 << 15, exact: bool = False) -> int:
    """Values per unit a rank's quantile sketch keeps (and sends) for ``positions`` per unit over the whole job."""
    return TailQuantile(units, quantile, capacity, exact, "cpu", expected=positions)._size() or positions


def top_activations_bytes(units: int, k: int, world: int) -> int:
    """Per rank: values, image indices and positions of its top ``k`` per unit, to every other rank."""
    return units * k * (_FLOAT + 2 * _INDEX) * (world - 1)


def dissect_bytes(layers: dict[str, tuple[int, int, int]], images: int, concepts: int, categories: int,
                  world: int, quantile: float = 0.005, top_k: int = 10, capacity: int = 1 << 15,
                  exact: bool = False, upsampled_positions: int | None = None) -> dict[str, int]:
    """Per rank, for :func:`~cnnvis_widgets.dissect` over ``images`` with ``layers`` {name: (units, h, w)}.

    ``upsampled_positions``: the segmentation's pixels per image when thresholds are taken on the upsampled
    maps (``threshold_on="upsampled"``); default the raw maps' h x w. Returns the bytes of pass 1 (the
    quantile tails), of pass 2 (counts and top images) and their total.
    """
    others = world - 1
    first = second = 0
    for units, h, w in layers.values():
        per_image = upsampled_positions or h * w
        first += (2 * _INDEX + _FLOAT * units * tail_length(units, images * per_image, quantile, capacity, exact)) \
            * others
        second += units * (concepts + 1 + categories) * _INDEX  # intersections and unit pixels (all-reduce)
        second += units * min(top_k, images) * (_FLOAT + _INDEX + _FLOAT * h * w) * others  # top images, maps
    second += (concepts + 1 + categories) * _INDEX  # concept pixels and images per category
    return {"pass 1": first, "pass 2": second, "total": first + second}


def am_gathered_bytes(units: int, channels: int, height: int, width: int, steps: int) -> int:
    """The images, transparency maps and objective histories all ranks gather from AM of ``units``."""
    return units * (2 * channels * height * width + steps + 1) * _FLOAT


__all__ = ["am_gathered_bytes", "dissect_bytes", "tail_length", "top_activations_bytes"]
