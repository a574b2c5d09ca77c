"""How natural a reconstruction is: the share of its spectral energy at high spatial frequencies.

Mahendran & Vedaldi's regularizers (IJCV 2016, §3.2) exist to keep pre-images free of the high-frequency
"colour grain" that a feature loss alone leaves; the normalized feature error does not see it. The measure
here does: the share of an image's (mean-free, Hann-windowed) spectral energy at radial frequencies above
``cutoff`` cycles per pixel (a quarter of the sampling frequency by default), summed over the colour
channels. A reconstruction is compared with the photo it came from by the ratio of their shares (1: as much
fine structure as the photo; a pre-image covered in grain scores several times more).
"""

from __future__ import annotations

import numpy as np


def high_frequency_share(images, cutoff: float = 0.25, window: bool = True) -> np.ndarray:
    """Per image, the share of spectral energy at radial frequency ``sqrt(fx^2 + fy^2) > cutoff``
    (cycles per pixel; 0.5 is Nyquist), after removing each channel's mean.

    Args:
        images: [N, C, H, W] (or [C, H, W]) array or tensor.
        cutoff: in cycles per pixel; 0.25 is a quarter of the sampling frequency.
        window: multiply by a separable Hann window first, so the image's borders (a jump where the
            periodic extension wraps) do not leak into the high frequencies.
    Returns: float64 [N] in [0, 1].
    """
    x = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images, np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"Pass images as [N, C, H, W] or [C, H, W]; got shape {x.shape}.")
    if not 0 < cutoff < 0.5 * np.sqrt(2):
        raise ValueError(f"cutoff is in cycles per pixel and must lie in (0, 0.707); got {cutoff}.")
    h, w = x.shape[-2:]
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    if window:
        x = x * (np.hanning(h)[:, None] * np.hanning(w)[None, :])
    power = (np.abs(np.fft.fft2(x)) ** 2).sum(1)  # [N, H, W], summed over channels
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    total = power.sum((1, 2))
    return power[:, radius > cutoff].sum(1) / np.maximum(total, 1e-30)


def spectral_ratio(reconstructions, originals, cutoff: float = 0.25) -> np.ndarray:
    """Per image, ``high_frequency_share(reconstruction) / high_frequency_share(original)``."""
    return high_frequency_share(reconstructions, cutoff) / np.maximum(high_frequency_share(originals, cutoff), 1e-12)


__all__ = ["high_frequency_share", "spectral_ratio"]
