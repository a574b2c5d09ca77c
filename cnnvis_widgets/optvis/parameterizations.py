"""Image parameterizations: the tensors the optimizer changes, and how they become images in [0, 1].

Both follow Lucid (``lucid/optvis/param/spatial.py`` and ``color.py``; Olah et al. 2017, "Feature
Visualization", section "Preconditioning and Parameterization"):

- :class:`PixelImage`: one free value per pixel and colour, squashed by a sigmoid (or clamped);
- :class:`FourierImage`: a spectrum whose high frequencies are scaled down by ``1 / f``, which
  decorrelates pixels spatially and makes the optimization far better conditioned.

Both can decorrelate colour with Lucid's ``color_correlation_svd_sqrt`` matrix. That matrix is ImageNet's
RGB statistics, so it applies to three channels only: with any other channel count (a grayscale model, an
RGBA or multispectral one) the channels are parameterized independently, each with its own spectrum (the
spatial decorrelation of the Fourier basis still holds per channel), centred on 0.5. Every image is
initialized from its own ``torch.Generator`` so that it depends only on its own seed, not on the batch it
sits in.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

# Lucid's square root of ImageNet's colour correlation (lucid/optvis/param/color.py).
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                           [0.27, 0.00, -0.05],
                                           [0.27, -0.09, 0.03]])
MAX_NORM_SVD_SQRT = float(COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max())
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / MAX_NORM_SVD_SQRT
COLOR_MEAN = (0.48, 0.46, 0.41)


def decorrelate_color(t: torch.Tensor) -> torch.Tensor:
    """Lucid's ``_linear_decorelate_color``: each pixel's 3 values times the normalized matrix's transpose
    (``t``: [B, 3, H, W])."""
    m = COLOR_CORRELATION_NORMALIZED.to(t.device, t.dtype)
    return torch.einsum("bchw,dc->bdhw", t, m)


def _decorrelates(t: torch.Tensor, decorrelate: bool) -> bool:
    """Colour decorrelation applies to RGB only (see the module docstring)."""
    return decorrelate and t.shape[1] == 3


def to_valid_rgb(t: torch.Tensor, decorrelate: bool, sigmoid: bool) -> torch.Tensor:
    """Lucid's ``to_valid_rgb``: optional colour decorrelation, then a sigmoid, or (``sigmoid=False``)
    a clamp to [0, 1] whose gradient passes straight through (Lucid's ``constrain_L_inf``), centred
    on the colour mean when decorrelated and on grey (0.5) otherwise. ``t``: [B, C, H, W]; with C != 3
    there is no colour to decorrelate and ``decorrelate`` is ignored."""
    decorrelate = _decorrelates(t, decorrelate)
    if decorrelate:
        t = decorrelate_color(t)
    if sigmoid:
        return torch.sigmoid(t)
    if decorrelate:
        t = t + torch.tensor(COLOR_MEAN, device=t.device, dtype=t.dtype).view(1, 3, 1, 1)
    else:
        t = t + 0.5
    return t + (t.clamp(0, 1) - t).detach()


def from_valid_rgb(images: torch.Tensor, decorrelate: bool, sigmoid: bool, eps: float = 1e-3) -> torch.Tensor:
    """The inverse of :func:`to_valid_rgb`: the values that it maps to ``images`` ([B, C, H, W] in [0, 1]).

    With a sigmoid, pixels are first clamped to ``[eps, 1 - eps]`` (a saturated pixel has no finite
    pre-image, and one far out in the tail would never move again)."""
    decorrelate = _decorrelates(images, decorrelate)
    if sigmoid:
        t = torch.logit(images.clamp(eps, 1 - eps))
    elif decorrelate:
        t = images - torch.tensor(COLOR_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    else:
        t = images - 0.5
    if decorrelate:
        inverse = torch.linalg.inv(COLOR_CORRELATION_NORMALIZED.double()).to(t.device, t.dtype)
        t = torch.einsum("bchw,dc->bdhw", t, inverse)
    return t


def rfft2d_freqs(h: int, w: int) -> torch.Tensor:
    """The frequency magnitude of each rFFT coefficient of an h x w image, shape [h, w // 2 + 1].

    Lucid keeps ``w // 2 + 2`` columns for odd widths and relies on the inverse FFT to drop the last;
    ``torch.fft.irfft2`` with ``s=(h, w)`` needs exactly ``w // 2 + 1``.
    """
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return (fx * fx + fy * fy).sqrt()


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    """Lucid's ``1 / max(f, 1 / max(h, w)) ** decay_power``, shape [h, w // 2 + 1]."""
    return (1.0 / rfft2d_freqs(h, w).clamp_min(1.0 / max(h, w)) ** decay_power).float()


class PixelImage(nn.Module):
    """One free parameter per pixel and channel (Lucid's ``pixel_image``), init N(0, sd^2).

    Args:
        seeds: one int per image; image ``b``'s initial values come from ``torch.Generator(seeds[b])``.
        size: (height, width).
        sd: the initial standard deviation (Lucid: 0.01).
        decorrelate, sigmoid: see :func:`to_valid_rgb` (decorrelation: RGB only).
        channels: the image's channels (the model's: 3 for RGB, 1 for grayscale, ...).
    """

    kind = "pixel"

    def __init__(self, seeds: Sequence[int], size: tuple[int, int], sd: float = 0.01, decorrelate: bool = False,
                 sigmoid: bool = True, device=None, channels: int = 3):
        super().__init__()
        h, w = size
        init = torch.stack([torch.randn(channels, h, w, generator=torch.Generator().manual_seed(s)) for s in seeds])
        self.raw = nn.Parameter((init * sd).to(device))
        self.decorrelate, self.sigmoid = decorrelate, sigmoid

    @torch.no_grad()
    def set_images(self, images: torch.Tensor) -> None:
        """Start from ``images`` [B, C, h, w] in [0, 1] instead of the random draw."""
        self.raw.copy_(from_valid_rgb(images.to(self.raw), self.decorrelate, self.sigmoid))

    def forward(self) -> torch.Tensor:
        return to_valid_rgb(self.raw, self.decorrelate, self.sigmoid)


class FourierImage(nn.Module):
    """Lucid's ``fft_image``: a spectrum [B, C, h, w//2+1] (real and imaginary parts, init N(0, sd^2)),
    scaled by :func:`spectrum_scale`, inverse rFFT with ``norm="ortho"`` (Lucent's equivalent of Lucid's
    ``irfft2d`` times ``sqrt(w h)``), divided by 4, then :func:`to_valid_rgb` (decorrelated by default).

    ``channels`` is the model's channel count. Colour decorrelation needs three (RGB); with one channel
    (grayscale) or four and more, every channel has its own independent spectrum and no colour mixing.
    """

    kind = "fourier"

    def __init__(self, seeds: Sequence[int], size: tuple[int, int], sd: float = 0.01, decay_power: float = 1.0,
                 decorrelate: bool = True, sigmoid: bool = True, device=None, channels: int = 3):
        super().__init__()
        h, w = size
        self.size = (h, w)
        wf = w // 2 + 1
        init = torch.stack([torch.randn(2, channels, h, wf, generator=torch.Generator().manual_seed(s))
                            for s in seeds], 1)
        self.spectrum = nn.Parameter((init * sd).to(device))  # [2, B, C, h, wf]
        self.register_buffer("scale", spectrum_scale(h, w, decay_power).to(device))
        self.decorrelate, self.sigmoid = decorrelate, sigmoid

    @torch.no_grad()
    def set_images(self, images: torch.Tensor) -> None:
        """Start from ``images`` [B, C, h, w] in [0, 1] instead of the random draw: the spectrum whose
        image (see ``forward``) they are."""
        t = from_valid_rgb(images.to(self.spectrum), self.decorrelate, self.sigmoid)
        spectrum = torch.fft.rfft2(t * 4.0, norm="ortho") / self.scale
        self.spectrum.copy_(torch.stack([spectrum.real, spectrum.imag]))

    def forward(self) -> torch.Tensor:
        spectrum = torch.complex(self.spectrum[0], self.spectrum[1]) * self.scale
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        return to_valid_rgb(image, self.decorrelate, self.sigmoid)


class GeneratorImage(nn.Module):
    """Images made by a generator from a free code per image (Nguyen et al. 2016, DGN-AM).

    The generator (e.g. an :class:`~cnnvis_widgets.inversion.upconv.UpconvDecoder`) maps codes shaped like
    a layer's features to images in [0, 1] with the model's ``channels``; it is copied, frozen and kept in
    eval mode. Each code starts from its own seed: a draw of ``N(0, sd^2)`` clipped to the code's range
    (``code_low``/``code_high`` of the generator, the range the layer's features take on real images).
    """

    def __init__(self, seeds: Sequence[int], size: tuple[int, int], generator: nn.Module, device=None,
                 sd: float = 1.0, channels: int = 3, **_):
        super().__init__()
        import copy

        if generator is None:
            raise ValueError("param='generator' needs generator=: an UpconvDecoder (cv.inversion.upconv) or any "
                             "module mapping codes to images in [0, 1] with code_low/code_high attributes.")
        made = getattr(generator, "channels", channels)
        if made != channels:
            raise ValueError(f"The generator makes {made}-channel images but the model takes {channels}; pass a "
                             f"generator trained for this model: cv.train_upconv(model, 'fc6', dataset, "
                             "comparator='fc7').")
        self.generator = copy.deepcopy(generator).to(device).eval().requires_grad_(False)
        self.size = tuple(size)
        shape = tuple(self.generator.feature_shape)
        codes = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) * sd for s in seeds]
        low, high = self.code_bounds(shape, device)
        self.code = nn.Parameter(torch.max(torch.min(torch.stack(codes).to(device), high), low))

    def code_bounds(self, shape, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The code's lower and upper bounds, shaped to broadcast over [B, *shape]."""
        low = torch.as_tensor(self.generator.code_low, dtype=torch.float32, device=device)
        high = torch.as_tensor(self.generator.code_high, dtype=torch.float32, device=device)
        extra = len(shape) - low.dim()
        return low.view(*low.shape, *[1] * extra), high.view(*high.shape, *[1] * extra)

    @torch.no_grad()
    def clip_(self) -> None:
        """Clip every code to the observed range (Nguyen et al.'s bound on the code)."""
        low, high = self.code_bounds(self.code.shape[1:], self.code.device)
        self.code.copy_(torch.max(torch.min(self.code, high), low))

    def set_images(self, images: torch.Tensor) -> None:
        raise ValueError("init= needs an image parameterization (param='pixel' or 'fourier'): a generator's "
                         "code has no image to start from. Use preset='lucid' or 'simonyan', or leave init out.")

    def forward(self) -> torch.Tensor:
        images = self.generator(self.code)
        if tuple(images.shape[-2:]) != self.size:
            images = torch.nn.functional.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
        return images.clamp(0, 1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalized 1-D Gaussian of radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()
