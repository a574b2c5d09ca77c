"""DeconvNet projections of the top-9 images of every conv5 unit over ShapeWorld's validation set.

    python benchmarks/bench_deconvnet.py [--device cpu] [--rule deconvnet] [--threads 2] [--quick]

Prints the batched engine's time as a ratio to a plain forward pass over the same images, its speed-up
over a loop that projects one unit at a time (target: >= 5x on a 2-core CPU) and over Captum's
one-neuron-per-call loop, and what projections add to a top-activation scan. ``--quick``: the first 16
conv5 units (144 projections).
"""

from __future__ import annotations

import common  # noqa: I001  (first: switches the result cache off)
import numpy as np
import torch


def captum_loop(model, images, units, positions, rows, rule: str, device: str) -> None:
    """Captum's neuron attribution, one call per activation (its neuron selector is fixed per call)."""
    import warnings

    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    method = {"deconvnet": NeuronDeconvolution, "guided": NeuronGuidedBackprop}[rule]
    attribution = method(model.module, model.submodule("conv5"))
    with warnings.catch_warnings(), model.inference():
        warnings.simplefilter("ignore")
        for u, (r, c), i in zip(units, positions, rows):
            x = model.normalize(images[int(i)].unsqueeze(0).to(device)).requires_grad_(True)
            attribution.attribute(x, neuron_selector=(int(u), int(r), int(c)))


def projection_figures(model, images, top, count: int, args) -> list[dict]:
    """Batched projections of the top images of the first ``count`` units: against a plain forward, a loop
    of one-activation calls, and Captum's loop."""
    from cnnvis_widgets.deconv.projection import deconvnet

    units = np.repeat(np.arange(count), top.k)
    rows, positions = top.indices[:count].reshape(-1), top.positions[:count].reshape(-1, 2)
    selected = images[torch.from_numpy(rows)].to(args.device)
    what = f"{len(rows)} {args.rule} projections ({count} conv5 units x top {top.k})"
    print(what)

    def forward():
        with torch.no_grad(), model.inference():
            for start in range(0, len(selected), args.batch_size):
                model(selected[start:start + args.batch_size])

    def batched():
        return deconvnet(model, images, "conv5", unit=units, position=positions, image_indices=rows,
                         rule=args.rule, batch_size=args.batch_size)

    def one_at_a_time():
        return [deconvnet(model, images, "conv5", unit=int(u), position=p, image_indices=[int(i)], rule=args.rule)
                for u, p, i in zip(units, positions, rows)]

    batched()  # warm-up
    times = common.best_of_each({"forward": forward, "batched": batched}, 3, args.device)
    t_forward, t_batched = times["forward"], times["batched"]
    t_loop = common.best_of(one_at_a_time, 1, args.device)
    together, alone = batched(), one_at_a_time()
    worst = max(float(np.abs(a.projections[0] - b).max() / max(np.abs(b).max(), 1e-12))
                for a, b in zip(alone, together.projections))
    print(f"plain forward over the {len(rows)} images: {t_forward * 1e3:8.1f} ms")
    print(f"batched projections:                  {t_batched * 1e3:8.1f} ms  ({t_batched / t_forward:.1f}x the forward)")
    print(f"one unit at a time:                   {t_loop * 1e3:8.1f} ms  ({t_loop / t_forward:.1f}x the forward)")
    print(f"batched speed-up over the loop:       {t_loop / t_batched:8.1f}x  (target >= 5x)")
    print(f"largest relative difference batched vs alone: {worst:.1e}")
    figures = [common.figure(f"{what}: time", t_batched / t_forward, "x a plain forward over the same images"),
               common.figure(f"{what}: speed-up", t_loop / t_batched, "x one activation per call (target >= 5)")]
    if args.rule != "gradient":
        t_captum = common.best_of(lambda: captum_loop(model, images, units, positions, rows, args.rule, args.device),
                                  1, args.device)
        print(f"Captum, one activation per call:      {t_captum * 1e3:8.1f} ms  "
              f"(batched is {t_captum / t_batched:.1f}x faster)")
        figures.append(common.figure(f"{what}: speed-up", t_captum / t_batched, "x Captum, one activation per call"))
    return figures


def main() -> None:
    parser = common.make_parser(__doc__, "the first 16 conv5 units")
    parser.add_argument("--units", type=int, default=None, help="the first N conv5 units (default: all 64)")
    parser.add_argument("--rule", default="deconvnet", choices=["deconvnet", "guided", "gradient"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common.start("bench_deconvnet", args.device)

    import cnnvis_widgets as cv

    model = cv.load_model("mini_alexnet", device=args.device)
    world = cv.datasets.shapeworld(split="val")
    images = model.image_source(world).images(range(len(world)))  # decoded once, for all runs
    top = cv.top_activations(model, images, "conv5", k=9, progress=False)
    count = min(args.units or (16 if args.quick else top.units), top.units)
    figures = projection_figures(model, images, top, count, args)

    def scan(projections=None):
        return cv.top_activations(model, images, "conv5", k=9, progress=False, projections=projections)

    times = common.best_of_each({"plain": scan, "projected": lambda: scan(args.rule)}, 2, args.device)
    t_top, t_top_projected = times["plain"], times["projected"]
    print(f"top_activations conv5 k=9 over {len(world)} images: {t_top:.2f} s; with projections: "
          f"{t_top_projected:.2f} s")
    figures.append(common.figure(f"top_activations conv5 k=9, {len(world)} images, with projections: time",
                                 t_top_projected / t_top, "x without projections"))
    common.report(figures)


if __name__ == "__main__":
    main()
