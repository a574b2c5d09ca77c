"""``cv.invert``: reconstruct images from their features at several layers, by either method."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Mapping, Sequence

import numpy as np
import torch

from ..model import Model
from .perturbations import PERTURBATIONS, perturb
from .regularized import RegularizedConfig, capture_layers, invert_regularized
from .result import InversionResult, pixel_error

METHODS = ("regularized", "upconv")


def _decoders_for(model: Model, layers: Sequence[str], decoders) -> dict:
    """One decoder per layer: given as a dict or a single decoder, else the shipped ones for MiniAlexNet."""
    from .upconv import UpconvDecoder, load_decoder

    if isinstance(decoders, UpconvDecoder):
        decoders = {decoders.layer: decoders}
    if decoders is None:
        if not model.name.startswith("MiniAlexNet"):
            raise ValueError(f"method='upconv' needs decoders= for {model.name}: train them with "
                             "cv.train_upconv(model, layer, dataset) (decoders ship only for MiniAlexNet).")
        decoders = {layer: load_decoder("mini_alexnet", layer) for layer in layers}
    if not isinstance(decoders, Mapping):
        raise TypeError("decoders= takes an UpconvDecoder or a dict {layer: UpconvDecoder}.")
    missing = [layer for layer in layers if layer not in decoders]
    if missing:
        raise ValueError(f"No decoder for layer(s) {missing}; pass decoders={{layer: decoder}} for every layer "
                         "(train one with cv.train_upconv(model, layer, dataset)).")
    for layer in layers:
        if decoders[layer].layer != layer:
            raise ValueError(f"The decoder given for {layer!r} was trained on {decoders[layer].layer!r}.")
    return dict(decoders)


def invert(model: Model, images, layers: str | Sequence[str], method: str = "regularized",
           perturbation: str | None = None, decoders=None, seed: int = 0, progress: bool = True,
           stop=None, **settings) -> InversionResult:
    """Reconstruct ``images`` from their features at each of ``layers``.

    Args:
        model: a :class:`~cnnvis_widgets.Model` (never modified).
        images: images in [0, 1] (a tensor [N, C, H, W] with the model's C channels, PIL images, paths, a
            dataset; read by :meth:`~cnnvis_widgets.Model.image_source` at the model's input size).
        layers: layer names from ``model.layers``.
        method: ``"regularized"`` (Mahendran & Vedaldi 2015/2016, optimization with natural-image priors;
            all layers and images in one batch) or ``"upconv"`` (Dosovitskiy & Brox 2016, a trained
            decoder per layer; instant).
        perturbation: None, ``"binarize"`` or ``"dropout"``: perturb the features (keeping each sample's
            L2 norm) before inverting them (Dosovitskiy & Brox 2016, §5.2).
        decoders: for ``"upconv"``: an :class:`~.upconv.UpconvDecoder` or ``{layer: decoder}``; default:
            the decoders shipped for MiniAlexNet.
        seed: for the initial image, the jitter and the dropout mask.
        settings: for ``"regularized"``, fields of :class:`~.regularized.RegularizedConfig` (``steps=``,
            ``data_weight=``, ``tv_weight=``...).
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("Pass at least one layer, e.g. layers=['conv1', 'conv3', 'fc6'].")
    for layer in layers:
        model.layer(layer)  # a wrong name lists the valid ones
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if perturbation is not None and perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be None or one of {PERTURBATIONS}, got {perturbation!r}.")
    source = model.image_source(images)
    originals = source.images(range(len(source)))
    if method == "regularized":
        known = {f.name for f in fields(RegularizedConfig)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"Unknown setting(s) {unknown} for method='regularized'; valid: {sorted(known)}.")
        config = RegularizedConfig(**settings)
        reconstructions, feature_errors = invert_regularized(model, originals, layers, perturbation, config, seed,
                                                             progress, stop)
        meta = {"config": asdict(config), "seed": seed}
    else:
        if settings:
            raise TypeError(f"method='upconv' takes no settings {sorted(settings)}.")
        reconstructions, feature_errors = _invert_upconv(model, originals, layers, perturbation,
                                                         _decoders_for(model, layers, decoders), seed)
        meta = {"seed": seed}
    original = originals.numpy().astype(np.float32)
    images_out = {layer: reconstructions[layer].detach().cpu().numpy().astype(np.float32) for layer in layers}
    return InversionResult(
        original=original, images=images_out,
        feature_errors={layer: feature_errors[layer].detach().cpu().numpy().astype(np.float32) for layer in layers},
        pixel_errors={layer: pixel_error(images_out[layer], original) for layer in layers},
        method=method, perturbation=perturbation, model_name=model.name, meta=meta)


@torch.no_grad()
def _invert_upconv(model: Model, images: torch.Tensor, layers: Sequence[str], perturbation: str | None,
                   decoders: dict, seed: int):
    generator = torch.Generator(device="cpu").manual_seed(seed)
    device = model.device
    with model.inference():
        clean = capture_layers(model, images.to(device, model.dtype), layers)
        reconstructions, errors = {}, {}
        for layer in layers:
            decoder = decoders[layer].to(device).eval()
            features = perturb(clean[layer].cpu(), perturbation, generator).to(device)
            reconstructions[layer] = decoder(features).clamp(0, 1)
            again = capture_layers(model, reconstructions[layer], [layer])[layer]
            errors[layer] = ((again - clean[layer]).flatten(1).pow(2).sum(1)
                             / clean[layer].flatten(1).pow(2).sum(1).clamp_min(1e-30))
    return reconstructions, errors


__all__ = ["METHODS", "invert"]
