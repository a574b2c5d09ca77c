"""One dissection, one process or several: MiniAlexNet conv1-conv5 over ShapeWorld (both splits, 5000 images).

    python benchmarks/bench_distributed.py                       # CPU: 1 process x 2 threads vs 2 processes x 1
    python benchmarks/bench_distributed.py --device cuda         # every GPU (one: 1 process vs 1 worker on cuda:0)
    python benchmarks/bench_distributed.py --devices cuda:0 cuda:1 --threads 4

Prints, per configuration, the wall time of the dissection itself (inside the workers, from their process
group's start to the merged result) and of the whole call (with starting the worker processes), their ratio
to the single process, the seconds spent in the merges and the bytes each rank sent. Both runs read the
decoded-mask cache (warmed first), so the figures are the engine's, not PNG decoding's. The quantile is
exact (``exact_quantile=True``): conv1's 5 million positions per unit would otherwise be subsampled, and
each rank's coin flips differ from the single process's (an equally good estimate, not the same bits).
``--quick`` changes nothing: the run is short already (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import time

import common  # noqa: I001  (first: switches the result cache off)
import numpy as np
import torch

import cnnvis_widgets as cv

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def workers(device: str) -> list[str]:
    """The workers for ``--device``: two CPU processes, or every GPU (one worker on a single GPU)."""
    if device == "cuda":
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [device] if device.startswith("cuda") else ["cpu", "cpu"]


def main() -> None:
    parser = common.make_parser(__doc__.splitlines()[0], "the same run (it is short already)")
    parser.add_argument("--devices", nargs="+", default=None, help="the workers' devices (default: from --device)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the single process")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    devices = args.devices or workers(args.device)
    torch.set_num_threads(args.threads)
    single_device = devices[0] if devices[0].startswith("cuda") else "cpu"
    common.start("bench_distributed", single_device)
    model = cv.load_model("mini_alexnet", device=single_device)
    world = cv.datasets.shapeworld(split=None)

    def dissect(**options):
        return cv.dissect(model, world, LAYERS, batch_size=args.batch_size, exact_quantile=True, progress=False,
                          **options)

    dissect()  # warms the decoded-mask cache
    start = time.perf_counter()
    one = dissect()
    common.synchronize(single_device)
    single = time.perf_counter() - start
    start = time.perf_counter()
    many = dissect(devices=devices)
    whole = time.perf_counter() - start
    run = cv.distributed.last_run
    same = all(np.array_equal(getattr(one.layers[n], f), getattr(many.layers[n], f)) for n in LAYERS
               for f in ("thresholds", "intersection", "unit_pixels", "top_indices"))

    units = sum(model.layer(n).units for n in LAYERS)
    print(f"dissection of {units} units ({', '.join(LAYERS)}) over {len(world)} ShapeWorld images")
    print(f"{'configuration':34s} {'dissection s':>12s} {'ratio':>6s} {'with start s':>12s} {'merge s':>8s} "
          f"{'sent MB/rank':>12s}")
    print(f"{f'1 process x {args.threads} threads on {single_device}':34s} {single:12.2f} {1.0:6.2f} {single:12.2f} "
          f"{0.0:8.3f} {0.0:12.2f}")
    label = f"{len(devices)} processes x {run['threads']} threads ({', '.join(devices)})"
    print(f"{label:34s} {run['wall_seconds']:12.2f} {run['wall_seconds'] / single:6.2f} {whole:12.2f} "
          f"{run['seconds']:8.3f} {run['bytes'] / 1e6:12.2f}")
    print(f"identical results (thresholds, tallies, top images): {same}")
    what = f"dissect conv1-conv5, {len(world)} images, exact quantile"
    common.report([
        common.figure(f"{what}: 1 process x {args.threads} threads", single, f"s on {single_device}"),
        common.figure(f"{what}: {label}", run["wall_seconds"], "s, without starting the workers"),
        common.figure(f"{what}: {len(devices)} processes", run["wall_seconds"] / single, "x the single process"),
        common.figure(f"{what}: starting the workers", whole - run["wall_seconds"], "s"),
        common.figure(f"{what}: merges", run["seconds"], "s"),
        common.figure(f"{what}: sent", run["bytes"] / 1e6, "MB per rank"),
        common.figure(f"{what}: identical to one process", "yes" if same else "NO", "thresholds, tallies, top images")])


if __name__ == "__main__":
    main()
