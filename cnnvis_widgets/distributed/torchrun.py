"""Joining the process group that ``torchrun`` describes in the environment (the ``cnnvis`` commands)."""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch

from .group import Group, current


@contextlib.contextmanager
def joined(timeout: float = 600.0):
    """``(group, device)`` for this process: under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the
    process group is initialized (NCCL with one GPU per local rank when GPUs are there, else gloo) and ended
    afterwards; otherwise one process on the first GPU or the CPU. A collective that waits longer than
    ``timeout`` seconds (a rank died or hangs) raises instead of hanging."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world <= 1 or dist.is_initialized():
        yield current(), torch.device("cuda" if cuda else "cpu")
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout))
    try:
        yield Group(dist.get_rank(), dist.get_world_size()), device
    finally:
        dist.destroy_process_group()


__all__ = ["joined"]
