"""Joining the process group that ``torchrun`` describes in the environment: :func:`join` in a script, and
:func:`joined` for the ``cnnvis`` commands."""

from __future__ import annotations

import atexit
import contextlib
import os
from datetime import timedelta

import torch

from .group import Group, current


def join(timeout: float = 600.0) -> Group:
    """This process's :class:`~.group.Group`, after joining torchrun's process group (idempotent).

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the group is initialized: NCCL with one GPU per
    local rank (``group.device``) when GPUs are there, else gloo; it ends when the process exits. Otherwise,
    or when a group exists already, nothing changes. A collective that waits longer than ``timeout`` seconds
    (a rank died or hangs) raises instead of hanging. Call it first in a script that ``torchrun`` starts::

        group = cv.distributed.join()
        model = cv.load_model("resnet50", device=group.device)
        result = cv.dissect(model, broden, ["layer4"])   # each rank its share; every rank gets the result
        if group.leader:
            result.save("dissection")
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout))
        atexit.register(_leave)
    group = current()
    if not group.distributed and torch.cuda.is_available():
        return Group(group.rank, group.world, "cuda")
    return group


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(timeout: float = 600.0):
    """``(group, device)`` for this process, as :func:`join` gives them; a group this call initialized ends
    with the block."""
    import torch.distributed as dist

    initialized = dist.is_initialized()
    group = join(timeout)
    try:
        yield group, torch.device(group.device)
    finally:
        if not initialized:
            _leave()


__all__ = ["join", "joined"]
