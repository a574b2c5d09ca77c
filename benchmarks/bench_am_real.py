"""Activation maximization on real ImageNet CNNs: the ``lucid`` and ``maco`` presets on EfficientNet-Lite2.

    .venv/bin/python -W ignore benchmarks/bench_am_real.py                    # full size: 260 px, presets' steps
    .venv/bin/python -W ignore benchmarks/bench_am_real.py --quick   # smoke: --size 64 --steps 32 --classes 4 --crops 2

Class AM for 16 ImageNet classes (listed in ``CLASSES``), one batched call per preset. Reported per preset:
the share of images Lite2 classifies as their class with p >= 0.9, the share that EfficientNet-Lite1 (another
model, the image resized to its input) has in its top 5 (Fel et al. 2023's transferability), and the wall time
per image (the call's time / 16). ``--size`` runs both models at that input size instead of their own (both
are fully convolutional with global pooling); ``--steps`` overrides both presets' steps; ``--crops`` MACO's
crops per step (preset: 6).

Then, when Lucent is installed (see ``bench_am.py``), its row: 8 channels of ``_blocks.10`` (stride 16), time to
Lucent's 512-step activation per unit, as in ``bench_am.py`` (2 channels with ``--quick``).
"""

from __future__ import annotations

import time
from pathlib import Path

import common  # noqa: I001  (first: switches the result cache off)
import numpy as np
import torch
import torch.nn.functional as F

import cnnvis_widgets as cv
from bench_am import lucent_installed, ratio_figures, report
from cnnvis_widgets.optvis import CropTransforms, PRESETS

CLASSES = [1, 9, 84, 107, 130, 292, 301, 323, 327, 340, 555, 779, 937, 949, 963, 980]


def at_size(model: cv.Model, size: int | None) -> cv.Model:
    if size is None:
        return model
    return model.at_input_size(size)


def probabilities(model: cv.Model, images: np.ndarray) -> torch.Tensor:
    x = F.interpolate(torch.from_numpy(images).to(model.device), size=model.input_size[1:], mode="bilinear",
                      align_corners=False, antialias=True)
    with torch.no_grad():
        return torch.softmax(model.module(model.normalize(x)), 1).cpu()


def class_row(preset: str, lite2, lite1, classes, steps, crops, save: Path | None):
    kwargs = {}
    if preset == "maco" and crops is not None:
        kwargs["transforms"] = CropTransforms(crops=crops, box=PRESETS["maco"].transforms.box)
    start = time.perf_counter()
    am = cv.activation_maximization(lite2, None, objective="logit", units=classes, preset=preset, steps=steps,
                                    progress=False, **kwargs)
    seconds = time.perf_counter() - start
    idx = torch.arange(len(classes))
    p2 = probabilities(lite2, am.images)[idx, torch.tensor(classes)]
    top5 = probabilities(lite1, am.images).topk(5, 1).indices
    in_top5 = (top5 == torch.tensor(classes)[:, None]).any(1)
    if save is not None:
        np.save(save / f"am_real_{preset}.npy", am.images)
    return dict(p09=float((p2 >= 0.9).float().mean()), top5=float(in_top5.float().mean()),
                per_image=seconds / len(classes), p=p2.numpy(), steps=am.history.shape[0])


QUICK = {"size": 64, "steps": 32, "classes": 4, "crops": 2}


def parse_args():
    parser = common.make_parser(__doc__.split("\n\n")[0], "a smoke run: " + ", ".join(
        f"--{k} {v}" for k, v in QUICK.items()) + "; 2 Lucent channels")
    parser.add_argument("--size", type=int, default=None, help="input size of both models (default: their own)")
    parser.add_argument("--steps", type=int, default=None, help="steps of both presets (default: the presets')")
    parser.add_argument("--crops", type=int, default=None, help="MACO's crops per step (default: the preset's 6)")
    parser.add_argument("--classes", type=int, default=None, help="the first N of the 16 classes (default: all)")
    parser.add_argument("--save", type=Path, default=None, help="folder for the images (.npy)")
    parser.add_argument("--lucent-only", action="store_true", help="only the Lucent comparison")
    args = parser.parse_args()
    for key, value in QUICK.items():
        if args.quick and getattr(args, key) is None:
            setattr(args, key, value)
    args.classes = args.classes or len(CLASSES)
    return args


def main() -> None:
    args = parse_args()
    common.start("bench_am_real", args.device)
    lite2 = at_size(cv.load_model("efficientnet_lite2", device=args.device), args.size)
    lite1 = at_size(cv.load_model("efficientnet_lite1", device=args.device), args.size)
    classes = CLASSES[:args.classes]
    print(f"classes: {', '.join(lite2.classes[c] for c in classes)}")
    print(f"Lite2 at {lite2.input_size[1]} px, Lite1 at {lite1.input_size[1]} px")
    print(f"{'preset':>8} {'steps':>6} {'Lite2 p>=0.9':>13} {'Lite1 top-5':>12} {'s / image':>10}")
    figures = []
    for preset in () if args.lucent_only else ("lucid", "maco"):
        row = class_row(preset, lite2, lite1, classes, args.steps, args.crops, args.save)
        print(f"{preset:>8} {row['steps']:>6} {row['p09']:>13.0%} {row['top5']:>12.0%} {row['per_image']:>10.2f}"
              f"   p: {np.round(row['p'], 2).tolist()}", flush=True)
        what = f"AM {preset}, Lite2 logits, {len(classes)} classes, {lite2.input_size[1]} px, {row['steps']} steps"
        figures += [common.figure(f"{what}: p >= 0.9", 100 * row["p09"], "% of images (Lite2)"),
                    common.figure(f"{what}: Lite1 top-5", 100 * row["top5"], "% of images (transfer)"),
                    common.figure(f"{what}: time", row["per_image"], "s per image")]
    if not lucent_installed():
        print("Lucent is not installed: no Lucent row (see bench_am.py for its set-up).")
        common.report(figures, ["AM vs Lucent on Lite2: skipped, torch-lucent is not installed (set-up: bench_am.py)"])
        return
    common.report(figures + lucent_figures(lite2, args.device, channels=2 if args.quick else 8))


def lucent_figures(lite2: cv.Model, device: str, channels: int) -> list[dict]:
    """Lite2 ``_blocks.10`` against Lucent, as in ``bench_am.py``."""
    ratios = np.array(report("EfficientNet-Lite2", lite2, "_blocks.10", list(range(channels)), device, 8))
    print(f"Lite2 _blocks.10: median ratio {np.median(ratios):.1f}x, at >= 3x: {(ratios >= 3).mean():.0%}")
    return ratio_figures(f"AM Lite2 _blocks.10, {channels} channels, {lite2.input_size[1]} px", ratios)

if __name__ == "__main__":
    main()
