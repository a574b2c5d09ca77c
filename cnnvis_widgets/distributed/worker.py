"""One worker process of a ``devices=`` job, started by :func:`.launch.run_on_devices`.

It is run by path (``runpy.run_path``), before the package is imported, so that it can report from its first
instant; nothing of the caller's ``__main__`` is imported (a script needs no ``if __name__ == "__main__":``
guard). It keeps its standard output for reports to the caller, one pickled ``(kind, rank, data)`` each, and
sends what the job prints to standard error:

- ``started`` at once, ``starting`` while it imports (every half second at most), ``loaded`` once it has read
  the job (:mod:`.payload`); then it waits for "go" on its standard input (sent once every worker has loaded),
  and reports ``ready`` once it has joined the process group;
- ``progress`` with the engine's fraction done (at every 1%, and at least every second while batches finish);
- rank 0's ``result`` (pickled by cloudpickle, with the run's figures and the warnings it raised), then ``done``;
- ``error`` with the traceback of any exception, from the imports to the end (then it exits with code 1).
"""

import os
import pickle
import sys
import threading
import time
import traceback
import warnings
from multiprocessing.connection import Connection


def main(job: str, rank: str, world: str, port: str, backend: str, device: str, threads: str, timeout: str) -> None:
    rank, world, threads, timeout = int(rank), int(world), int(threads), float(timeout)
    channel = Connection(os.dup(1), readable=False)
    sys.stdout.flush()
    os.dup2(2, 1)  # what the job prints goes to standard error
    lock = threading.Lock()

    def send(kind: str, data=None) -> None:
        with lock:
            channel.send((kind, rank, data))

    send("started")
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    heartbeat = _Imports(send)
    sys.meta_path.insert(0, heartbeat)
    try:
        with open(job, "rb") as f:
            sys.path[:] = pickle.load(f)["sys_path"]
            fn, kwargs = pickle.load(f)
        sys.meta_path.remove(heartbeat)
        send("loaded")
        if sys.stdin.buffer.readline() != b"go\n":  # the caller lets all join at once, or has gone
            os._exit(1)
        _run(fn, kwargs, rank, world, port, backend, device, threads, timeout, send)
    except BaseException as err:  # reported to the caller, who stops the others
        send("error", "".join(traceback.format_exception(type(err), err, err.__traceback__)))
        sys.stderr.flush()
        os._exit(1)


def _run(fn, kwargs, rank, world, port, backend, device, threads, timeout, send) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    from cnnvis_widgets.distributed.merge import reset_traffic, traffic  # absolute: this file runs by path
    from cnnvis_widgets.distributed.payload import dumps

    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout))
    send("ready")
    if "model" in kwargs:
        kwargs["model"].module.to(device)  # this process's copy of the model
    last = [0.0, time.monotonic()]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if fraction - last[0] >= 0.01 or fraction >= 1.0 or now - last[1] >= 1.0:
            last[:] = fraction, now
            send("progress", fraction)

    reset_traffic()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        result = fn(**{**kwargs, "progress": progress})
    wall = time.perf_counter() - start
    if rank == 0:
        raised = [(w.category, str(w.message), w.filename, w.lineno) for w in caught]
        send("result", dumps((result, {**traffic, "wall_seconds": wall}, raised)))
    dist.barrier()
    dist.destroy_process_group()
    send("done")


class _Imports:
    """A module finder that finds nothing: it reports that imports go on (a start-up that stalls reports nothing)."""

    def __init__(self, send):
        self.send, self.last = send, 0.0

    def find_spec(self, name, path=None, target=None):
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            self.send("starting")
        return None


def _exit_with(parent: int) -> None:
    """End this worker once the process that started it is gone (a killed kernel leaves no workers behind)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
