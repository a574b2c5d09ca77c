"""Transformation robustness, drawn independently for every image (Olah et al. 2017, "Transformation
robustness"; Lucid's ``optvis/transform.py`` ``standard_transforms``).

Lucid (and Lucent) draw one random transform per step for the whole batch, so an image's result depends on
the batch it was optimized in. Here every image has its own generator, seeded from (seed, unit, index
within the unit), and all its draws for the whole run are made before the loop: an image's transforms
depend only on its seed and the step. The transforms themselves run batched on the device: jitter as
per-image integer crops (two gathers), scale and rotation as one ``affine_grid`` / ``grid_sample`` with
per-image matrices.

:class:`CropTransforms` are MACO's (Fel et al. 2023): several random crops of every image per step, plus
noise that is a hash of the image's own draw, so that it too does not depend on the batch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class StandardTransforms:
    """Lucid's ``standard_transforms``: pad 12 (constant 0.5), jitter 8, random scale in
    ``{1 + (i - 5) / 50 : i = 0..10}``, random rotation in -10..10 degrees (plus five extra 0s, as in
    Lucid), jitter 4; then a bilinear resize to the model's input size.

    Differences from Lucid, forced by per-image draws in one batch: scaling zooms about the centre inside a
    canvas of fixed size instead of resizing the tensor, and what rotation and zoom-out uncover is filled
    with 0.5 (like the padding) instead of 0.
    """

    pad: int = 12
    pad_value: float = 0.5
    jitter1: int = 8
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
    angles: tuple[float, ...] = tuple(float(a) for a in range(-10, 11)) + (0.0,) * 5
    jitter2: int = 4

    def for_size(self, size: int, reference: int = 128) -> "StandardTransforms":
        """Pad and jitter scaled down for images smaller than ``reference`` px (Lucid renders 128 px images
        with these pixel amounts; a 64 px model would otherwise see its image shifted by an eighth)."""
        if size >= reference:
            return self
        f = size / reference
        return dataclasses.replace(self, pad=max(1, round(self.pad * f)), jitter1=max(1, round(self.jitter1 * f)),
                                   jitter2=max(1, round(self.jitter2 * f)))

    def draw(self, seed: int, steps: int) -> torch.Tensor:
        """All of one image's random parameters, [steps, 6]: (dy1, dx1, scale, angle in degrees, dy2, dx2).
        Jitter offsets are uniform in 0..d (Lucid's ``random_crop`` of size ``n - d``)."""
        g = torch.Generator().manual_seed(int(seed))
        j1 = torch.randint(0, self.jitter1 + 1, (steps, 2), generator=g)
        s = torch.tensor(self.scales)[torch.randint(0, len(self.scales), (steps,), generator=g)]
        a = torch.tensor(self.angles)[torch.randint(0, len(self.angles), (steps,), generator=g)]
        j2 = torch.randint(0, self.jitter2 + 1, (steps, 2), generator=g)
        return torch.cat([j1.float(), s[:, None], a[:, None], j2.float()], 1)

    def __call__(self, x: torch.Tensor, params: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """Transform images [B, C, H, W] with per-image ``params`` [B, 6] (see :meth:`draw`)."""
        x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        x = crop(x, params[:, 0], params[:, 1], self.jitter1)
        x = scale_rotate(x, params[:, 2], params[:, 3], fill=self.pad_value)
        x = crop(x, params[:, 4], params[:, 5], self.jitter2)
        return resize(x, out_size)


def crop(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, d: int) -> torch.Tensor:
    """Per-image crops of size (H - d, W - d) at integer offsets (dy[b], dx[b]) in 0..d."""
    if d == 0:
        return x
    b, c, h, w = x.shape
    hc, wc = h - d, w - d
    rows = dy.long()[:, None] + torch.arange(hc, device=x.device)  # [B, hc]
    cols = dx.long()[:, None] + torch.arange(wc, device=x.device)  # [B, wc]
    x = x.gather(2, rows[:, None, :, None].expand(b, c, hc, w))
    return x.gather(3, cols[:, None, None, :].expand(b, c, hc, wc))


def scale_rotate(x: torch.Tensor, scale: torch.Tensor, degrees: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """Zoom by ``scale[b]`` and rotate by ``degrees[b]`` about the centre, one ``grid_sample`` for the batch."""
    h, w = x.shape[-2:]
    t = degrees.to(x.dtype) * (math.pi / 180)
    cos, sin, inv = t.cos(), t.sin(), 1.0 / scale.to(x.dtype)
    # output -> input coordinates in grid_sample's normalized units, with the aspect ratio accounted for
    theta = torch.stack([torch.stack([cos * inv, -sin * inv * (h / w), torch.zeros_like(t)], 1),
                         torch.stack([sin * inv * (w / h), cos * inv, torch.zeros_like(t)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size`` (a no-op when it already has that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class CropTransforms:
    """MACO's transforms (xplique ``maco_optimisation_step``): per image and step, ``crops`` random square
    crops resized to the model's input (bilinear), then Gaussian noise of sd ``noise`` plus uniform noise in
    ``[-noise / 2, noise / 2]``.

    Crop centres are N(0.5, ``center_sd``) in image fractions; a crop's side is N(box, ``box_sd``) clipped
    to [0.05, 1], where ``box`` goes linearly from ``box[0]`` at the first step to ``box[1]`` at the last
    (xplique: 0.5 to 0.05 on a 512 px image for a 224 px model, noise 0.08, 32 crops). What lies outside the
    image reads 0, as TensorFlow's ``crop_and_resize`` extrapolates. All draws come from the image's own
    generator before the loop; the noise is a counter-based hash of (the image's draw, crop, pixel), so an
    image's noise, like its crops, does not depend on the batch it sits in.
    """

    crops: int = 6
    box: tuple[float, float] = (0.5, 0.05)
    box_sd: float = 0.05
    center_sd: float = 0.15
    noise: float = 0.08

    def for_size(self, size: int, reference: int = 128) -> "CropTransforms":
        return self  # crops are fractions of the image

    def draw(self, seed: int, steps: int) -> torch.Tensor:
        """One image's parameters [steps, 3 * crops + 1]: (cx, cy, side) per crop, then a noise key."""
        g = torch.Generator().manual_seed(int(seed))
        k = self.crops
        centre = 0.5 + self.center_sd * torch.randn(steps, k, 2, generator=g)
        box = torch.linspace(self.box[0], self.box[1], steps)[:, None] if steps > 1 else torch.full((1, 1), self.box[0])
        side = (box + self.box_sd * torch.randn(steps, k, generator=g)).clamp(0.05, 1.0)
        key = torch.randint(0, 2 ** 24, (steps, 1), generator=g).float()  # exact in float32
        return torch.cat([torch.cat([centre, side[..., None]], -1).flatten(1), key], 1)

    def __call__(self, x: torch.Tensor, params: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """Crops [B * crops, C, *out_size] of images [B, C, H, W] (image b's crops adjacent)."""
        b, c = x.shape[:2]
        k = self.crops
        p = params[:, :3 * k].reshape(b * k, 3).to(x.dtype)
        cx, cy, side = p[:, 0], p[:, 1], p[:, 2]
        zero = torch.zeros_like(side)
        theta = torch.stack([torch.stack([side, zero, 2 * cx - 1], 1), torch.stack([zero, side, 2 * cy - 1], 1)], 1)
        grid = F.affine_grid(theta, [b * k, c, *out_size], align_corners=False)
        out = F.grid_sample(x.repeat_interleave(k, 0), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        if self.noise:
            keys = params[:, 3 * k].long()[:, None] * k + torch.arange(k, device=x.device)  # [B, k]
            gauss, uniform = hashed_noise(keys.reshape(-1), out.shape[1:])
            out = out + self.noise * gauss + self.noise * (uniform - 0.5)
        return out


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """Chris Wellons' ``lowbias32`` integer hash on int64 tensors holding 32-bit values."""
    m = 0xFFFFFFFF
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & m
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & m
    return x ^ (x >> 16)


def hashed_noise(keys: torch.Tensor, shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-key N(0, 1) and U(0, 1) noise of ``shape`` ([len(keys), *shape] each), a pure function of (key,
    element index): the same key always gives the same noise, on any device, in any batch."""
    n = int(np.prod(shape))
    index = torch.arange(n, device=keys.device)[None, :]
    base = _hash32((keys[:, None] * 0x9E3779B1 + 0x632BE5AB) & 0xFFFFFFFF)
    u = [(_hash32((base + index * 3 + j) & 0xFFFFFFFF).float() + 0.5) / 2.0 ** 32 for j in range(3)]
    gauss = torch.sqrt(-2 * torch.log(u[0])) * torch.cos(2 * np.pi * u[1])
    return gauss.view(len(keys), *shape), u[2].view(len(keys), *shape)


def transforms_from_dict(d: dict):
    """Rebuild a saved transforms dataclass (:class:`CropTransforms` or ``StandardTransforms``)."""
    for cls in (CropTransforms, StandardTransforms):
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) == names:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    raise ValueError(f"Saved transforms with fields {sorted(d)} match no known transforms class.")
