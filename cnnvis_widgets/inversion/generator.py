"""The image generator of DGN-AM for MiniAlexNet: an fc6 decoder trained with a feature (comparator) loss.

Nguyen et al. 2016 ("Synthesizing the preferred inputs for neurons in neural networks via deep generator
networks") optimize the fc6 code of the generator of Dosovitskiy & Brox, "Generating Images with
Perceptual Similarity Metrics based on Deep Networks" (NIPS 2016). That generator was trained with pixel,
feature and adversarial losses, not with the pixel loss alone. A decoder trained on pixels only (the
shipped ``mini_alexnet_fc6`` UpconvNet) averages away what it cannot place exactly: on ShapeWorld, the
background textures that tell half of MiniAlexNet's classes apart. Here the generator is the same fc6
decoder architecture trained with the pixel loss plus the comparator loss on MiniAlexNet's fc7
(:func:`~.upconv.train_upconv` with ``comparator=``); the adversarial term is left out. Of the comparators
tried (conv4, conv5, fc7, fc8), fc7 let DGN-AM reach p(class) >= 0.9 on the most classes.

It ships in ``cnnvis_widgets/zoo/weights/generators`` (:func:`load_generator`); regenerate it with
``cnnvis train-generator``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..zoo import GENERATORS_DIR
from .shipped import shipped_training
from .upconv import UpconvDecoder, decoder_errors, train_upconv

GENERATOR_RECIPE: dict = dict(layer="fc6", comparator="fc7", comparator_weight=2.0, epochs=20, lr=2e-3,
                              lr_decay=0.88, architecture=dict(width=64, hidden=256))
"""How the shipped MiniAlexNet generator is trained (on the first 8000 ShapeWorld training images)."""


def load_generator(model_name: str = "mini_alexnet") -> UpconvDecoder:
    """The shipped DGN-AM generator of ``model_name`` (an fc6 :class:`~.upconv.UpconvDecoder`)."""
    path = GENERATORS_DIR / f"{model_name}.safetensors"
    if not path.exists():
        shipped = sorted(p.stem for p in GENERATORS_DIR.glob("*.safetensors"))
        raise FileNotFoundError(f"No shipped DGN-AM generator for {model_name!r} (generators ship for: "
                                f"{', '.join(shipped) or 'no model'}). Train one with train_upconv(model, 'fc6', "
                                "dataset, comparator='fc7') and pass it as generator=.")
    return UpconvDecoder.load(path)


def train_shipped_generator(epochs: int | None = None, out: str | os.PathLike = GENERATORS_DIR,
                            train_images: int = 8000, val_images: int = 1000,
                            checkpoints: str | os.PathLike | None = None, seed: int = 0, threads: int = 1,
                            progress: bool = True) -> UpconvDecoder:
    """Regenerate the shipped MiniAlexNet generator (``cnnvis train-generator``) with :data:`GENERATOR_RECIPE`
    (``epochs`` overrides its count); writes ``mini_alexnet.safetensors`` (float16 weights) with its log,
    including the held-out pixel error on ``val_images`` ShapeWorld validation images."""
    recipe = GENERATOR_RECIPE
    with shipped_training(threads, train_images, val_images, checkpoints, "generator_checkpoints") as (
            model, images, val, directory):
        generator = train_upconv(model, recipe["layer"], images, epochs=epochs or recipe["epochs"], lr=recipe["lr"],
                                 lr_decay=recipe["lr_decay"], directory=directory, seed=seed, progress=progress,
                                 val_dataset=val[:256], architecture=recipe["architecture"],
                                 comparator=recipe["comparator"], comparator_weight=recipe["comparator_weight"])
        held_out = decoder_errors(model, {recipe["layer"]: generator}, val, perturbations=(None,), seed=seed)
    generator.training_log["held_out"] = {"None": held_out[recipe["layer"]][None]}
    generator.training_log["held_out_images"] = val_images
    generator.save(Path(out) / "mini_alexnet.safetensors", dtype=torch.float16)
    return generator


__all__ = ["GENERATORS_DIR", "GENERATOR_RECIPE", "load_generator", "train_shipped_generator"]
