"""Which part of a job this process does, under an initialized ``torch.distributed`` process group.

The engines split a dataset on the grid of their batches: the batches of ``range(start, n)`` are cut into
``world`` contiguous blocks, rank ``r`` takes block ``r``. Every image is seen once, every batch holds the same
images as in one process (so every activation is computed on the same batch, bit for bit), and a rank's
images precede the next rank's, which keeps "the earlier image wins a tie" a global rule. Without a process
group (or with one of size 1) the whole range is one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Group:
    """This process's place in the job: ``rank`` of ``world`` (0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

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
        return Group(dist.get_rank(), dist.get_world_size())
    return Group()


def collective_device(device: torch.device) -> torch.device:
    """Where tensors must be for the group's collectives: the GPU under NCCL, the CPU under gloo."""
    import torch.distributed as dist

    backend = dist.get_backend() if dist.is_initialized() else "gloo"
    return device if backend == "nccl" else torch.device("cpu")


__all__ = ["Group", "collective_device", "current"]
