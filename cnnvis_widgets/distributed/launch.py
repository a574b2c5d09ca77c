"""One engine call spread over several devices of this machine, from a notebook: ``devices=[...]``.

:func:`run_on_devices` starts one worker process per device (``torch.multiprocessing``, spawn), joins them in
a ``torch.distributed`` process group (NCCL when every device is a GPU, else gloo) on a free loopback port,
runs the engine in each (each rank takes its shard, the states merge exactly), streams the ranks' progress to
one bar in the caller, and returns rank 0's result. A worker that raises, dies or stops reporting ends the
job with an error naming it within ``timeout`` seconds; the others are stopped. On a cluster, run the
``cnnvis`` command under ``torchrun`` instead (:mod:`cnnvis_widgets.cli`).
"""

from __future__ import annotations

import os
import queue as queue_module
import socket
import time
import traceback
from datetime import timedelta
from typing import Callable, Sequence

import torch

from .merge import reset_traffic, traffic

last_run: dict = {}  # rank 0's figures of the latest run: merge seconds, bytes sent, wall time


def resolve_devices(devices) -> list[torch.device]:
    """``"all"`` (every GPU), or a list such as ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``."""
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices={devices!r}: pass 'all' (every GPU) or a list such as ['cuda:0', 'cuda:1'].")
        if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
            raise ValueError("devices='all' found no GPU; on the CPU pass devices=['cpu', 'cpu'] (one process each).")
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    resolved = [torch.device(d) for d in devices]
    if not resolved:
        raise ValueError("devices= is empty; pass at least one device, e.g. ['cuda:0', 'cuda:1'].")
    if any(d.type == "cuda" for d in resolved) and not torch.cuda.is_available():
        raise ValueError(f"devices={[str(d) for d in resolved]} asks for GPUs but torch sees none.")
    return resolved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, backend: str, device: str, threads: int, timeout: float,
            fn: Callable, kwargs: dict, events) -> None:
    import torch.distributed as dist

    try:
        torch.set_num_threads(threads)
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout))
        events.put(("ready", rank, None))
        model = kwargs["model"]
        model.module.to(device)  # this process's copy of the model
        last = [0.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.01 or fraction >= 1.0:
                last[0] = fraction
                events.put(("progress", rank, fraction))

        reset_traffic()
        start = time.perf_counter()
        result = fn(**{**kwargs, "progress": progress})
        wall = time.perf_counter() - start
        if rank == 0:
            events.put(("result", rank, (result, {**traffic, "wall_seconds": wall})))
        dist.barrier()
        dist.destroy_process_group()
        events.put(("done", rank, None))
    except BaseException as err:  # reported to the caller, who stops the others
        events.put(("error", rank, "".join(traceback.format_exception(type(err), err, err.__traceback__))))
        raise SystemExit(1)


def run_on_devices(fn: Callable, kwargs: dict, devices, timeout: float = 300.0, threads: int | None = None,
                   progress: bool | Callable[[float], None] = True, desc: str = "") -> object:
    """Run ``fn(**kwargs)`` (an engine) on every device of ``devices`` as one process group; rank 0's result.

    Args:
        fn: a module-level engine function (it is sent to the workers by name).
        kwargs: its arguments (``model`` among them); they are pickled to every worker, so a model whose class
            is defined in the notebook itself cannot be sent: put the class in a module, or use ``torchrun``.
        devices: see :func:`resolve_devices`.
        timeout: seconds a collective may wait, and seconds without any progress from a rank, before the job
            is ended with an error.
        threads: CPU threads per worker (default: the machine's cores shared out).
        progress: a bar over all ranks, or a callable receiving the fraction done.
    """
    import torch.multiprocessing as mp

    resolved = resolve_devices(devices)
    world = len(resolved)
    backend = "nccl" if all(d.type == "cuda" for d in resolved) else "gloo"
    threads = threads or max(1, (os.cpu_count() or 1) // world)
    context = mp.get_context("spawn")
    events = context.Queue()
    port = _free_port()
    workers = [context.Process(target=_worker, daemon=True, name=f"cnnvis-rank{rank}",
                               args=(rank, world, port, backend, str(resolved[rank]), threads, timeout, fn, kwargs,
                                     events))
               for rank in range(world)]
    if callable(progress):
        bar, report = None, progress
    else:
        from tqdm.auto import tqdm

        bar = tqdm(total=100, desc=desc or f"{getattr(fn, '__name__', 'job')} on {world} devices", unit="%",
                   disable=not progress, leave=False)

        def report(fraction):
            bar.n = round(100 * fraction, 1)
            bar.refresh()
    fractions = [0.0] * world
    heard = [time.monotonic()] * world
    ready = [False] * world
    startup = max(120.0, timeout)  # starting Python, torch and the model comes before the first report
    result = figures = None
    done = set()
    try:
        for worker in workers:
            worker.start()
        while len(done) < world:
            try:
                kind, rank, payload = events.get(timeout=0.2)
            except queue_module.Empty:
                kind = None
            now = time.monotonic()
            if kind == "ready":
                ready[rank], heard[rank] = True, now
            elif kind == "progress":
                fractions[rank], heard[rank] = payload, now
                report(sum(fractions) / world)
            elif kind == "result":
                result, figures = payload
                heard[rank] = now
            elif kind == "done":
                done.add(rank)
                heard[rank] = now
            elif kind == "error":
                _raise_death(workers, resolved, exclude=rank, wait=1.0)  # a peer's death is the cause
                raise RuntimeError(f"Worker {rank} of {world} ({resolved[rank]}) failed; the job was stopped. "
                                   f"Its error:\n{payload}")
            _raise_death(workers, resolved, exclude=None, wait=0.0, done=done)
            for rank in range(world):
                if rank not in done and now - heard[rank] > (timeout if ready[rank] else startup):
                    raise TimeoutError(f"Worker {rank} of {world} ({resolved[rank]}) reported nothing for "
                                       f"{timeout:.0f} s; the job was stopped. Raise timeout= for very slow "
                                       "batches.")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
        if bar is not None:
            bar.close()
    last_run.clear()
    last_run.update(figures or {}, devices=[str(d) for d in resolved], threads=threads)
    return result


def _raise_death(workers, resolved, exclude, wait: float, done=()) -> None:
    """Raise if a worker (other than ``exclude``) ended with a failure, waiting up to ``wait`` seconds for one."""
    deadline = time.monotonic() + wait
    while True:
        for rank, worker in enumerate(workers):
            if rank != exclude and rank not in done and worker.exitcode not in (None, 0):
                how = f"was killed by signal {-worker.exitcode}" if worker.exitcode < 0 else \
                    f"exited with code {worker.exitcode}"
                raise RuntimeError(f"Worker {rank} of {len(workers)} ({resolved[rank]}) {how}; the job was stopped. "
                                   "A dissection with checkpoint= resumes from its last checkpoint, with this or "
                                   "another number of devices.")
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def spread(fn: Callable, devices, kwargs: dict, timeout: float, progress) -> object:
    """What an engine does with ``devices=``: run itself on them, or refuse inside a process group."""
    from .group import current

    if current().distributed:
        raise RuntimeError("devices= starts its own worker processes; under torchrun the process group already "
                           "exists, so call the engine without devices=.")
    return run_on_devices(fn, {**kwargs, "devices": None}, devices, timeout=timeout, progress=progress)


__all__ = ["last_run", "resolve_devices", "run_on_devices", "spread"]
