"""DeconvNet projections of the top-9 images of every conv5 unit over ShapeWorld's validation set.

    python benchmarks/bench_deconvnet.py [--device cpu] [--rule deconvnet] [--threads 2]

Prints the batched engine's time as a ratio to a plain forward pass over the same images, and its speed-up
over a loop that projects one unit at a time (target: >= 5x on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rule", default="deconvnet", choices=["deconvnet", "guided", "gradient"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import cnnvis_widgets as cv
    from cnnvis_widgets.deconv.projection import deconvnet

    model = cv.load_model("mini_alexnet", device=args.device)
    world = cv.datasets.shapeworld(split="val")
    images = model.image_source(world).images(range(len(world)))  # decoded once, for all runs
    top = cv.top_activations(model, images, "conv5", k=9, progress=False)
    units = np.repeat(np.arange(top.units), top.k)
    rows, positions = top.indices.reshape(-1), top.positions.reshape(-1, 2)
    selected = images[torch.from_numpy(rows)].to(args.device)
    print(f"device {args.device}, {torch.get_num_threads()} threads, rule {args.rule}: {len(rows)} projections "
          f"({top.units} conv5 units x top {top.k}) of {len(world)} validation images")

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

    def captum_loop():
        """Captum's neuron attribution, one call per activation (its neuron selector is fixed per call)."""
        import warnings

        from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

        method = {"deconvnet": NeuronDeconvolution, "guided": NeuronGuidedBackprop}[args.rule]
        attribution = method(model.module, model.submodule("conv5"))
        with warnings.catch_warnings(), model.inference():
            warnings.simplefilter("ignore")
            for u, (r, c), i in zip(units, positions, rows):
                x = model.normalize(images[int(i)].unsqueeze(0).to(args.device)).requires_grad_(True)
                attribution.attribute(x, neuron_selector=(int(u), int(r), int(c)))

    batched()  # warm-up
    t_forward = timed(forward)
    t_batched = timed(batched)
    t_loop = timed(one_at_a_time, repeats=1)
    together, alone = batched(), one_at_a_time()
    worst = max(float(np.abs(a.projections[0] - b).max() / max(np.abs(b).max(), 1e-12))
                for a, b in zip(alone, together.projections))
    t_top = timed(lambda: cv.top_activations(model, images, "conv5", k=9, progress=False), repeats=2)
    t_top_projected = timed(lambda: cv.top_activations(model, images, "conv5", k=9, progress=False,
                                                       projections=args.rule), repeats=2)
    print(f"plain forward over the {len(rows)} images: {t_forward * 1e3:8.1f} ms")
    print(f"batched projections:                  {t_batched * 1e3:8.1f} ms  ({t_batched / t_forward:.1f}x the forward)")
    print(f"one unit at a time:                   {t_loop * 1e3:8.1f} ms  ({t_loop / t_forward:.1f}x the forward)")
    print(f"batched speed-up over the loop:       {t_loop / t_batched:8.1f}x  (target >= 5x)")
    print(f"largest relative difference batched vs alone: {worst:.1e}")
    try:
        import captum  # noqa: F401  (a test dependency)
    except ImportError:
        print("captum not installed: no comparison with Captum's one-neuron-per-call loop")
    else:
        if args.rule != "gradient":
            t_captum = timed(captum_loop, repeats=1)
            print(f"Captum, one activation per call:      {t_captum * 1e3:8.1f} ms  "
                  f"(batched is {t_captum / t_batched:.1f}x faster)")
    print(f"top_activations conv5 k=9: {t_top:.2f} s; with projections: {t_top_projected:.2f} s")


if __name__ == "__main__":
    main()
