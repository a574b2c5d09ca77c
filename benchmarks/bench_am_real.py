"""Activation maximization on real ImageNet CNNs: the ``lucid`` and ``maco`` presets on EfficientNet-Lite2.

    .venv/bin/python -W ignore benchmarks/bench_am_real.py                    # full size: 260 px, presets' steps
    .venv/bin/python -W ignore benchmarks/bench_am_real.py --size 64 --steps 32 --classes 4 --crops 2   # CPU smoke

Class AM for 16 ImageNet classes (listed in ``CLASSES``), one batched call per preset. Reported per preset:
the share of images Lite2 classifies as their class with p >= 0.9, the share that EfficientNet-Lite1 (another
model, the image resized to its input) has in its top 5 (Fel et al. 2023's transferability), and the wall time
per image (the call's time / 16). ``--size`` runs both models at that input size instead of their own (both
are fully convolutional with global pooling); ``--steps`` overrides both presets' steps; ``--crops`` MACO's
crops per step (preset: 6).

Then, when Lucent is installed (see ``bench_am.py``), its row: 8 channels of ``_blocks.10`` (stride 16), time to
Lucent's 512-step activation per unit, as in ``bench_am.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import cnnvis_widgets as cv
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="input size of both models (default: their own)")
    parser.add_argument("--steps", type=int, default=None, help="steps of both presets (default: the presets')")
    parser.add_argument("--crops", type=int, default=None, help="MACO's crops per step (default: the preset's 6)")
    parser.add_argument("--classes", type=int, default=16, help="the first N of the 16 classes")
    parser.add_argument("--save", type=Path, default=None, help="folder for the images (.npy)")
    parser.add_argument("--lucent-only", action="store_true", help="only the Lucent comparison")
    args = parser.parse_args()
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    lite2 = at_size(cv.load_model("efficientnet_lite2", device=args.device), args.size)
    lite1 = at_size(cv.load_model("efficientnet_lite1", device=args.device), args.size)
    classes = CLASSES[:args.classes]
    print(f"classes: {', '.join(lite2.classes[c] for c in classes)}")
    print(f"Lite2 at {lite2.input_size[1]} px, Lite1 at {lite1.input_size[1]} px")
    print(f"{'preset':>8} {'steps':>6} {'Lite2 p>=0.9':>13} {'Lite1 top-5':>12} {'s / image':>10}")
    for preset in () if args.lucent_only else ("lucid", "maco"):
        row = class_row(preset, lite2, lite1, classes, args.steps, args.crops, args.save)
        print(f"{preset:>8} {row['steps']:>6} {row['p09']:>13.0%} {row['top5']:>12.0%} {row['per_image']:>10.2f}"
              f"   p: {np.round(row['p'], 2).tolist()}", flush=True)
    try:
        import lucent  # noqa: F401
    except ImportError:
        print("Lucent is not installed: no Lucent row (see bench_am.py for its set-up).")
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_am import report

    ratios = np.array(report("EfficientNet-Lite2", lite2, "_blocks.10", list(range(8)), args.device, 8))
    print(f"Lite2 _blocks.10: median ratio {np.median(ratios):.1f}x, at >= 3x: {(ratios >= 3).mean():.0%}")


if __name__ == "__main__":
    main()
