"""Feature perturbations that keep each sample's L2 norm (Dosovitskiy & Brox 2016, §5.2, "Robustness").

Dosovitskiy & Brox ask what part of a representation carries the information by reconstructing images
from perturbed features: **binarization** keeps only the pattern of non-zero (positive) entries, all set to
one value; **dropout** zeroes half the entries. Both rescale each sample to its original L2 norm, so a
decoder sees features of the usual magnitude.
"""

from __future__ import annotations

import torch

PERTURBATIONS = ("binarize", "dropout")


def _norms(z: torch.Tensor) -> torch.Tensor:
    return z.flatten(1).norm(dim=1).view(-1, *[1] * (z.dim() - 1))


def binarize(features: torch.Tensor) -> torch.Tensor:
    """``||z|| * 1[z > 0] / ||1[z > 0]||`` per sample: the sign pattern, equal magnitudes, the L2 norm kept.

    A sample without positive entries stays zero (its norm is then kept only if it was zero).
    """
    z = features.float()
    pattern = (z > 0).to(z.dtype)
    return (pattern * (_norms(z) / _norms(pattern).clamp_min(1e-30))).to(features.dtype)


def dropout(features: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """``||z|| * (m * z) / ||m * z||`` per sample with ``m ~ Bernoulli(1 - p)``: entries zeroed, L2 norm kept.

    Args:
        p: share of entries to zero (Dosovitskiy & Brox: 0.5).
        generator: for a reproducible mask (on the features' device).
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout p must be in [0, 1), got {p}.")
    z = features.float()
    keep = torch.rand(z.shape, generator=generator, device=z.device) >= p
    kept = z * keep
    return (kept * (_norms(z) / _norms(kept).clamp_min(1e-30))).to(features.dtype)


def perturb(features: torch.Tensor, perturbation: str | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply ``"binarize"``, ``"dropout"`` or nothing (``None``)."""
    if perturbation is None:
        return features
    if perturbation == "binarize":
        return binarize(features)
    if perturbation == "dropout":
        return dropout(features, generator=generator)
    raise ValueError(f"perturbation must be None or one of {PERTURBATIONS}, got {perturbation!r}.")


__all__ = ["PERTURBATIONS", "binarize", "dropout", "perturb"]
