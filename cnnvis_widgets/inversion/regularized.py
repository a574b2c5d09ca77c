"""Regularized pre-images: the image whose features match a layer's, found by optimization.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them" (CVPR 2015) and
"Visualizing Deep Convolutional Neural Networks Using Natural Pre-images" (IJCV 2016, §3): minimize

    ||Phi(x) - Phi0||^2 / ||Phi0||^2  +  R_alpha(x) / (H W B^alpha)  +  R_TV(x) / (H W V^beta)

over mean-subtracted 0-255 pixels x, with R_alpha(x) = sum_ij ||x_ij||^alpha (the norm of each pixel's
channel vector, its RGB norm for a colour image; alpha = 6) and R_TV(x) = sum_ij ((x_i+1,j - x_ij)^2 + (x_i,j+1 - x_ij)^2)^(beta/2) (beta = 2), normalized by
the typical pixel norm B = 80 and V = B / 6.5 (their reference code, ``core/get_defaults.m``). The data
term is weighted by the paper's C per layer (``data_weight``: a number, a dict layer -> C, or by stride).
The optimizer is their momentum 0.9 with Adagrad-style per-pixel scaling; each iteration jitters the image
by 0 .. J-1 pixels, J = max(round(stride / 4), 1) (no jitter up to stride 4), for 300 iterations, then a
second phase at a tenth of the step without jitter (its length is a stated departure, see
:class:`RegularizedConfig`); after every step each pixel's RGB norm is projected onto the ball of radius
B+ = 160. Many images and many layers run in one batch: every row of the
batch is one (image, layer) pair and its loss only involves its own layer.

B and B+ are norms of a pixel's 3-vector. For a model with C channels they are taken as the norms of a
C-vector whose channels spread like an RGB pixel's, ``B sqrt(C / 3)`` (46 for a grayscale model), and V
with them, so the two regularizers weigh the same against the data term whatever the channel count (for
RGB nothing changes). The initial noise is per value, the same for every channel count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import math

import numpy as np
import torch

from ..model import Model, StopForward
from .perturbations import perturb


@dataclass(frozen=True)
class RegularizedConfig:
    """Mahendran & Vedaldi's constants (IJCV 2016, §3.3; ``core/get_defaults.m``, ``core/nnpreimage.m``).

    Paper: alpha 6, beta 2, B 80, B+ 160, V = B/6.5, lr = 0.05 B^2/alpha per pixel, momentum 0.9 with the
    reference's leaky Adagrad (G <- 0.9 G + g^2, step g / (sqrt(G) + 1/lr)), uniform-noise start scaled to
    B/sqrt(3), 300 iterations with jitter 0..max(round(stride/4), 1) - 1 px, then a restart of momentum and
    G at lr/10 without jitter. ``data_weight`` is the paper's C (its code sweeps C in {1, 20, 100, 300}
    per layer): a number, a dict {layer: C}, or ``"stride"``: C_max = 300 up to stride ``C_stride``, then
    halved per doubling of the stride (``stride_data_weight``).

    Departures, measured on EfficientNet-Lite2 (benchmarks/bench_inversion_real.py, coffee, _blocks.3,
    128 px): ``fine_steps`` 250 instead of 50 (feature error 0.050 -> 0.029, spectral ratio 2.69 -> 1.92);
    jitter by circular roll instead of a crop of a padded canvas; ``box``: pixels also kept in [0, 255]
    (the paper rescales for display instead; no measurable effect on ShapeWorld conv1). ShapeWorld's
    pixel-sharp textures need C = 1e4 at conv1 (passed explicitly by its test), outside the paper's range.
    """

    alpha: float = 6.0
    beta: float = 2.0
    B: float = 80.0  # typical pixel RGB norm, 0-255 units
    B_plus: float = 160.0  # hard bound on a pixel's RGB norm
    V_ratio: float = 6.5  # V = B / V_ratio
    lr: float | None = None  # None: the paper's 0.05 B^2 / alpha (per pixel)
    fine_lr: float = 0.1
    momentum: float = 0.9
    steps: int = 300  # with jitter
    fine_steps: int = 250  # at lr / 10, without jitter (the paper: 50; see the class docstring)
    jitter: bool = True
    box: bool = True
    init: object = "paper"
    data_weight: object = "stride"
    C_max: float = 300.0
    C_min: float = 1.0
    C_stride: int = 4
    C_decay: float = 1.0
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


def _data_weights(config: "RegularizedConfig", layers: Sequence[str], strides: Sequence[int]) -> list[float]:
    """C per layer from ``config.data_weight`` (a number, a dict layer -> C, or a rule name)."""
    weight = config.data_weight
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        return [float(weight)] * len(layers)
    if isinstance(weight, Mapping):
        missing = [name for name in layers if name not in weight]
        if missing:
            raise ValueError(f"data_weight has no C for layer(s) {missing}; give every inverted layer a weight, "
                             "e.g. data_weight={'conv1': 300.0, 'conv3': 100.0}, or one number for all.")
        return [float(weight[name]) for name in layers]
    if weight == "stride":
        return [stride_data_weight(s, config) for s in strides]
    raise TypeError(f"data_weight must be a number, a dict {{layer: C}} or 'stride', got {weight!r}.")


def stride_data_weight(stride: int, config: "RegularizedConfig") -> float:
    """The default C of a layer at ``stride``: ``C_max`` up to stride ``C_stride``, then halving per
    doubling of the stride, down to ``C_min`` (see :class:`RegularizedConfig`)."""
    c = config.C_max * (config.C_stride / max(stride, 1)) ** config.C_decay if stride > config.C_stride else config.C_max
    return float(min(max(c, config.C_min), config.C_max))


def _initial_image(rows: int, channels: int, size: tuple[int, int], bound: float,
                   generator: torch.Generator) -> torch.Tensor:
    """``nnpreimage.m``'s start: uniform noise in [-1, 1], scaled per image so that its 95% quantile is
    ``B / sqrt(3)`` (a pixel-norm of about B)."""
    u = torch.rand((rows, channels, *size), generator=generator) * 2 - 1
    q = torch.quantile(u.flatten(1)[:, :: max(1, u[0].numel() // 100_000)], 0.95, dim=1)
    return u / q.view(-1, 1, 1, 1) * bound / math.sqrt(3)


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
    strides = []
    for name in layers:
        rf = model.layer(name).receptive_field
        strides.append(int(rf.stride[0]) if rf is not None else 4)
    weights = _data_weights(config, layers, strides)
    jitter = [max(round(s / 4), 1) for s in strides] if config.jitter else [1] * l
    span = torch.tensor([j for j in jitter for _ in range(n)], dtype=torch.long)  # shifts in 0 .. J-1
    c_rows = torch.tensor([w for w in weights for _ in range(n)], device=device, dtype=dtype)

    size = tuple(images.shape[-2:])
    if config.init == "paper":
        x = _initial_image(l * n, channels, size, bound, generator).to(device, dtype)
    else:
        x = (torch.randn((l * n, channels, *size), generator=generator) * float(config.init)).to(device, dtype)
    pixels = size[0] * size[1]
    v = bound / config.V_ratio
    base_lr = config.lr if config.lr is not None else 0.05 * bound ** 2 / config.alpha
    total = config.steps + config.fine_steps
    norms = {name: goal[name].flatten(1).pow(2).sum(1).clamp_min(1e-30) for name in layers}
    bar = tqdm(total=total, desc="inverting", disable=not progress, leave=False)
    x.requires_grad_(True)
    velocity = torch.zeros_like(x)
    square_avg = torch.zeros_like(x)
    try:
        with model.inference():
            for step in range(total):
                if stop is not None and stop.is_set():
                    break
                fine = step >= config.steps
                if step == config.steps:  # a new nnpreimage call: momentum and gradient history restart
                    velocity.zero_()
                    square_avg.zero_()
                lr = pixels * base_lr * (config.fine_lr if fine else 1.0)
                if fine or max(jitter) == 1:
                    shifted = x
                else:
                    shifts = (torch.rand((l * n, 2), generator=generator) * span[:, None]).long()
                    shifted = _jitter(x, shifts.to(device))
                rgb = (shifted + mean) / 255
                # each layer's rows run only as deep as their layer (a stem row does not pay for block 6)
                data = torch.cat([(capture_layers(model, rgb[i * n:(i + 1) * n], [name])[name] - goal[name])
                                  .flatten(1).pow(2).sum(1) / norms[name] for i, name in enumerate(layers)])
                alpha_term = alpha_norm(x, config.alpha) / (pixels * bound ** config.alpha)
                tv = total_variation(x, config.beta) / (pixels * v ** config.beta)
                loss = (c_rows * data).sum() + config.alpha_weight * alpha_term.sum() + config.tv_weight * tv.sum()
                (grad,) = torch.autograd.grad(loss, x)
                with torch.no_grad():
                    square_avg.mul_(config.momentum).add_(grad.pow(2))
                    velocity.mul_(config.momentum).sub_(grad / (square_avg.sqrt() + 1.0 / lr))
                    x.add_(velocity)
                    norm = x.pow(2).sum(1, keepdim=True).sqrt()
                    x.mul_((bound_plus / norm.clamp_min(1e-12)).clamp(max=1.0))
                    if config.box:  # and into the displayable range, so what is optimized is what is returned
                        torch.maximum(torch.minimum(x, 255 - mean), -mean, out=x)
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
