"""Regenerating the UpconvNet decoders that ship for MiniAlexNet (``cnnvis train-decoders``).

Each shipped decoder (Dosovitskiy & Brox 2016; :mod:`~cnnvis_widgets.inversion.upconv`) trains with its
:data:`SHIPPED_RECIPES` entry on ShapeWorld training images rendered directly, on the frozen shipped
MiniAlexNet, and is written to ``cnnvis_widgets/zoo/weights/decoders``. The DGN-AM generator reuses the
same set-up (:func:`shipped_training`; :mod:`~cnnvis_widgets.inversion.generator`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

import torch

from ..datasets.shapeworld import default_cache_dir, shapeworld_images
from ..loading import load_model
from ..zoo import DECODERS_DIR
from .upconv import SHIPPED_LAYERS, UpconvDecoder, decoder_errors, train_upconv

# Epochs, architecture and (where not lr 1e-3 decaying by 0.8 per epoch) learning-rate schedule of each
# shipped decoder, sized to train in minutes on one CPU core.
SHIPPED_RECIPES: dict[str, dict] = {
    "conv1": dict(epochs=4, architecture=dict(width=32, convs=2)),
    "conv2": dict(epochs=6, architecture=dict(width=64, convs=2)),
    "conv3": dict(epochs=8, architecture=dict(width=96, convs=2)),
    "conv4": dict(epochs=8, architecture=dict(width=96, convs=2)),
    "conv5": dict(epochs=8, architecture=dict(width=96, convs=2)),
    "fc6": dict(epochs=36, lr=2e-3, lr_decay=0.93, architecture=dict(width=64, hidden=256)),
    "fc7": dict(epochs=10, architecture=dict(width=64, hidden=256)),
    "fc8": dict(epochs=10, architecture=dict(width=64, hidden=256)),
}


def train_shipped_decoders(layers: Sequence[str] = SHIPPED_LAYERS, epochs: int | None = None,
                           out: str | os.PathLike = DECODERS_DIR, train_images: int = 8000, val_images: int = 1000,
                           checkpoints: str | os.PathLike | None = None, seed: int = 0, threads: int = 1,
                           progress: bool = True) -> dict[str, UpconvDecoder]:
    """Regenerate the shipped MiniAlexNet decoders (``cnnvis train-decoders``).

    Each layer trains with its :data:`SHIPPED_RECIPES` entry (``epochs`` overrides the count) on the first
    ``train_images`` images of ShapeWorld's train split (rendered directly: the first 4000 are
    ``cv.datasets.shapeworld("train")``; all are among the 16000 MiniAlexNet was trained on), then is
    measured on ``val_images`` held-out images (clean, binarized, dropout) and written as
    ``mini_alexnet_<layer>.safetensors`` (float16 weights) with its log. One thread by default: small
    convolutions gain little from a second one, and lose a lot when another process holds a core.
    """
    with shipped_training(threads, train_images, val_images, checkpoints, "decoder_checkpoints") as (
            model, images, val, directory):
        decoders = {}
        for layer in layers:
            if layer not in SHIPPED_RECIPES:
                raise ValueError(f"No recipe for layer {layer!r}; shipped decoders cover {', '.join(SHIPPED_RECIPES)}. "
                                 "Train other layers with train_upconv(model, layer).")
            recipe = SHIPPED_RECIPES[layer]
            decoder = train_upconv(model, layer, images, epochs=epochs or recipe["epochs"],
                                   lr=recipe.get("lr", 1e-3), lr_decay=recipe.get("lr_decay", 0.8),
                                   directory=directory, seed=seed, progress=progress, val_dataset=val[:256],
                                   architecture=recipe["architecture"])
            decoder.training_log["held_out"] = {str(k): v for k, v in
                                                decoder_errors(model, {layer: decoder}, val, seed=seed)[layer].items()}
            decoder.training_log["held_out_images"] = val_images
            decoder.save(Path(out) / f"mini_alexnet_{layer}.safetensors", dtype=torch.float16)
            decoders[layer] = decoder
        return decoders


@contextlib.contextmanager
def shipped_training(threads: int, train_images: int, val_images: int, checkpoints: str | os.PathLike | None,
                     default_checkpoints: str):
    """What regenerating a shipped MiniAlexNet decoder needs: yields ``(model, train images, validation images,
    checkpoint folder)`` with torch limited to ``threads`` threads (restored afterwards). The checkpoint folder
    is ``checkpoints``, or ``default_checkpoints`` in the cache folder."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        directory = Path(checkpoints) if checkpoints is not None else default_cache_dir() / default_checkpoints
        yield (load_model("mini_alexnet", device="cpu"), shapeworld_images("train", train_images),
               shapeworld_images("val", val_images), directory)
    finally:
        torch.set_num_threads(previous_threads)


__all__ = ["SHIPPED_RECIPES", "shipped_training", "train_shipped_decoders"]
