"""Network Dissection of every unit of MiniAlexNet's conv1-conv5 over ShapeWorld's validation images.

    python benchmarks/bench_dissection.py [--device cpu] [--threads 2] [--scale 4]

Prints the dissection's time as a ratio to a plain forward pass over the same images read the same way
(target: <= 3x on a 2-core CPU), cold (mask PNGs decoded) and warm (decoded masks read from the cache),
and the peak memory a dissection adds over its starting point at 1x and ``--scale``x the images (target:
flat). Each memory figure comes from a fresh process whose peak resident size is reset before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(images: int, device: str, threads: int) -> None:
    """Run one dissection and print its peak added memory as JSON (runs in a fresh process)."""
    torch.set_num_threads(threads)
    import cnnvis_widgets as cv

    model = cv.load_model("mini_alexnet", device=device)
    world = cv.datasets.shapeworld(split="val", sizes={"train": 0, "val": images})
    cv.dissect(model, world, LAYERS, progress=False)  # warms up and writes the mask cache
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident size (VmHWM)
    start = _rss_kib("VmRSS")
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cv.dissect(model, world, LAYERS, progress=False)
    out = {"images": len(world), "added_mib": (_rss_kib("VmHWM") - start) / 1024}
    if device.startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=4, help="the larger dataset for the memory check, in x")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.device, args.threads)
        return
    torch.set_num_threads(args.threads)

    import cnnvis_widgets as cv

    model = cv.load_model("mini_alexnet", device=args.device)
    world = cv.datasets.shapeworld(split="val")
    units = sum(model.layer(name).units for name in LAYERS)
    print(f"device {args.device}, {torch.get_num_threads()} threads: {units} units of {', '.join(LAYERS)} over "
          f"{len(world)} ShapeWorld validation images ({len(world.labels)} concepts)")

    def forward():
        with torch.no_grad(), model.inference():
            for _, batch in model.image_source(world).batches(args.batch_size):
                model(batch.to(args.device))

    cold_cache = tempfile.mkdtemp(prefix="bench-dissection-")

    def dissect_cold():
        return cv.dissect(model, world, LAYERS, batch_size=args.batch_size, progress=False, cache=False)

    def dissect_warm():
        return cv.dissect(model, world, LAYERS, batch_size=args.batch_size, progress=False, cache=cold_cache)

    dissect_warm()  # writes the decoded-mask cache
    plain = best_of(forward, args.repeats)
    cold = best_of(dissect_cold, args.repeats)
    warm = best_of(dissect_warm, args.repeats)
    print(f"plain forward (images read from the dataset): {plain:.2f} s")
    print(f"dissection, masks decoded from PNG:            {cold:.2f} s = {cold / plain:.2f}x the forward")
    print(f"dissection, masks from the decoded cache:      {warm:.2f} s = {warm / plain:.2f}x the forward  (target <= 3x)")

    figures = []
    for images in (len(world), args.scale * len(world)):
        env = {**os.environ, "CNNVIS_SMALL": "0"}
        line = subprocess.run([sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
                               "--memory-child", str(images)], check=True, capture_output=True, text=True,
                              env=env).stdout.strip().splitlines()[-1]
        figures.append(json.loads(line))
    for figure in figures:
        extra = f", CUDA peak {figure['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in figure else ""
        print(f"peak memory added by a dissection of {figure['images']} images: {figure['added_mib']:.0f} MiB{extra}")
    print(f"ratio {args.scale}x images / 1x: {figures[1]['added_mib'] / max(figures[0]['added_mib'], 1e-9):.2f} "
          "(target: flat, ~1)")


if __name__ == "__main__":
    main()
