"""What every benchmark shares: the result cache switched off for what it times, a header that says where the
figures come from, best-of timing, and the machine-readable line of figures that ``run_all.py`` collects.

Import it before ``cnnvis_widgets``. It switches the result cache off in the environment, so that every engine
call, in the benchmark and in the processes it starts, computes what is timed instead of loading it from a
previous run; :func:`start` switches it off in the process as well and checks that it is off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

os.environ["CNNVIS_RESULT_CACHE"] = "off"  # read at every engine call, inherited by child processes

import torch  # noqa: E402

FIGURES_PREFIX = "FIGURES "


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def make_parser(doc: str, quick: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: ``--device`` and ``--quick`` (``quick`` says what it runs)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=default_device(), help="cpu, cuda or cuda:N")
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def switch_result_cache_off() -> str:
    """Switch the result cache off in this process too; returns its state (``"off"``) or raises if it is on."""
    import cnnvis_widgets as cv

    cv.cache.configure(enabled=False)
    store = cv.cache.default_cache()
    if store is not None:
        raise RuntimeError(f"The result cache is still on ({store.directory}); a benchmark would time loading it.")
    return "off"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict:
    """Where the figures come from: CPU, cores, torch threads and version, device."""
    if device.startswith("cuda"):
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": device}


def start(name: str, device: str) -> None:
    """Switch the result cache off and print the header (call it after setting the number of threads)."""
    info = {**machine(device), "result cache": switch_result_cache_off()}
    print(f"{name} | " + ", ".join(f"{key} {value}" for key, value in info.items()), flush=True)


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def best_of(fn, repeats: int = 3, device: str = "cpu") -> float:
    """The shortest wall time of ``repeats`` calls of ``fn`` (GPU work waited for), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - begin)
    return best


def best_of_each(calls: dict, repeats: int = 3, device: str = "cpu") -> dict:
    """The shortest wall time of each of ``calls`` (name -> function) over ``repeats`` rounds. The calls take
    turns within a round, so that a change in the machine's load disturbs their ratios less."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, fn in calls.items():
            best[name] = min(best[name], best_of(fn, 1, device))
    return best


def figure(name: str, value, unit: str) -> dict:
    """One row of the table: what was measured, its value, and its unit or what it is relative to."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {"name": name, "value": value, "unit": unit}


def report(figures: list[dict], notes: list[str] = ()) -> None:
    """Print the figures (and notes, e.g. why a row is missing) as the one line ``run_all.py`` reads."""
    print(FIGURES_PREFIX + json.dumps({"figures": figures, "notes": list(notes)}), flush=True)
