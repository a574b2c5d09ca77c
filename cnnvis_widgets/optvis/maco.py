"""MACO: magnitude-constrained optimization (Fel et al. 2023, "Unlocking Feature Visualization for Deeper
Networks with MAgnitude Constrained Optimization", NeurIPS; reference code: xplique
``features_visualizations/maco.py`` and ``preconditioning.py``, and serre-lab/Horama ``maco_fv.py``).

The image is ``sigmoid(recorrelate(standardize(irfft2(|A| * exp(i * standardize(phi))))))``: the Fourier
**magnitude** ``|A|`` is fixed to the mean amplitude spectrum of natural images (in decorrelated colour
space), and only the **phase** ``phi`` is optimized (Fel et al., Eq. 3). Both standardizations are per image
(over its channels and positions), as in the reference code, so only the relative shape of ``|A|`` matters.

The spectrum
------------
The paper's ``imagenet_decorrelated.npy`` is ImageNet's; it is downloaded by the reference code. Ours ships
inside the package (``natural_spectrum.npy``, float16 [3, 224, 113], 150 kB) and is computed offline from
scikit-image's colour photos by :func:`compute_natural_spectrum`, deterministically::

    .venv/bin/python -m cnnvis_widgets.optvis.maco      # rewrites cnnvis_widgets/optvis/natural_spectrum.npy

Each of the 9 colour photos (:data:`~cnnvis_widgets.datasets.photos.PHOTOS`) gives 8 square crops
(``PhotoCrops(224, PHOTOS, crops_per_photo=8, seed=0)``: the centre square and 7 seeded crops of 100%, 60%
or 35% of the short side, resized to 224 px with antialiasing); the 72 crops' mean colour is subtracted
from every crop (so the DC term measures how far a crop's mean colour strays from it), which is mapped to the decorrelated colour space (the inverse of Lucid's colour matrix,
:data:`~.parameterizations.COLOR_CORRELATION_NORMALIZED`, which the image is recorrelated with); the spectrum
is the mean over the 72 crops of ``|rfft2(crop, norm="ortho")|``, per channel.

For an image of another size (h, w) the magnitude is **resampled by frequency** (:func:`magnitude_for`):
every coefficient of the (h, w // 2 + 1) rFFT grid reads the shipped spectrum, centred with ``fftshift``,
bilinearly at its own frequency in cycles per pixel. (xplique resizes the unshifted half-spectrum array as
if it were an image, which blends the positive and negative vertical frequencies at the wrap.)

Transforms (:class:`~.transforms.CropTransforms`): several random square crops of the image per step, resized to the
model's input, plus Gaussian and uniform noise, as in xplique's ``maco_optimisation_step`` (crop centres
N(0.5, 0.15), side N(box(step), 0.05) clipped to [0.05, 1], crops outside the image filled with 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .parameterizations import COLOR_CORRELATION_NORMALIZED, decorrelate_color, from_valid_rgb

SPECTRUM_FILE = Path(__file__).with_name("natural_spectrum.npy")
SPECTRUM_SIZE = 224


def compute_natural_spectrum(size: int = SPECTRUM_SIZE, crops_per_photo: int = 8, seed: int = 0) -> np.ndarray:
    """The mean amplitude spectrum of scikit-image's colour photos in decorrelated colour space,
    float32 [3, size, size // 2 + 1] (see the module docstring for the recipe)."""
    from ..datasets.photos import PHOTOS, PhotoCrops

    crops = PhotoCrops(size, names=PHOTOS, crops_per_photo=crops_per_photo, seed=seed).tensor().double()
    crops = crops - crops.mean((0, 2, 3), keepdim=True)  # the set's mean colour: the DC term keeps its spread
    inverse = torch.linalg.inv(COLOR_CORRELATION_NORMALIZED.double())
    decorrelated = torch.einsum("bchw,dc->bdhw", crops, inverse)  # decorrelate_color(decorrelated) == crops
    amplitude = torch.fft.rfft2(decorrelated, norm="ortho").abs().mean(0)
    return amplitude.float().numpy()


def write_natural_spectrum(path: Path = SPECTRUM_FILE) -> Path:
    """Regenerate the shipped spectrum file (float16)."""
    np.save(path, compute_natural_spectrum().astype(np.float16))
    return Path(path)


_SPECTRUM: torch.Tensor | None = None


def natural_spectrum() -> torch.Tensor:
    """The shipped spectrum as float32 [3, 224, 113] (computed and cached if the file is missing)."""
    global _SPECTRUM
    if _SPECTRUM is None:
        array = np.load(SPECTRUM_FILE) if SPECTRUM_FILE.exists() else compute_natural_spectrum()
        _SPECTRUM = torch.from_numpy(np.asarray(array, dtype=np.float32))
    return _SPECTRUM


def magnitude_for(h: int, w: int, spectrum: torch.Tensor | None = None) -> torch.Tensor:
    """The fixed magnitude for an h x w image, [3, h, w // 2 + 1], resampled by frequency (module docstring)."""
    spectrum = natural_spectrum() if spectrum is None else spectrum
    s = spectrum.shape[-2]
    centred = torch.fft.fftshift(spectrum.double(), dim=-2)  # rows: frequencies (i - s // 2) / s
    fy = torch.fft.fftfreq(h, dtype=torch.float64)  # target frequencies in cycles per pixel
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)
    rows = fy * s + s // 2  # fractional source indices
    cols = fx * s
    gy = 2 * rows / (s - 1) - 1
    gx = 2 * cols / (spectrum.shape[-1] - 1) - 1
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), -1)[None]  # [1, h, wf, 2] (x, y)
    out = F.grid_sample(centred[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    return out.float()


def _standardize(t: torch.Tensor) -> torch.Tensor:
    """Per image (dim 0): zero mean and unit standard deviation over everything else (xplique: eps 1e-5)."""
    flat = t.flatten(1)
    mean = flat.mean(1).view(-1, *[1] * (t.dim() - 1))
    std = flat.std(1).view(-1, *[1] * (t.dim() - 1))
    return (t - mean) / (std + 1e-5)


class MacoImage(nn.Module):
    """Fel et al.'s MACO parameterization, batched: a phase [B, C, h, w // 2 + 1] per image (init N(0, sd^2)
    from each image's own seed), a fixed magnitude (:func:`magnitude_for`), and

        image = sigmoid(recorrelate(standardize(irfft2(|A| exp(i standardize(phase))))))

    in [0, 1] (the model's normalization follows; xplique and Horama map the sigmoid to the model's value
    range instead, e.g. (-2.5, 2.5) for a normalized ImageNet input, which is about the range [0, 1]
    normalizes to). The natural spectrum is RGB: with another channel count every channel gets the first
    (luminance) channel's magnitude and no colour recorrelation.
    """

    kind = "maco"

    def __init__(self, seeds: Sequence[int], size: tuple[int, int], sd: float = 1.0, decorrelate: bool = True,
                 device=None, channels: int = 3, **_):
        super().__init__()
        h, w = size
        self.size = (h, w)
        wf = w // 2 + 1
        init = torch.stack([torch.randn(channels, h, wf, generator=torch.Generator().manual_seed(int(s)))
                            for s in seeds])
        self.phase = nn.Parameter((init * sd).to(device))
        magnitude = magnitude_for(h, w)
        if channels != 3:
            magnitude = magnitude[:1].expand(channels, -1, -1).contiguous()
        self.register_buffer("magnitude", magnitude.to(device))
        self.decorrelate = decorrelate and channels == 3

    def spatial(self) -> torch.Tensor:
        """The standardized image before colour recorrelation and sigmoid, [B, C, h, w]."""
        phase = _standardize(self.phase)
        spectrum = torch.polar(self.magnitude.expand_as(phase), phase)
        return _standardize(torch.fft.irfft2(spectrum, s=self.size))

    def forward(self) -> torch.Tensor:
        t = self.spatial()
        return torch.sigmoid(decorrelate_color(t) if self.decorrelate else t)

    @torch.no_grad()
    def set_images(self, images: torch.Tensor) -> None:
        """Start near ``images`` [B, C, h, w] in [0, 1]: their phase (their structure) with the natural
        magnitude. Approximate: the forward's standardization of the phase rescales it a little."""
        t = from_valid_rgb(images.to(self.phase), self.decorrelate, sigmoid=True)
        phase = torch.angle(torch.fft.rfft2(t))
        self.phase.copy_(phase)


if __name__ == "__main__":
    print(write_natural_spectrum())
