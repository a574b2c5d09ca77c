"""Network Dissection of every unit of MiniAlexNet's conv1-conv5 over ShapeWorld's validation images.

    python benchmarks/bench_dissection.py [--device cpu] [--threads 2] [--scale 4] [--images N] [--quick]

Prints the dissection's time as a ratio to a plain forward pass over the same images read the same way
(target: <= 3x on a 2-core CPU), cold (mask PNGs decoded) and warm (decoded masks read from the decoded-mask
cache, which is not the result cache: the dissection itself is computed every time), and the peak memory a
dissection adds over its starting point at 1x and ``--scale``x the images (target: flat). Each memory figure
comes from a fresh process whose peak resident size is reset before the run. ``--quick``: best of 2, memory at
1x and 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import common  # noqa: I001  (first: switches the result cache off)
import torch

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def validation_world(images: int | None):
    """ShapeWorld's validation split, or a world of ``images`` validation images only."""
    import cnnvis_widgets as cv

    if images is None:
        return cv.datasets.shapeworld(split="val")
    return cv.datasets.shapeworld(split="val", sizes={"train": 0, "val": images})


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(images: int, device: str, threads: int) -> None:
    """Run one dissection and print its peak added memory as JSON (runs in a fresh process)."""
    torch.set_num_threads(threads)
    common.switch_result_cache_off()
    import cnnvis_widgets as cv

    model = cv.load_model("mini_alexnet", device=device)
    world = validation_world(images)
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


def time_figures(args, images: int | None, repeats: int) -> list[dict]:
    """Dissection time against a plain forward, masks decoded and from the decoded-mask cache."""
    import cnnvis_widgets as cv

    model = cv.load_model("mini_alexnet", device=args.device)
    world = validation_world(images)
    units = sum(model.layer(name).units for name in LAYERS)
    what = f"dissect conv1-conv5 ({units} units), {len(world)} images"
    print(f"{units} units of {', '.join(LAYERS)} over {len(world)} ShapeWorld validation images "
          f"({len(world.labels)} concepts)")

    def forward():
        with torch.no_grad(), model.inference():
            for _, batch in model.image_source(world).batches(args.batch_size):
                model(batch.to(args.device))

    mask_cache = tempfile.mkdtemp(prefix="bench-dissection-")

    def dissect(cache):
        return cv.dissect(model, world, LAYERS, batch_size=args.batch_size, progress=False, cache=cache)

    dissect(mask_cache)  # writes the decoded-mask cache
    calls = {"plain": forward, "cold": lambda: dissect(False), "warm": lambda: dissect(mask_cache)}
    times = common.best_of_each(calls, repeats, args.device)
    plain, cold, warm = times["plain"], times["cold"], times["warm"]
    print(f"plain forward (images read from the dataset): {plain:.2f} s")
    print(f"dissection, masks decoded from PNG:            {cold:.2f} s = {cold / plain:.2f}x the forward")
    print(f"dissection, masks from the decoded cache:      {warm:.2f} s = {warm / plain:.2f}x the forward  (target <= 3x)")
    return [common.figure(f"{what}, masks decoded: time", cold / plain, "x a plain forward"),
            common.figure(f"{what}, warm (decoded-mask cache): time", warm / plain, "x a plain forward (target <= 3)")]


def memory_figures(args, images: int, scale: int) -> list[dict]:
    """Peak memory a dissection adds at 1x and ``scale``x the images, each in a fresh process."""
    runs = []
    for count in (images, scale * images):
        env = {**os.environ, "CNNVIS_SMALL": "0"}
        line = subprocess.run([sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
                               "--memory-child", str(count)], check=True, capture_output=True, text=True,
                              env=env).stdout.strip().splitlines()[-1]
        runs.append(json.loads(line))
    for run in runs:
        extra = f", CUDA peak {run['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in run else ""
        print(f"peak memory added by a dissection of {run['images']} images: {run['added_mib']:.0f} MiB{extra}")
    ratio = runs[1]["added_mib"] / max(runs[0]["added_mib"], 1e-9)
    print(f"ratio {scale}x images / 1x: {ratio:.2f} (target: flat, ~1)")
    return [common.figure(f"dissect conv1-conv5, memory added at {runs[1]['images']} / {runs[0]['images']} images",
                          ratio, "ratio (target ~1: flat)")]


def main() -> None:
    parser = common.make_parser(__doc__, "best of 2, memory at 1x and 2x")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=None, help="a world of N validation images (default: 1000)")
    parser.add_argument("--scale", type=int, default=None, help="the larger dataset for the memory check, in x")
    parser.add_argument("--repeats", type=int, default=None, help="best of N (default 3)")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.device, args.threads)
        return
    torch.set_num_threads(args.threads)
    common.start("bench_dissection", args.device)
    figures = time_figures(args, args.images, args.repeats or (2 if args.quick else 3))
    figures += memory_figures(args, args.images or 1000, args.scale or (2 if args.quick else 4))
    common.report(figures)


if __name__ == "__main__":
    main()
