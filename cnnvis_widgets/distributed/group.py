"""Which part of a job this process does, under an initialized ``torch.distributed`` process group.

The engines split a dataset on the grid of their batches: the batches of ``range(start, n)`` are cut into
``world`` contiguous blocks, rank ``r`` takes block ``r``. Every image is seen once, every batch holds the same
images as in one process (so every activation is computed on the same batch, bit for bit), and a rank's
images precede the next rank's, which keeps "the earlier image wins a tie" a global rule. Without a process
group (or with one of size 1) the whole range is one block.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import torch


class TorchrunWithoutGroupWarning(UserWarning):
    """An engine runs under ``torchrun`` (``WORLD_SIZE`` > 1) but no process group is initialized: every rank
    does the whole job. Call :func:`cnnvis_widgets.distributed.join` first."""


@dataclass(frozen=True)
class Group:
    """This process's place in the job: ``rank`` of ``world`` (0 of 1 without a process group), and the
    ``device`` its collectives use ("cuda:<n>" under NCCL, else "cpu"): where to put its model."""

    rank: int = 0
    world: int = 1
    device: str = field(default="cpu", compare=False)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        """Rank 0, which writes files and reports progress."""
        return self.rank == 0

    def block(self, count: int, batch_size: int, start: int = 0) -> tuple[int, int]:
        """The half-open image range ``[lo, hi)`` of this rank among ``range(start, start + count)``, on the grid
        of ``batch_size`` batches from ``start``; empty (lo == hi) when there are fewer batches than ranks."""
        batches = -(-count // batch_size)
        first = batches * self.rank // self.world
        last = batches * (self.rank + 1) // self.world
        return start + min(first * batch_size, count), start + min(last * batch_size, count)

    def rounds(self, n: int, batch_size: int, start: int, batches_per_round: int | None):
        """``(lo, hi, end)`` per round over ``range(start, n)``: every round covers ``batches_per_round`` batches
        of every rank (all of them when None), this rank's share is ``[lo, hi)`` and ``end`` is where the
        round ends for all ranks (a state merged there is the state of one process after ``end`` images)."""
        per_round = n if batches_per_round is None else batches_per_round * batch_size * self.world
        begin = start
        while begin < n:
            end = min(begin + max(per_round, batch_size), n)
            lo, hi = self.block(end - begin, batch_size, begin)
            yield lo, hi, end
            begin = end


def current() -> Group:
    """The process group this process belongs to (torchrun's, or one started by :func:`~.launch.run_on_devices`)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
        return Group(dist.get_rank(), dist.get_world_size(), device)
    _warn_if_torchrun()
    return Group()


_warned = [False]


def _warn_if_torchrun() -> None:
    """Once per process: torchrun started several processes, but this one has not joined their group."""
    world = os.environ.get("WORLD_SIZE", "1")
    if _warned[0] or not world.isdigit() or int(world) <= 1 or "LOCAL_RANK" not in os.environ:
        return
    _warned[0] = True
    warnings.warn(f"torchrun started this process as rank {os.environ.get('RANK', '?')} of {world}, but it has not "
                  "joined the process group, so it does the whole job, as every other rank does. Call "
                  "cv.distributed.join() before the engines (or run the cnnvis command).",
                  TorchrunWithoutGroupWarning, stacklevel=3)


def collective_device(device: torch.device) -> torch.device:
    """Where tensors must be for the group's collectives: the GPU under NCCL, the CPU under gloo."""
    import torch.distributed as dist

    backend = dist.get_backend() if dist.is_initialized() else "gloo"
    return device if backend == "nccl" else torch.device("cpu")


__all__ = ["Group", "TorchrunWithoutGroupWarning", "collective_device", "current"]
