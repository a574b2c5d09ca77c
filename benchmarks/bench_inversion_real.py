"""Regularized inversion (Mahendran & Vedaldi, IJCV 2016) on EfficientNet-Lite2 at full size (260 px), with
the shipped defaults: per layer, the stride, the normalized feature error ||Phi(x) - Phi0||^2 / ||Phi0||^2,
the spectral ratio (share of energy above a quarter of the sampling frequency, relative to the photo's) and
the wall time; and a PNG strip of the pre-images (one row per layer, the photos on top).

    .venv/bin/python benchmarks/bench_inversion_real.py --out inversion_lite2.png      # ~20-30 min on 2 cores
    .venv/bin/python benchmarks/bench_inversion_real.py --size 128 --photos 1 --out q.png   # a quick look
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

import cnnvis_widgets as cv
from cnnvis_widgets.inversion.metrics import spectral_ratio
from cnnvis_widgets.inversion.regularized import invert_regularized

LAYERS = ("_conv_stem", "_blocks.3", "_blocks.6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="inversion_lite2.png", help="where to write the PNG strip")
    parser.add_argument("--size", type=int, default=260, help="input size in px (260: the model's own)")
    parser.add_argument("--photos", type=int, default=3, help="how many of chelsea, astronaut, coffee")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()
    model = cv.load_model("efficientnet_lite2", device="cpu")
    names = ("chelsea", "astronaut", "coffee")[: args.photos]
    photos = model.image_source([cv.datasets.photo(n) for n in names]).images(range(len(names)))
    if args.size != photos.shape[-1]:
        photos = torch.nn.functional.interpolate(photos, size=(args.size, args.size), mode="area")
    print(f"EfficientNet-Lite2, photos {names} at {args.size} px, torch threads {torch.get_num_threads()}")
    print(f"{'layer':12s} {'stride':>6s} {'C':>6s} {'feature error':>28s} {'spectral ratio':>22s} {'wall s':>7s}")
    rows = [photos]
    from cnnvis_widgets.inversion.regularized import RegularizedConfig, stride_data_weight
    for layer in args.layers.split(","):
        stride = model.layer(layer).receptive_field.stride[0]
        start = time.perf_counter()
        images, errors = invert_regularized(model, photos, [layer], progress=False)  # one layer at a time: timed
        wall = time.perf_counter() - start
        ratio = spectral_ratio(images[layer], photos)
        c = stride_data_weight(stride, RegularizedConfig())
        print(f"{layer:12s} {stride:6d} {c:6.0f} {np.array2string(errors[layer].numpy(), precision=4):>28s} "
              f"{np.array2string(ratio, precision=2):>22s} {wall:7.0f}", flush=True)
        rows.append(images[layer])
    strip = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # [C, layers*H, photos*W]
    Image.fromarray((strip.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(args.out)
    print(f"pre-images (top row: the photos; then {args.layers}) -> {args.out}")


if __name__ == "__main__":
    main()
