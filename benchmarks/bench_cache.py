"""The result cache: each engine's call computed, then served from the cache, on the embedded world.

    python benchmarks/bench_cache.py [--device cpu] [--quick]

Prints, for top activations, activation maximization and dissection, the time to compute, the time to load
the same call from the cache (checksum verified) and the ratio. Target: a cached call is >= 10x faster.
Unlike every other benchmark, this one times the result cache: a fresh folder of its own, so the first call
of each engine always computes (the dissection reads its masks from the decoded-mask cache). ``--quick``:
activation maximization of 4 units for 64 steps.
"""

from __future__ import annotations

import tempfile

import common  # noqa: I001  (first: switches the default result cache off; this benchmark uses its own)
import cnnvis_widgets as cv
from cnnvis_widgets.cache import ResultCache


def main() -> None:
    args = common.make_parser(__doc__, "activation maximization of 4 units for 64 steps").parse_args()
    common.start("bench_cache", args.device)
    model = cv.load_model("mini_alexnet", device=args.device)
    world = cv.datasets.shapeworld(split="val")
    folder = tempfile.mkdtemp(prefix="cnnvis-bench-cache-")
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    units, steps = (4, 64) if args.quick else (8, 128)
    top_name = f"top_activations conv5, {len(world)} images, k=9"
    calls = {
        top_name: lambda: cv.top_activations(model, world, "conv5", k=9, progress=False, cache=folder),
        f"activation_maximization conv5, {units} units, {steps} steps":
            lambda: cv.activation_maximization(model, "conv5", units=range(units), steps=steps, progress=False,
                                               cache=folder),
        f"dissect conv1-conv5, {len(world)} images":
            lambda: cv.dissect(model, world, layers, progress=False, result_cache=folder),
    }
    figures = []
    for name, call in calls.items():
        cold, warm = common.best_of(call, 1, args.device), common.best_of(call, 1, args.device)
        print(f"{name:<52} computed {cold:7.2f} s   from the cache {warm:6.3f} s   {cold / warm:6.0f}x")
        if name == top_name:
            figures += [common.figure(f"{name}: computed", cold, "s"),
                        common.figure(f"{name}: from the result cache", warm, "s")]
        figures.append(common.figure(f"{name}: from the result cache", cold / warm,
                                     "x faster than computing it (target >= 10)"))
    entries = ResultCache(folder).entries()
    print(f"{len(entries)} entries, {sum(e.bytes for e in entries) / 1e6:.1f} MB in {folder}")
    common.report(figures)


if __name__ == "__main__":
    main()
