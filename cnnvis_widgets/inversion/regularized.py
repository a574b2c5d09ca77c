"""Regularized pre-images: the image whose features match a layer's, found by optimization.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them" (CVPR 2015) and
"Visualizing Deep Convolutional Neural Networks Using Natural Pre-images" (IJCV 2016, §3): minimize

    ||Phi(x) - Phi0||^2 / ||Phi0||^2  +  R_alpha(x) / (H W B^alpha)  +  R_TV(x) / (H W V^beta)

over mean-subtracted 0-255 pixels x, with R_alpha(x) = sum_ij ||x_ij||^alpha (the norm of each pixel's
channel vector, its RGB norm for a colour image; alpha = 6) and R_TV(x) = sum_ij ((x_i+1,j - x_ij)^2 + (x_i,j+1 - x_ij)^2)^(beta/2) (beta = 2), normalized by
the typical pixel norm B = 80 and V = B / 6.5 (their reference code, ``core/get_defaults.m``). The
optimizer is gradient descent with momentum 0.9 and per-pixel (Adagrad-style) gradient scaling; each
iteration jitters the image by up to ``max(round(stride / 4), 1)`` pixels (the layer's stride), for 300
iterations, then more at a tenth of the step without jitter (see :class:`RegularizedConfig`); after every
step each pixel's RGB norm is projected onto the ball of radius B+ = 160. Many images and many layers run in one batch: every row of the
batch is one (image, layer) pair and its loss only involves its own layer.

B and B+ are norms of a pixel's 3-vector. For a model with C channels they are taken as the norms of a
C-vector whose channels spread like an RGB pixel's, ``B sqrt(C / 3)`` (46 for a grayscale model), and V
with them, so the two regularizers weigh the same against the data term whatever the channel count (for
RGB nothing changes). The initial noise is per value, the same for every channel count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import math

import numpy as np
import torch

from ..model import Model, StopForward
from .perturbations import perturb


@dataclass(frozen=True)
class RegularizedConfig:
    """Mahendran & Vedaldi's constants (IJCV 2016, §3.3; ``core/get_defaults.m``), and the balance we use.

    ``data_weight`` is the constant C that multiplies the normalized feature loss against the two
    regularizers (the paper tunes C; with the regularizers averaged over pixels as here, C = 1e4 lets
    conv1 be matched to a normalized error below 0.05 on ShapeWorld's pixel-sharp textures while deeper
    layers still get the natural-image prior; lower it, e.g. 300, for smoother deep reconstructions).
    ``fine_steps`` is longer than the paper's 50: on pixel-scale textures the 1-pixel jitter keeps the
    phase of fine patterns from matching, and the jitter-free phase has to restore it.
    """

    alpha: float = 6.0
    beta: float = 2.0
    B: float = 80.0  # typical pixel RGB norm, 0-255 units
    B_plus: float = 160.0  # hard bound on a pixel's RGB norm
    V_ratio: float = 6.5  # V = B / V_ratio
    lr: float = 30.0  # pixel units of the first step; Adagrad scaling shrinks later steps
    momentum: float = 0.9
    steps: int = 300  # with jitter
    fine_steps: int = 300  # at lr / 10, without jitter
    data_weight: float = 1e4
    alpha_weight: float = 1.0
    tv_weight: float = 1.0


def capture_layers(model: Model, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """One forward of ``images`` ([N, C, H, W] in [0, 1]) that returns each layer's output (at its last call) and
    stops once all are captured. Outputs are cloned, so later in-place operations cannot change them."""
    wanted = {name: model.layer(name).calls for name in layers}
    seen = dict.fromkeys(wanted, 0)
    out: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Callable:
        def hook(module, inputs, output):
            seen[name] += 1
            if seen[name] == wanted[name]:
                tensor = output[0] if isinstance(output, (tuple, list)) else output
                out[name] = tensor.clone()
                if len(out) == len(wanted):
                    raise StopForward

        return hook

    with model.hooks() as hooks:
        for name in wanted:
            hooks.forward(name, make_hook(name))
        try:
            model(images)
        except StopForward:
            pass
    missing = [name for name in wanted if name not in out]
    if missing:
        raise RuntimeError(f"Layer(s) {missing} did not run in the forward pass; pick layers from model.layers "
                           "that the module's forward calls.")
    return out


def alpha_norm(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``sum_ij ||x_ij||^alpha`` per image, with ``||x_ij||`` the norm of pixel (i, j)'s channels (its RGB
    norm for colour images); x: [B, C, H, W]."""
    return x.pow(2).sum(1).clamp_min(1e-12).pow(alpha / 2).flatten(1).sum(1)


def total_variation(x: torch.Tensor, beta: float) -> torch.Tensor:
    """``sum_ij ((x_i+1,j - x_ij)^2 + (x_i,j+1 - x_ij)^2)^(beta/2)`` per image, the squared differences
    summed over the colour channels; differences run along height and width (x: [B, C, H, W])."""
    down = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    right = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    return (down.pow(2) + right.pow(2)).sum(1).clamp_min(1e-12).pow(beta / 2).flatten(1).sum(1)


def _jitter(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll every image by its own (dy, dx) (shifts: int [B, 2])."""
    b, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device)[None, :] - shifts[:, :1]) % h  # [B, H]
    cols = (torch.arange(w, device=x.device)[None, :] - shifts[:, 1:]) % w  # [B, W]
    index = torch.arange(b, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def invert_regularized(model: Model, images: torch.Tensor, layers: Sequence[str], perturbation: str | None = None,
                       config: RegularizedConfig | None = None, seed: int = 0, progress: bool = True,
                       stop=None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Pre-images of ``images`` [N, C, H, W] in [0, 1] from each layer; see the module docstring.

    Returns (reconstructions: layer -> [N, C, H, W] in [0, 1], feature errors: layer -> [N]). With a
    ``perturbation``, the target features are perturbed (:func:`~.perturbations.perturb`) before inverting;
    feature errors are always against the unperturbed features.
    """
    from tqdm.auto import tqdm

    config = config or RegularizedConfig()
    device, dtype = model.device, model.dtype
    images = images.to(device, dtype)
    n, l = len(images), len(layers)
    channels = images.shape[1]
    mean = torch.tensor(model.mean or (0.5,), device=device, dtype=dtype).view(1, -1, 1, 1) * 255
    pixel_norm = math.sqrt(channels / 3)  # B and B+ for C channels (see the module docstring)
    bound, bound_plus = config.B * pixel_norm, config.B_plus * pixel_norm
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with model.inference(), torch.no_grad():
        targets = capture_layers(model, images, layers)
    clean = {name: targets[name].detach() for name in layers}
    goal = {name: perturb(clean[name], perturbation, generator).detach() for name in layers}
    # rows: layer-major, image-minor
    row_layer = [name for name in layers for _ in range(n)]
    strides = []
    for name in layers:
        rf = model.layer(name).receptive_field
        strides.append(max(round((rf.stride[0] if rf is not None else 4) / 4), 1))
    max_shift = torch.tensor([s for s in strides for _ in range(n)], dtype=torch.long)

    x = (torch.randn((l * n, channels, *images.shape[-2:]), generator=generator) * config.B * 0.05).to(device, dtype)
    x.requires_grad_(True)
    velocity = torch.zeros_like(x)
    square_sum = torch.zeros_like(x)
    pixels = images.shape[-1] * images.shape[-2]
    v = bound / config.V_ratio
    total = config.steps + config.fine_steps
    norms = {name: goal[name].flatten(1).pow(2).sum(1).clamp_min(1e-30) for name in layers}
    bar = tqdm(total=total, desc="inverting", disable=not progress, leave=False)
    try:
        with model.inference():
            for step in range(total):
                if stop is not None and stop.is_set():
                    break
                fine = step >= config.steps
                lr = config.lr * (0.1 if fine else 1.0)
                if fine:
                    shifted = x
                else:
                    shifts = (torch.rand((l * n, 2), generator=generator) * (2 * max_shift[:, None] + 1)).long() \
                        - max_shift[:, None]
                    shifted = _jitter(x, shifts.to(device))
                rgb = (shifted + mean) / 255
                feats = capture_layers(model, rgb, layers)
                data = torch.zeros((), device=device, dtype=dtype)
                for i, name in enumerate(layers):
                    rows = slice(i * n, (i + 1) * n)
                    diff = (feats[name][rows] - goal[name]).flatten(1).pow(2).sum(1)
                    data = data + (diff / norms[name]).sum()
                alpha_term = alpha_norm(x, config.alpha) / (pixels * bound ** config.alpha)
                tv = total_variation(x, config.beta) / (pixels * v ** config.beta)
                loss = config.data_weight * data + config.alpha_weight * alpha_term.sum() + config.tv_weight * tv.sum()
                (grad,) = torch.autograd.grad(loss, x)
                with torch.no_grad():
                    square_sum.add_(grad.pow(2))
                    velocity.mul_(config.momentum).add_(grad / (square_sum.sqrt() + 1e-8), alpha=-lr)
                    x.add_(velocity)
                    norm = x.pow(2).sum(1, keepdim=True).sqrt()
                    x.mul_((bound_plus / norm.clamp_min(1e-12)).clamp(max=1.0))
                bar.update(1)
    finally:
        bar.close()
    with torch.no_grad(), model.inference():
        result = ((x.detach() + mean) / 255).clamp(0, 1)
        final = capture_layers(model, result, layers)
    reconstructions, errors = {}, {}
    for i, name in enumerate(layers):
        rows = slice(i * n, (i + 1) * n)
        reconstructions[name] = result[rows]
        errors[name] = ((final[name][rows] - clean[name]).flatten(1).pow(2).sum(1)
                        / clean[name].flatten(1).pow(2).sum(1).clamp_min(1e-30))
    return reconstructions, errors


__all__ = ["RegularizedConfig", "alpha_norm", "capture_layers", "invert_regularized", "total_variation"]
