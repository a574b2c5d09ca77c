"""Per-unit upper quantiles of activations, streamed over a dataset in bounded memory.

Network Dissection thresholds unit k at T_k, the top ``q`` quantile (q = 0.005) of its activations over
all images and positions (Bau et al. 2017, §3.2). Only the upper tail matters, so each unit keeps the
largest values seen so far: exactly as many as the quantile needs while they fit in half of ``capacity``.
When they do not, positions are subsampled uniformly at rate 1/2, 1/4, ... (chosen up front when the
number of positions is known, otherwise by thinning the kept tail with the same coin flips), so the
estimate is the exact quantile of a uniform sample whose tail keeps ``capacity / 4`` values or more: a
rank error around 1/sqrt(capacity / 4) of the tail, under 1% at the default. ``exact=True`` never
subsamples and lets memory grow with q × positions.
"""

from __future__ import annotations

import math

import torch


class TailQuantile:
    """Streamed ``torch.quantile(values, 1 - q)`` (linear interpolation) per row, for a small q.

    Args:
        units: rows (one per unit); every call to :meth:`add` covers the same positions for every unit.
        q: the upper tail's fraction (0 < q < 1).
        capacity: values kept per unit at most (unless ``exact``).
        exact: never subsample; keep every value the quantile could need.
        device: where the buffers live (the model's device).
        seed: seeds the subsampling.
        expected: positions per unit the whole stream will have, if known (it must not be exceeded): the
            kept tail is sized for it from the start. Without it, ``capacity`` values are kept (every value
            when ``exact``).
    """

    def __init__(self, units: int, q: float, capacity: int = 1 << 15, exact: bool = False,
                 device: torch.device | str = "cpu", seed: int = 0, expected: int | None = None):
        if not 0 < q < 1:
            raise ValueError(f"quantile must be between 0 and 1 (exclusive), got {q}.")
        if capacity < 64:
            raise ValueError(f"quantile capacity must be at least 64 values per unit, got {capacity}.")
        self.units, self.q, self.capacity, self.exact = units, float(q), int(capacity), exact
        self.device = torch.device(device)
        self.expected = int(expected) if expected else 0
        self.buffer = torch.empty(units, 0, device=self.device)
        self.seen = 0  # positions seen per unit
        self.level = 0  # positions are kept with probability 2 ** -level
        while not exact and self._needed(self.expected) > self.capacity // 2:
            self.level += 1
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        # On the CPU a data-dependent size costs nothing, so values below the kept tail are skipped early;
        # elsewhere every call keeps fixed shapes (no host synchronisation).
        self.skip_below_tail = self.device.type == "cpu"

    def _needed(self, positions: int) -> int:
        # ranks 0 .. ceil((n - 1) q) of the descending order of the n sampled values, plus one spare
        sampled = positions / 2 ** self.level
        return int(math.ceil(max(sampled - 1, 0) * self.q)) + 2

    def _size(self) -> int | None:
        """Values to keep per unit (None: all of them)."""
        if self.expected and not self.level:
            return self._needed(self.expected)
        return None if self.exact else self.capacity

    def floor(self) -> torch.Tensor | None:
        """float32 [units]: values at or below it can no longer change the result (None while unknown)."""
        size = self._size()
        if self.level or size is None or self.buffer.shape[1] < size:
            return None
        return self.buffer.amin(1)

    def add(self, values: torch.Tensor, positions: int | None = None) -> None:
        """Add ``values`` [units, P]. ``positions`` (default P) is how many positions they stand for: values
        left out must be ones known to lie at or below :meth:`floor` (entries of -inf are ignored)."""
        values = values.detach().to(self.device, torch.float32).reshape(self.units, -1)
        self.seen += values.shape[1] if positions is None else int(positions)
        if self.expected and self.seen > self.expected:
            raise ValueError(f"{self.seen} positions per unit were added but {self.expected} were expected; "
                             "pass the stream's true length as expected= (or None).")
        if self.level:
            keep = torch.rand(values.shape[1], device=self.device, generator=self.generator) < 2.0 ** -self.level
            values = values.masked_fill(~keep, -math.inf)
        while not self.exact and self._needed(max(self.expected, self.seen)) > self.capacity // 2:
            self.level += 1  # more positions than expected: thin the kept tail and what comes next
            halve = torch.rand(values.shape[1], device=self.device, generator=self.generator) < 0.5
            values = values.masked_fill(halve, -math.inf)
            drop = torch.rand(self.buffer.shape, device=self.device, generator=self.generator) < 0.5
            self.buffer = self.buffer.masked_fill(drop, -math.inf)
        size = self._size()
        floor = self.floor() if self.skip_below_tail else None
        if floor is not None:
            # only values above the kept tail's minimum can enter it: gather them into a short padded block
            rows, cols = (values > floor[:, None]).nonzero(as_tuple=True)
            if rows.numel() == 0:
                return
            counts = torch.bincount(rows, minlength=self.units)
            starts = torch.cumsum(counts, 0) - counts
            block = torch.full((self.units, int(counts.max())), -math.inf, device=self.device)
            block[rows, torch.arange(rows.numel(), device=self.device) - starts[rows]] = values[rows, cols]
            values = block
        merged = torch.cat([self.buffer, values], 1)
        if size is not None and merged.shape[1] > size:
            merged = merged.topk(size, dim=1, sorted=False).values
        self.buffer = merged

    def result(self) -> torch.Tensor:
        """float32 [units]: the estimated ``1 - q`` quantile of each unit's values."""
        if self.seen == 0:
            raise ValueError("No activations were added; the dataset is empty.")
        ordered = self.buffer.sort(dim=1, descending=True).values
        rank = max(self.seen / 2 ** self.level - 1, 0) * self.q
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
