"""Activation maximization: time to quality against Lucent (torch-lucent 0.1.8), the way its users run it.

    .venv/bin/pip install --no-deps torch-lucent==0.1.8 && .venv/bin/pip install kornia==0.5.11 decorator tqdm
    .venv/bin/python benchmarks/bench_am.py [--quick] [--device cuda]

Rows: the 64 channels of MiniAlexNet's conv5, and 4 channels of a torchvision resnet18 block (layer3.1) at
224 px (random weights, seeded: no download). Lucent renders one channel per call with its default recipe
(128 px Fourier image, decorrelated colour, standard transforms, Adam 0.05, 512 steps), resized to the
model's input size by ``fixed_image_size``. Its quality is the channel's mean activation on its final
image without transforms; its time is the call's wall time. We run one batched call per row with the
default ``"lucid"`` preset and keep snapshots. Per unit we report the wall time from the call's start to
the first snapshot whose activation (again without transforms) reaches Lucent's, and that time shared
among the batch's units (the batch serves them all at once). Ratio = Lucent's time / our shared time; a
unit that never reaches Lucent's activation counts as a failure. The row's total time is printed too.
"""

from __future__ import annotations

import copy
import time

import common  # noqa: I001  (first: switches the result cache off)
import numpy as np
import torch
import torch.nn.functional as F

import cnnvis_widgets as cv

LUCENT_MISSING = ("torch-lucent is not installed, so there is no Lucent comparison. For this benchmark only: "
                  ".venv/bin/pip install --no-deps torch-lucent==0.1.8 && .venv/bin/pip install kornia==0.5.11 "
                  "decorator tqdm")


def channel_means(model: cv.Model, layer: str, images: torch.Tensor, units: np.ndarray) -> np.ndarray:
    """The mean activation of channel ``units[i]`` on ``images[i]`` (RGB in [0, 1], no transforms)."""
    out = []
    with model.inference():
        x = F.interpolate(images, size=model.input_size[1:], mode="bilinear", align_corners=False)
        cv.model.run_until(model, x, layer, lambda a: out.append(a.mean((2, 3))))
    return out[0][torch.arange(len(units)), torch.as_tensor(units)].float().cpu().numpy()


def lucent_row(model: cv.Model, layer: str, units, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Lucent's final activation and wall time for every unit, one render_vis call each."""
    from lucent.optvis import render

    name = layer.replace(".", "_")
    values, seconds = [], []
    for unit in units:
        net = copy.deepcopy(model.module).to(device).eval()  # render_vis leaves hooks on every module
        torch.manual_seed(int(unit))
        start = time.perf_counter()
        images = render.render_vis(net, f"{name}:{unit}", fixed_image_size=model.input_size[1], show_image=False,
                                   progress=False)
        seconds.append(time.perf_counter() - start)
        image = torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float()
        values.append(channel_means(model, layer, image.to(device), np.array([unit]))[0])
    return np.array(values), np.array(seconds)


def our_row(model: cv.Model, layer: str, units, every: int) -> tuple[np.ndarray, list[float], float]:
    """Our batched run: activations [snapshots, units] (no transforms), snapshot times, total time."""
    times: dict[int, float] = {}
    start = time.perf_counter()

    def stamp(step, images, history):
        times[step] = time.perf_counter() - start

    result = cv.activation_maximization(model, layer, units=units, snapshot_steps=range(every, 513, every),
                                        on_snapshot=stamp, progress=False)
    total = time.perf_counter() - start
    steps = sorted(result.snapshots)
    acts = np.stack([channel_means(model, layer, torch.from_numpy(result.snapshots[s]).to(model.device),
                                   np.asarray(units)) for s in steps])
    return acts, [times[s] for s in steps], total


def report(title: str, model: cv.Model, layer: str, units, device: str, every: int) -> list[float]:
    print(f"\n== {title}: {layer}, {len(units)} channels, input {model.input_size[1]} px ==", flush=True)
    lucent_values, lucent_seconds = lucent_row(model, layer, units, device)
    acts, times, total = our_row(model, layer, units, every)
    print(f"Lucent: {lucent_seconds.sum():.1f} s in all ({lucent_seconds.mean():.2f} s per channel, 512 steps each); "
          f"ours: {total:.1f} s for the whole batch (512 steps, snapshots every {every})")
    print(f"{'unit':>5} {'lucent act':>11} {'lucent s':>9} {'ours s':>11} {'ours/unit s':>12} {'our act@512':>12} "
          f"{'ratio':>7}")
    ratios = []
    for i, unit in enumerate(units):
        reached = np.flatnonzero(acts[:, i] >= lucent_values[i])
        ours = times[reached[0]] if reached.size else None
        shared = ours / len(units) if ours else None
        ratio = lucent_seconds[i] / shared if shared else 0.0
        ratios.append(ratio)
        print(f"{unit:>5} {lucent_values[i]:>11.3f} {lucent_seconds[i]:>9.2f} "
              f"{(f'{ours:.2f}' if ours else 'not reached'):>11} {(f'{shared:.3f}' if shared else '-'):>12} "
              f"{acts[-1, i]:>12.3f} {ratio:>7.1f}")
    r = np.array(ratios)
    last = max((times[np.flatnonzero(acts[:, i] >= lucent_values[i])[0]] for i in range(len(units))
                if (acts[:, i] >= lucent_values[i]).any()), default=float("nan"))
    print(f"median ratio {np.median(r):.1f}x; units at >= 3x: {(r >= 3).mean():.0%}; not reached: {(r == 0).sum()}; "
          f"whole row: Lucent {lucent_seconds.sum():.1f} s, ours {last:.1f} s until the last reached unit "
          f"({lucent_seconds.sum() / last:.1f}x)", flush=True)
    return ratios


def lucent_installed() -> bool:
    try:
        import lucent  # noqa: F401
    except ImportError:
        return False
    return True


def ratio_figures(what: str, ratios) -> list[dict]:
    """The table's rows for one set of units: median ratio to Lucent, and the share of units at >= 3x."""
    r = np.asarray(ratios)
    return [common.figure(f"{what}: time to Lucent's activation, median", float(np.median(r)),
                          "x faster than Lucent (per unit, batch shared)"),
            common.figure(f"{what}: units at >= 3x", 100 * float((r >= 3).mean()),
                          f"% of {len(r)} units (target >= 90); not reached: {int((r == 0).sum())}")]


def main() -> None:
    parser = common.make_parser(__doc__.split("\n\n")[0], "16 conv5 channels and 2 resnet18 channels")
    parser.add_argument("--every", type=int, default=8, help="our snapshot interval in steps")
    args = parser.parse_args()
    common.start("bench_am", args.device)
    if not lucent_installed():
        print(LUCENT_MISSING)
        common.report([], notes=["AM vs Lucent: skipped, torch-lucent is not installed (set-up: bench_am.py)"])
        return
    mini = cv.load_model("mini_alexnet", device=args.device)
    conv5 = list(range(0, 64, 4)) if args.quick else list(range(64))
    ratios = report("MiniAlexNet", mini, "conv5", conv5, args.device, args.every)
    figures = ratio_figures(f"AM MiniAlexNet conv5, {len(conv5)} channels", ratios)

    import torchvision

    torch.manual_seed(0)
    resnet = cv.Model(torchvision.models.resnet18(weights=None).to(args.device), input_size=(3, 224, 224),
                      name="resnet18 (random weights)")
    channels = [0, 1] if args.quick else [0, 1, 2, 3]
    resnet_ratios = report("resnet18", resnet, "layer3.1", channels, args.device, args.every)
    figures += ratio_figures(f"AM resnet18 layer3.1, {len(channels)} channels", resnet_ratios)
    r = np.array(ratios + resnet_ratios)
    print(f"\nall units: median ratio {np.median(r):.1f}x, at >= 3x: {(r >= 3).mean():.0%} (target: >= 90%)")
    common.report(figures)

if __name__ == "__main__":
    main()
