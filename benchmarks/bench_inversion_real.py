"""Regularized inversion (Mahendran & Vedaldi, IJCV 2016) on EfficientNet-Lite2 at full size (260 px), with
the shipped defaults: per layer, the stride, the normalized feature error ||Phi(x) - Phi0||^2 / ||Phi0||^2,
the spectral ratio (share of energy above a quarter of the sampling frequency, relative to the photo's) and
the wall time; and a PNG strip of the pre-images (one row per layer, the photos on top).

    .venv/bin/python benchmarks/bench_inversion_real.py --out inversion_lite2.png      # ~20-30 min on 2 cores
    .venv/bin/python benchmarks/bench_inversion_real.py --quick --out q.png   # a quick look: 64 px, one photo
"""

from __future__ import annotations

import time

import common  # noqa: I001  (first: switches the result cache off)
import numpy as np
import torch
from PIL import Image

import cnnvis_widgets as cv
from cnnvis_widgets.inversion.metrics import spectral_ratio
from cnnvis_widgets.inversion.regularized import RegularizedConfig, invert_regularized, stride_data_weight

LAYERS = ("_conv_stem", "_blocks.3", "_blocks.6")


def layer_row(model: cv.Model, photos: torch.Tensor, layer: str) -> tuple[torch.Tensor, list[dict]]:
    """One layer's pre-images, its printed row and its figures."""
    stride = model.layer(layer).receptive_field.stride[0]
    start = time.perf_counter()
    images, errors = invert_regularized(model, photos, [layer], progress=False)  # one layer at a time: timed
    common.synchronize(str(model.device))
    wall = time.perf_counter() - start
    error, ratio = errors[layer].cpu().numpy(), spectral_ratio(images[layer], photos)
    c = stride_data_weight(stride, RegularizedConfig())
    print(f"{layer:12s} {stride:6d} {c:6.0f} {np.array2string(error, precision=4):>28s} "
          f"{np.array2string(ratio, precision=2):>22s} {wall:7.0f}", flush=True)
    photo_count = f"{len(photos)} photo{'s' * (len(photos) > 1)}"
    what = f"inversion Lite2 {layer} (stride {stride}), {photo_count}, {photos.shape[-1]} px"
    figures = [common.figure(f"{what}: feature error", float(error.mean()), "squared feature distance over the photo's squared norm"),
               common.figure(f"{what}: spectral ratio", float(np.mean(ratio)), "x the photo's high frequencies"),
               common.figure(f"{what}: time", wall, "s")]
    return images[layer].cpu(), figures


def main() -> None:
    parser = common.make_parser(__doc__.splitlines()[0], "--size 64 --photos 1")
    parser.add_argument("--out", default="inversion_lite2.png", help="where to write the PNG strip")
    parser.add_argument("--size", type=int, default=None, help="input size in px (default 260: the model's own)")
    parser.add_argument("--photos", type=int, default=None, help="how many of chelsea, astronaut, coffee (default 3)")
    parser.add_argument("--layers", default=",".join(LAYERS))
    args = parser.parse_args()
    size, count = args.size or (64 if args.quick else 260), args.photos or (1 if args.quick else 3)
    common.start("bench_inversion_real", args.device)
    model = cv.load_model("efficientnet_lite2", device=args.device)
    names = ("chelsea", "astronaut", "coffee")[:count]
    photos = model.image_source([cv.datasets.photo(n) for n in names]).images(range(len(names)))
    if size != photos.shape[-1]:
        photos = torch.nn.functional.interpolate(photos, size=(size, size), mode="area")
    print(f"EfficientNet-Lite2, photos {names} at {size} px")
    print(f"{'layer':12s} {'stride':>6s} {'C':>6s} {'feature error':>28s} {'spectral ratio':>22s} {'wall s':>7s}")
    rows, figures = [photos], []
    for layer in args.layers.split(","):
        images, layer_figures = layer_row(model, photos.to(args.device), layer)
        rows.append(images)
        figures += layer_figures
    strip = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # [C, layers*H, photos*W]
    Image.fromarray((strip.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(args.out)
    print(f"pre-images (top row: the photos; then {args.layers}) -> {args.out}")
    common.report(figures)


if __name__ == "__main__":
    main()
