"""Regularizers: penalties on the image (objectives to subtract) and in-place steps on the parameter.

Penalties (per image, shape [B]; subtract them from the objective):

- :func:`l2` and :func:`alpha_norm` — Simonyan et al. 2014 (Eq. 1, ``lambda ||I||^2``) and Mahendran &
  Vedaldi 2016 (Eq. 5, the alpha-norm);
- :func:`total_variation` — Mahendran & Vedaldi 2016 (Eq. 7), over height and width only. (A popular
  PyTorch port slices channel x height instead; that is a bug this module avoids.)

Steps applied to the parameter between optimizer steps (Yosinski et al. 2015, "Understanding Neural
Networks Through Deep Visualization", §3 and deep-visualization-toolbox ``optimize_image.py``):
:func:`decay_` (L2 decay), :func:`blur_` (Gaussian blur every few steps), :func:`clip_small_norm_`
(small-norm pixel clipping), and :func:`clip_grad_per_image_` (gradient-norm clipping, per image so that
images stay independent of each other).

All of them are vectorized over the batch and never synchronize with the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .objectives import IMAGE, Objective
from .parameterizations import gaussian_kernel


def l2(weight: float = 1.0, center: float = 0.5) -> Objective:
    """``weight * ||x - center||^2`` of the image in [0, 1], per image (Simonyan et al. 2014, Eq. 1's
    ``lambda ||I||^2`` on mean-subtracted images). A penalty: subtract it from the objective."""
    return alpha_norm(2.0, weight, center)


def alpha_norm(alpha: float = 6.0, weight: float = 1.0, center: float = 0.5) -> Objective:
    """``weight * sum |x - center|^alpha`` per image (Mahendran & Vedaldi 2016, Eq. 5). A penalty."""

    def fn(acts):
        return weight * (acts[IMAGE] - center).abs().pow(alpha).flatten(1).sum(1)

    return Objective(fn, [IMAGE], f"alpha_norm({alpha}, {weight})")


def total_variation(weight: float = 1.0, beta: float = 2.0) -> Objective:
    """``weight * TV_beta(x)`` per image, over height and width (Mahendran & Vedaldi 2016, Eq. 7):
    ``sum_{c,i,j} ((x[c,i,j+1] - x[c,i,j])^2 + (x[c,i+1,j] - x[c,i,j])^2)^(beta/2)``. A penalty."""

    def fn(acts):
        return weight * tv(acts[IMAGE], beta)

    return Objective(fn, [IMAGE], f"total_variation({weight}, beta={beta})")


def tv(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Total variation of images [B, C, H, W] over H and W (never over C), one value per image."""
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    return (dx * dx + dy * dy).pow(beta / 2).flatten(1).sum(1)


@torch.no_grad()
def decay_(raw: torch.Tensor, decay: float) -> None:
    """Yosinski's L2 decay ``x <- (1 - decay) x`` on the parameter (0 is the grey image)."""
    raw.mul_(1.0 - decay)


@torch.no_grad()
def blur_(raw: torch.Tensor, sigma: float) -> None:
    """Gaussian blur of a pixel parameter [B, C, H, W] in place (Yosinski et al. 2015, "Gaussian blur"),
    separable, with reflected borders."""
    k = gaussian_kernel(sigma).to(raw.device, raw.dtype)
    c, r = raw.shape[1], k.numel() // 2
    x = F.pad(raw, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    raw.copy_(x)


@torch.no_grad()
def clip_small_norm_(raw: torch.Tensor, percentile: float) -> None:
    """Yosinski's small-norm clipping: set the pixels whose colour-vector norm is below the image's
    ``percentile``-th percentile to 0 (grey)."""
    if percentile <= 0:
        return
    norms = raw.norm(dim=1).flatten(1)  # [B, H*W]
    k = max(1, min(norms.shape[1], int(round(norms.shape[1] * percentile / 100.0))))
    threshold = norms.kthvalue(k, dim=1).values
    raw.mul_((norms > threshold[:, None]).view(raw.shape[0], 1, *raw.shape[2:]))


@torch.no_grad()
def clip_grad_per_image_(grad: torch.Tensor, max_norm: float, batch_dim: int = 0) -> None:
    """Scale each image's gradient down to L2 norm at most ``max_norm`` (one norm per image)."""
    g = grad.movedim(batch_dim, 0)
    norms = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    g.mul_((max_norm / norms).clamp(max=1.0).view(-1, *[1] * (g.dim() - 1)))


class _RedirectedReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        relu_grad = torch.where(x < 0, torch.zeros_like(grad), grad)
        # where x < 0, keep only the gradient that would raise x (the loss is minimized: grad < 0)
        redirected = torch.where((x < 0) & (grad > 0), torch.zeros_like(grad), grad)
        passes = relu_grad.flatten(1).norm(dim=1) > 0  # per image, so images stay independent
        return torch.where(passes.view(-1, *[1] * (grad.dim() - 1)), relu_grad, redirected)


class RedirectedReLU(torch.nn.Module):
    """A ReLU whose gradient is Lucid's ``redirected_relu_grad`` while ``active`` (Olah et al. 2017; Lucid
    ``optvis/redirected_relu_grad.py``): for an image whose ordinary ReLU gradient is all zero, let through
    the gradient that would raise the negative inputs, so that optimization can leave a dead region.
    The forward pass is an ordinary ReLU."""

    def __init__(self):
        super().__init__()
        self.active = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.active and torch.is_grad_enabled() and x.dim() > 1:
            return _RedirectedReLUFn.apply(x)
        return F.relu(x)


def redirect_relus(net: torch.nn.Module) -> list[RedirectedReLU]:
    """Replace every ``nn.ReLU`` of ``net`` (a working copy) by a :class:`RedirectedReLU`, in place;
    return them all (also those replaced before)."""
    replaced = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, RedirectedReLU):
                replaced.append(child)
            elif type(child) is torch.nn.ReLU:
                relu = RedirectedReLU()
                setattr(parent, name, relu)
                replaced.append(relu)
    return replaced
