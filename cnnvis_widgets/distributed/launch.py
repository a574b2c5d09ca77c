"""One engine call spread over several devices of this machine, from a notebook or a script: ``devices=[...]``.

:func:`run_on_devices` writes the job to a file (:mod:`.payload`: what ``__main__`` defines travels by value),
starts one worker process per device (a fresh interpreter running :mod:`.worker`, which imports nothing of the
caller's ``__main__``), joins them in a ``torch.distributed`` process group (NCCL when every device is a GPU,
else gloo) on a free loopback port, runs the engine in each (each rank takes its shard, the states merge
exactly), streams the ranks' progress to one bar in the caller, and returns rank 0's result.

No wait exceeds ``timeout`` seconds: a worker that raises, dies, or reports nothing for ``timeout`` seconds,
while starting (interpreter, imports, job, process group: each reports; one that has loaded the job waits for
the others, who report) or working (every batch), ends the job with an error naming it and carrying its error
or its last output; the others are stopped. On a cluster, use
``torchrun`` instead (:func:`.torchrun.join`, :mod:`cnnvis_widgets.cli`).
"""

from __future__ import annotations

import collections
import os
import pickle
import queue as queue_module
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

import torch

from . import payload

last_run: dict = {}  # rank 0's figures of the latest run: merge seconds, bytes sent, wall time
_running: list = []  # the workers of the job under way
_BOOTSTRAP = "import runpy, sys; runpy.run_path(sys.argv[1])['main'](*sys.argv[2:])"
_WORKER = str(Path(__file__).with_name("worker.py"))
_LOADING, _WAITING = "loading the job", "waiting for the other workers to load the job"
_DOING = {"started": _LOADING, "starting": _LOADING, "loaded": _WAITING,
          "ready": "working", "progress": "working", "result": "working"}


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


def worker_pids() -> dict[int, int]:
    """The process ids of the running ``devices=`` job's live workers, by rank (empty between jobs)."""
    return {w.rank: w.process.pid for w in list(_running) if w.process.poll() is None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Worker:
    """A worker process, a thread passing on its reports and one keeping the tail of its standard error (which
    goes on to this process's own standard error, as a worker's output would)."""

    def __init__(self, rank: int, device: str, command: list[str], env: dict, events: queue_module.Queue):
        self.rank, self.device = rank, device
        self.heard, self.doing, self.closed, self.exited = time.monotonic(), "starting Python", False, None
        self.tail: collections.deque = collections.deque(maxlen=30)
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=write, stderr=subprocess.PIPE,
                                            env=env)
        finally:
            os.close(write)
        threading.Thread(target=self._reports, args=(Connection(read, writable=False), events), daemon=True).start()
        threading.Thread(target=self._output, daemon=True).start()

    def _reports(self, channel: Connection, events: queue_module.Queue) -> None:
        try:
            while True:
                events.put(channel.recv())
        except (EOFError, OSError):
            events.put(("eof", self.rank, None))
        finally:
            channel.close()

    def _output(self) -> None:
        for line in self.process.stderr:
            text = line.decode(errors="replace")
            self.tail.append(text)
            try:
                sys.__stderr__.write(text)
            except (AttributeError, OSError, ValueError):  # no standard error to write to
                pass

    def go(self) -> None:
        """Let the worker join the process group (all have loaded the job: none waits long for another)."""
        self.doing, self.heard = "joining the process group", time.monotonic()
        try:
            self.process.stdin.write(b"go\n")
            self.process.stdin.flush()
        except OSError:  # it has died: its end is reported
            pass

    def name(self, world: int) -> str:
        return f"Worker {self.rank} of {world} ({self.device})"

    def how(self) -> str:
        code = self.process.returncode
        return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"

    def output(self) -> str:
        text = "".join(self.tail).rstrip()
        return f" Its last output:\n{text}\n" if text else " "


def run_on_devices(fn: Callable, kwargs: dict, devices, timeout: float = 300.0, threads: int | None = None,
                   progress: bool | Callable[[float], None] = True, desc: str = "") -> object:
    """Run ``fn(**kwargs)`` (an engine) on every device of ``devices`` as one process group; rank 0's result.

    Args:
        fn: the engine; under the group it does its rank's share.
        kwargs: its arguments (``model`` among them), pickled to every worker with cloudpickle: a model or a
            dataset whose class is defined in a notebook cell or a script travels by value. What cannot be
            pickled raises a ``TypeError`` naming it, before any worker starts.
        devices: see :func:`resolve_devices`.
        timeout: the longest wait: seconds a worker may go without reporting (while starting or working),
            and seconds a collective may wait, before the job is ended with an error naming the worker.
        threads: CPU threads per worker (default: the machine's cores shared out).
        progress: a bar over all ranks, or a callable receiving the fraction done.
    """
    resolved = resolve_devices(devices)
    world = len(resolved)
    backend = "nccl" if all(d.type == "cuda" for d in resolved) else "gloo"
    threads = threads or max(1, (os.cpu_count() or 1) // world)
    folder = tempfile.mkdtemp(prefix="cnnvis-job-")
    bar = None
    try:
        job = os.path.join(folder, "job.pickle")
        payload.write(job, fn, kwargs)  # what cannot be sent fails here, before any worker starts
        bar, report = _progress(progress, desc or f"{getattr(fn, '__name__', 'job')} on {world} devices")
        events: queue_module.Queue = queue_module.Queue()
        env = {**os.environ, "CNNVIS_WORKER": "1", "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, "-c", _BOOTSTRAP, _WORKER, job]
        settings = [str(world), str(_free_port()), backend]
        start = time.monotonic()
        try:
            for rank, device in enumerate(resolved):
                _running.append(_Worker(rank, str(device), [*command, str(rank), *settings, str(device), str(threads),
                                                            str(timeout)], env, events))
            data = _supervise(list(_running), events, timeout, report, _advice(fn, kwargs))
        finally:
            _stop(_running)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(folder, ignore_errors=True)
    result, figures, raised = pickle.loads(data)
    for category, message, filename, lineno in raised:  # what the engine warned of, in rank 0
        warnings.warn_explicit(message, category, filename, lineno)
    last_run.clear()
    last_run.update(figures, devices=[str(d) for d in resolved], threads=threads,
                    job_seconds=time.monotonic() - start)
    return result


def _progress(progress, desc: str):
    """A bar (or the caller's callback) and ``report(fraction)``."""
    if callable(progress):
        return None, progress
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", disable=not progress, leave=False)

    def report(fraction):
        bar.n = round(100 * fraction, 1)
        bar.refresh()

    return bar, report


def _supervise(workers: list[_Worker], events: queue_module.Queue, timeout: float, report, advice: str) -> bytes:
    """Follow the workers' reports until all are done; rank 0's pickled result. Raises on the first failure."""
    world = len(workers)
    fractions = [0.0] * world
    result, done = None, set()
    while len(done) < world:
        try:
            kind, rank, data = events.get(timeout=0.2)
        except queue_module.Empty:
            kind = None
        now = time.monotonic()
        if kind is not None:
            worker = workers[rank]
            worker.heard, worker.doing = now, _DOING.get(kind, worker.doing)
            if kind == "progress":
                fractions[rank] = data
                report(sum(fractions) / world)
            elif kind == "result":
                result = data
            elif kind == "done":
                done.add(rank)
            elif kind == "eof":
                worker.closed = True
            elif kind == "error":
                _raise_death(workers, done, exclude=rank, wait=1.0, advice=advice)  # a peer's death is the cause
                fix = ("Everything the job holds must load in a fresh Python process: define its classes in a module "
                       "it can import, or in __main__ (they travel by value); or run without devices=."
                       if worker.doing == _LOADING else "Fix it, or run without devices= to debug it here.")
                raise RuntimeError(f"{worker.name(world)} failed while {worker.doing}; the job was stopped. Its "
                                   f"error:\n{data}\n{fix}")
        _raise_death(workers, done, exclude=None, wait=0.0, advice=advice)
        if kind == "loaded" and all(w.doing == _WAITING for w in workers):
            for worker in workers:
                worker.go()
        for worker in workers:  # one that waits for the others is not late: they are
            if worker.rank not in done and worker.doing != _WAITING and now - worker.heard > timeout:
                raise TimeoutError(f"{worker.name(world)} reported nothing for {timeout:.0f} s while {worker.doing}; "
                                   f"the job was stopped. Raise timeout= if its start or its batches are that slow. "
                                   f"{advice}")
    return result


def _raise_death(workers: list[_Worker], done: set, exclude: int | None, wait: float, advice: str) -> None:
    """Raise if a worker (other than ``exclude``) ended before it was done, waiting up to ``wait`` seconds for one.
    A worker counts as ended once its reports are closed, or two seconds after its process exited; beside the
    failure of ``exclude``, only one killed by a signal (which ``exclude``'s failure may follow from)."""
    deadline = time.monotonic() + wait
    while True:
        now = time.monotonic()
        for worker in workers:
            code = worker.process.poll()
            if worker.rank in (exclude, *done) or code is None or (exclude is not None and code >= 0):
                continue
            worker.exited = worker.exited or now
            if worker.closed or now - worker.exited > 2.0 or exclude is not None:
                raise RuntimeError(f"{worker.name(len(workers))} {worker.how()} while {worker.doing}; the job was "
                                   f"stopped.{worker.output()}{advice}")
        if now >= deadline:
            return
        time.sleep(0.05)


def _stop(workers: list[_Worker]) -> None:
    """End every worker still running (a stopped one included) and wait for it; forget them."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    deadline = time.monotonic() + 2.0
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(5)
        worker.process.stdin.close()
    workers.clear()


def spread(fn: Callable, devices, kwargs: dict, timeout: float, progress) -> object:
    """What an engine does with ``devices=``: run itself on them, or refuse where that cannot work."""
    from .group import current

    name = getattr(fn, "__name__", "the engine")
    if os.environ.get("CNNVIS_WORKER"):
        raise RuntimeError(f"{name}(devices=...) was called inside a worker process of a devices= job: loading the "
                           "job imported a module that calls it when imported. Put that call under "
                           "`if __name__ == \"__main__\":` (or in a function), so that importing the module does "
                           "not run it.")
    if current().distributed:
        raise RuntimeError("devices= starts its own worker processes; under torchrun the process group already "
                           "exists, so call the engine without devices=.")
    return run_on_devices(fn, {**kwargs, "devices": None}, devices, timeout=timeout, progress=progress)


def _advice(fn: Callable, kwargs: dict) -> str:
    """What to do after a worker of ``fn`` died or hung (a dissection resumes from its checkpoints)."""
    name = getattr(fn, "__name__", "the job")
    if name == "dissect":
        if kwargs.get("checkpoint") is not None:
            return ("Call dissect again with the same checkpoint= to resume from its last checkpoint, with this or "
                    "another number of devices.")
        return "Pass checkpoint=<folder> to dissect so that a rerun resumes where a stopped run ended."
    return (f"Run {name} again (if a worker ran out of memory: with a smaller batch_size or fewer devices), or "
            "without devices=.")


__all__ = ["last_run", "resolve_devices", "run_on_devices", "spread", "worker_pids"]
