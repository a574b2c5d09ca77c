"""Per-unit upper quantiles of activations, streamed over a dataset in bounded memory.

Network Dissection thresholds unit k at T_k, the top ``q`` quantile (q = 0.005) of its activations over
all images and positions (Bau et al. 2017, §3.2). Only the upper tail matters, so each unit keeps the
largest values seen so far: exactly as many as the quantile needs while they fit in ``capacity``. When
they no longer fit, positions are subsampled uniformly at rate 1/2, 1/4, ... (the kept tail is thinned
by the same coin flips), so the estimate is the exact quantile of a uniform sample whose tail still has
``capacity / 4`` values or more: a rank error around 1/sqrt(capacity / 4) of the tail, ~1% at the
default. ``exact=True`` never subsamples and lets memory grow with q × positions.
"""

from __future__ import annotations

import math

import torch


class TailQuantile:
    """Streamed ``torch.quantile(values, 1 - q)`` (linear interpolation) per row, for a small q.

    Args:
        units: rows (one per unit); every call to :meth:`add` gives the same number of values to each.
        q: the upper tail's fraction (0 < q < 1).
        capacity: values kept per unit at most (unless ``exact``).
        exact: never subsample; keep every value the quantile could need.
        device: where the buffers live (the model's device).
        seed: seeds the subsampling.
    """

    def __init__(self, units: int, q: float, capacity: int = 1 << 15, exact: bool = False,
                 device: torch.device | str = "cpu", seed: int = 0):
        if not 0 < q < 1:
            raise ValueError(f"quantile must be between 0 and 1 (exclusive), got {q}.")
        if capacity < 64:
            raise ValueError(f"quantile capacity must be at least 64 values per unit, got {capacity}.")
        self.units, self.q, self.capacity, self.exact = units, float(q), int(capacity), exact
        self.device = torch.device(device)
        self.buffer = torch.empty(units, 0, device=self.device)
        self.seen = 0  # positions seen per unit
        self.level = 0  # positions are kept with probability 2 ** -level
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    @property
    def sampled(self) -> float:
        """Positions per unit the kept tail stands for (seen × sampling rate)."""
        return self.seen / 2 ** self.level

    def _needed(self) -> int:
        # ranks 0 .. ceil((n - 1) q) of the descending order, plus one for interpolation
        return int(math.ceil(max(self.sampled - 1, 0) * self.q)) + 2

    def add(self, values: torch.Tensor) -> None:
        """Add ``values`` [units, P] (P positions per unit)."""
        values = values.detach().to(self.device, torch.float32).reshape(self.units, -1)
        self.seen += values.shape[1]
        if self.level:
            keep = torch.rand(values.shape[1], device=self.device, generator=self.generator) < 2.0 ** -self.level
            values = values.masked_fill(~keep, -math.inf)
        while not self.exact and self._needed() > self.capacity // 2:
            self.level += 1
            halve = torch.rand(values.shape[1], device=self.device, generator=self.generator) < 0.5
            values = values.masked_fill(halve, -math.inf)
            drop = torch.rand(self.buffer.shape, device=self.device, generator=self.generator) < 0.5
            self.buffer = self.buffer.masked_fill(drop, -math.inf)
        merged = torch.cat([self.buffer, values], 1)
        size = min(merged.shape[1], self._needed() if self.exact else self.capacity)
        self.buffer = merged.topk(size, dim=1, sorted=False).values

    def result(self) -> torch.Tensor:
        """float32 [units]: the estimated ``1 - q`` quantile of each unit's values."""
        if self.seen == 0:
            raise ValueError("No activations were added; the dataset is empty.")
        ordered = self.buffer.sort(dim=1, descending=True).values
        rank = max(self.sampled - 1, 0) * self.q
        low = min(int(math.floor(rank)), ordered.shape[1] - 1)
        high = min(low + 1, ordered.shape[1] - 1)
        frac = rank - math.floor(rank)
        a, b = ordered[:, low], ordered[:, high]
        value = a if frac == 0 else a + frac * (b - a)
        return torch.where(torch.isfinite(value), value, a)

    def state_dict(self) -> dict:
        return {"buffer": self.buffer, "seen": self.seen, "level": self.level,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.buffer = state["buffer"].to(self.device)
        self.seen, self.level = int(state["seen"]), int(state["level"])
        self.generator.set_state(state["generator"])
