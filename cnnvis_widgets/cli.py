"""The ``cnnvis`` command line: the same engines, headless.

``top``, ``dissect``, ``net2vec`` and ``am`` also run under ``torchrun`` (``torchrun --nproc-per-node 4 -m cnnvis_widgets.cli
dissect ...``): every rank does its share, the ranks merge exactly and rank 0 writes the files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _tour(args) -> None:
    from .widgets.export import run_tour

    out = run_tour(args.out, small=args.small, timeout=args.timeout)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser, no server needed")


def _export(args) -> None:
    import nbformat

    from .widgets.export import execute_notebook, notebook_to_html

    if not args.notebook.is_file():
        sys.exit(f"cnnvis export: {args.notebook} is not a file; pass the path of a .ipynb notebook.")
    if args.execute:
        nb = execute_notebook(args.notebook, timeout=args.timeout, env={"CNNVIS_SMALL": "1"} if args.small else None)
    else:
        nb = nbformat.read(args.notebook, as_version=4)
        if not nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state"):
            print(f"note: {args.notebook} holds no saved widget state; its widgets will be missing. Save it from "
                  "JupyterLab with widget state (Settings > Save Widget State Automatically) or pass --execute.")
    out = notebook_to_html(nb, args.out or args.notebook.with_suffix(".html"))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser, no server needed")


def _cache(args) -> None:
    from .cache import ResultCache, default_cache

    store = ResultCache(args.dir) if args.dir is not None else default_cache(ignore_switch=True)
    entries = store.entries()
    if args.action == "list":
        if not entries:
            print(f"no cached results in {store.directory}")
            return
        for entry in entries:
            print(entry.describe())
        total = sum(e.bytes for e in entries)
        print(f"{len(entries)} result{'s' * (len(entries) != 1)}, {total / 1e6:.1f} MB of "
              f"{store.max_bytes / 1e9:.1f} GB, in {store.directory}")
    else:
        freed = store.clear()
        print(f"removed {len(entries)} result{'s' * (len(entries) != 1)} ({freed / 1e6:.1f} MB) from {store.directory}")


def _train(args) -> None:
    from .zoo.mini_alexnet_training import TrainingConfig, train_mini_alexnet

    config = TrainingConfig(seed=args.seed, epochs=args.epochs)
    _, log = train_mini_alexnet(args.out, config)
    for epoch, loss, acc in zip(log.epoch, log.train_loss, log.val_accuracy):
        print(f"epoch {epoch:2d}  train loss {loss:.4f}  held-out accuracy {acc:.3f}")
    print(f"{log.seconds:.0f} s; weights written to {args.out}")


def _accuracy(args) -> None:
    from .loading import load_model
    from .zoo.mini_alexnet_training import held_out_accuracy

    model = load_model("mini_alexnet", epoch=args.epoch, device="cpu")
    acc = held_out_accuracy(model.module, count=args.images)
    print(f"{model.name}: held-out accuracy {acc:.4f} on {args.images} ShapeWorld validation images")


def _layers(args) -> None:
    from .loading import load_model

    model = load_model(args.model, weights=None if args.random else "DEFAULT", device="cpu")
    print(model.layers)


def _top(args) -> None:
    from .datasets import shapeworld
    from .deconv.top_images import top_activations
    from .distributed.torchrun import joined
    from .loading import load_model

    with joined(args.timeout) as (group, device):
        model = load_model(args.model, device=device)
        world = shapeworld(split="val")
        images = world if args.images is None else _first(world, args.images)
        result = top_activations(model, images, args.layer, k=args.k, batch_size=args.batch_size)
        if group.leader:
            print(f"wrote {result.save(args.out)}" + (f" (merged from {group.world} processes)" if group.distributed
                                                      else ""))


def _first(dataset, count: int):
    import torch

    return torch.utils.data.Subset(dataset, range(min(count, len(dataset))))


def _am(args) -> None:
    from .distributed.torchrun import joined
    from .loading import load_model
    from .optvis import activation_maximization

    with joined(args.timeout) as (group, device):
        model = load_model(args.model, device=device)
        result = activation_maximization(model, args.layer, units=args.units, preset=args.preset, steps=args.steps,
                                         batch_size=args.batch_size, seed=args.seed)
        if group.leader:
            result.save(args.out)
            print(f"wrote {args.out}: {len(result.units)} units of {args.layer}"
                  + (f" from {group.world} processes" if group.distributed else ""))


def _train_decoders(args) -> None:
    from .inversion.shipped import train_shipped_decoders
    from .inversion.upconv import SHIPPED_LAYERS, errors_table

    decoders = train_shipped_decoders(args.layers or SHIPPED_LAYERS, epochs=args.epochs, out=args.out, train_images=args.images,
                                      checkpoints=args.checkpoints, seed=args.seed)
    for layer, decoder in decoders.items():
        log = decoder.training_log
        print(f"{layer}: {log['epoch'][-1]} epochs in {log['seconds']:.0f} s, held-out pixel error "
              f"{log['held_out']['None']:.4f}")
    print(errors_table({layer: {None if k == "None" else k: v for k, v in d.training_log["held_out"].items()}
                        for layer, d in decoders.items()}))
    print(f"decoders written to {args.out}")


def _train_generator(args) -> None:
    from .inversion.generator import train_shipped_generator

    generator = train_shipped_generator(epochs=args.epochs, out=args.out, train_images=args.images,
                                        checkpoints=args.checkpoints, seed=args.seed)
    log = generator.training_log
    print(f"DGN-AM generator (fc6 decoder, fc7 feature loss): {log['epoch'][-1]} epochs in {log['seconds']:.0f} s, "
          f"held-out pixel error {log['held_out']['None']:.4f}; written to {args.out / 'mini_alexnet.safetensors'}")


def _add_training_options(p, weights_folder: str, epochs_help: str) -> None:
    """Options shared by the commands that regenerate shipped weights."""
    p.add_argument("--epochs", type=int, default=None, help=epochs_help)
    p.add_argument("--images", type=int, default=8000, help="ShapeWorld training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=Path(__file__).parent / "zoo" / "weights" / weights_folder, type=Path)
    p.add_argument("--checkpoints", type=Path, default=None,
                   help="checkpoint folder; an interrupted run resumes from it (default: in the cache folder)")


def _decoder_errors(args) -> None:
    from .datasets.shapeworld import shapeworld_images
    from .inversion.upconv import available_decoders, decoder_errors, errors_table, load_decoder
    from .loading import load_model

    model = load_model("mini_alexnet", device="cpu")
    layers = args.layers or available_decoders("mini_alexnet")
    decoders = {layer: load_decoder("mini_alexnet", layer) for layer in layers}
    errors = decoder_errors(model, decoders, shapeworld_images("val", args.images), seed=args.seed)
    print(f"UpconvNet pixel error ||x - x0||^2 / ||x0 - mean(x0)||^2 on {args.images} ShapeWorld validation images "
          "(Dosovitskiy & Brox 2016); columns: feature perturbation")
    print(errors_table(errors))


def _dissect(args) -> None:
    import pandas as pd

    from .datasets import Broden, shapeworld
    from .dissection import dissect
    from .distributed.torchrun import joined
    from .loading import load_model

    with joined(args.timeout) as (group, device):
        model = load_model(args.model, device=device)
        dataset = Broden(args.broden, split=args.split) if args.broden else shapeworld(split="val")
        result = dissect(model, dataset, args.layers, quantile=args.quantile, iou_threshold=args.iou_threshold,
                         batch_size=args.batch_size, checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every)
        if not group.leader:
            return
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"Network Dissection of {model.name} on {len(dataset)} images: unique concepts detected per "
              f"category (IoU >= {args.iou_threshold}, quantile {args.quantile})"
              + (f", {group.world} processes" if group.distributed else ""))
        print(result.summary().to_string())
    written = result.to_csv(args.out)
    report = result.to_html(args.out / "report.html")
    print(f"wrote {', '.join(str(p) for p in written)} and {report}")


def _net2vec(args) -> None:
    import pandas as pd

    from .datasets import shapeworld
    from .dissection import net2vec
    from .loading import load_model

    from .distributed.torchrun import joined

    with joined(args.timeout) as (group, device):
        model = load_model(args.model, device=device)
        result = net2vec(model, shapeworld(split=None), args.layer, concepts=args.concepts, epochs=args.epochs,
                         seed=args.seed)
        if not group.leader:
            return
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(f"Net2Vec on {model.name} {args.layer} (ShapeWorld train -> val, {args.epochs} epochs): held-out set IoU")
        print(result.table().to_string(index=False))
    print(f"learned combination >= best single unit for {result.wins:.0%} of {len(result.concepts)} concepts; "
          f"mean set IoU {result.set_iou.mean():.3f} vs {result.single_iou.mean():.3f}")


def _add_distributed_options(p) -> None:
    p.add_argument("--timeout", type=float, default=600.0,
                   help="under torchrun: seconds a rank may wait for the others before the job fails")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cnnvis", description="CNN visualization, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tour", help="run the tour notebook and write a self-contained HTML file")
    p.add_argument("--out", default="tour.html", type=Path)
    p.add_argument("--small", action="store_true", help="fewer images (as in CI)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    p.set_defaults(run=_tour)

    p = sub.add_parser("export", help="write any notebook as one self-contained HTML page whose widgets work offline")
    p.add_argument("notebook", type=Path)
    p.add_argument("--out", type=Path, default=None, help="default: the notebook's name with .html")
    p.add_argument("--execute", action="store_true", help="run the notebook first (else: its saved outputs and state)")
    p.add_argument("--small", action="store_true", help="with --execute: fewer images (CNNVIS_SMALL=1, as in CI)")
    p.add_argument("--timeout", type=int, default=1200, help="with --execute: seconds per cell")
    p.set_defaults(run=_export)

    p = sub.add_parser("cache", help="list or clear the cached results (cv.cache)")
    p.add_argument("action", choices=["list", "clear"])
    p.add_argument("--dir", type=Path, default=None, help="a cache folder (default: the configured one)")
    p.set_defaults(run=_cache)

    p = sub.add_parser("train-mini-alexnet", help="regenerate MiniAlexNet's shipped weights deterministically")
    p.add_argument("--out", default=Path(__file__).parent / "zoo" / "weights", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    p.set_defaults(run=_train)

    p = sub.add_parser("accuracy", help="MiniAlexNet's held-out accuracy on ShapeWorld")
    p.add_argument("--epoch", type=int, default=None, help="a shipped checkpoint instead of the final weights")
    p.add_argument("--images", type=int, default=1000)
    p.set_defaults(run=_accuracy)

    p = sub.add_parser("layers", help="list a model's layers, output shapes and receptive fields")
    p.add_argument("model", nargs="?", default="mini_alexnet")
    p.add_argument("--random", action="store_true", help="random weights (no download)")
    p.set_defaults(run=_layers)

    p = sub.add_parser("top", help="top activations of a layer over ShapeWorld, saved as .safetensors")
    p.add_argument("layer")
    p.add_argument("--model", default="mini_alexnet")
    p.add_argument("-k", type=int, default=9)
    p.add_argument("--images", type=int, default=None, help="the first N ShapeWorld validation images (default: all)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("top_activations.safetensors"))
    _add_distributed_options(p)
    p.set_defaults(run=_top)

    p = sub.add_parser("am", help="activation maximization of a layer's units, saved as .safetensors")
    p.add_argument("layer")
    p.add_argument("--model", default="mini_alexnet")
    p.add_argument("--units", type=int, nargs="+", default=None, help="default: every unit of the layer")
    p.add_argument("--preset", default="lucid")
    p.add_argument("--steps", type=int, default=None, help="default: the preset's")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (the same on every rank)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("am.safetensors"))
    _add_distributed_options(p)
    p.set_defaults(run=_am)

    p = sub.add_parser("train-decoders", help="regenerate the shipped UpconvNet decoders of MiniAlexNet's layers")
    p.add_argument("--layers", nargs="+", default=None, metavar="LAYER",
                   help="layers to train (default: conv1..conv5, fc6..fc8)")
    _add_training_options(p, "decoders", "epochs for every layer (default: each layer's recipe)")
    p.set_defaults(run=_train_decoders)

    p = sub.add_parser("train-generator", help="regenerate MiniAlexNet's DGN-AM generator (fc6 decoder, feature loss)")
    _add_training_options(p, "generators", "default: the recipe's")
    p.set_defaults(run=_train_generator)

    p = sub.add_parser("decoder-errors", help="held-out pixel errors of the shipped decoders, with perturbations")
    p.add_argument("--layers", nargs="+", default=None, metavar="LAYER", help="default: every shipped decoder")
    p.add_argument("--images", type=int, default=1000, help="ShapeWorld validation images")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout masks")
    p.set_defaults(run=_decoder_errors)

    p = sub.add_parser("dissect", help="Network Dissection: summary table, CSVs per layer and an HTML report")
    p.add_argument("--model", default="mini_alexnet")
    p.add_argument("--layers", nargs="+", default=["conv1", "conv2", "conv3", "conv4", "conv5"], metavar="LAYER")
    p.add_argument("--broden", type=Path, default=None, help="a Broden folder (default: ShapeWorld validation)")
    p.add_argument("--split", default=None, help="split of the Broden folder to use (default: all images)")
    p.add_argument("--quantile", type=float, default=0.005)
    p.add_argument("--iou-threshold", type=float, default=0.04)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--checkpoint", type=Path, default=None, help="a folder: save the state as it goes, resume from it")
    p.add_argument("--checkpoint-every", type=int, default=20, help="batches per rank between checkpoints")
    p.add_argument("--out", type=Path, default=Path("dissection"))
    _add_distributed_options(p)
    p.set_defaults(run=_dissect)

    p = sub.add_parser("net2vec", help="Net2Vec table: learned unit combinations vs the best single unit")
    p.add_argument("--model", default="mini_alexnet")
    p.add_argument("--layer", default="conv5")
    p.add_argument("--concepts", nargs="+", default=None, metavar="CONCEPT",
                   help="default: every concept in 4+ training and validation images")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    _add_distributed_options(p)
    p.set_defaults(run=_net2vec)

    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
