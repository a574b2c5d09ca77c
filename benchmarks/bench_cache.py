"""The result cache: each engine's call computed, then served from the cache, on the embedded world.

    python benchmarks/bench_cache.py

Prints, for top activations, activation maximization and dissection, the time to compute, the time to load
the same call from the cache (checksum verified) and the ratio. Target: a cached call is >= 10x faster.
"""

from __future__ import annotations

import tempfile
import time

import cnnvis_widgets as cv
from cnnvis_widgets.cache import ResultCache


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    model = cv.load_model("mini_alexnet")
    world = cv.datasets.shapeworld(split="val")
    folder = tempfile.mkdtemp(prefix="cnnvis-bench-cache-")
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    calls = {
        "top_activations conv5, 1000 images, k=9":
            lambda: cv.top_activations(model, world, "conv5", k=9, progress=False, cache=folder),
        "activation_maximization conv5, 8 units, 128 steps":
            lambda: cv.activation_maximization(model, "conv5", units=range(8), steps=128, progress=False,
                                               cache=folder),
        "dissect conv1-conv5, 1000 images":
            lambda: cv.dissect(model, world, layers, progress=False, result_cache=folder),
    }
    for name, call in calls.items():
        cold, warm = timed(call), timed(call)
        print(f"{name:<52} computed {cold:7.2f} s   from the cache {warm:6.3f} s   {cold / warm:6.0f}x")
    entries = ResultCache(folder).entries()
    print(f"{len(entries)} entries, {sum(e.bytes for e in entries) / 1e6:.1f} MB in {folder}")


if __name__ == "__main__":
    main()
