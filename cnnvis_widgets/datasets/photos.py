"""Real photos that load offline: scikit-image's sample images, and a probe set of crops of them.

A real ImageNet network needs real images to be looked at, and a test or a tutorial needs them without a
download. scikit-image ships a handful of photographs inside its package (``skimage.data``; the rest of its
samples are fetched on first use and are not used here). :data:`PHOTOS` lists the natural colour photos,
:data:`GRAY_PHOTOS` the grayscale ones (textures and scenes, read as RGB by a colour model).

:class:`PhotoCrops` is a probe set for top activations, dissection-style statistics and "is this
visualization stronger than any real image" checks: square crops at several scales of every photo,
placed by a seeded generator, resized to one size. It holds the photos (a few MB), not the crops.
"""

from __future__ import annotations

import hashlib

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field",
          "immunohistochemistry", "retina")
GRAY_PHOTOS = ("camera", "coins", "moon", "brick", "grass", "gravel", "clock")


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise ImportError("The sample photos come from scikit-image: pip install scikit-image (or the project's "
                          "extra: pip install 'cnnvis-widgets[real]').") from None
    return data


def photo(name: str) -> Image.Image:
    """One of scikit-image's sample photos by name (:data:`PHOTOS`, :data:`GRAY_PHOTOS`) as a PIL image
    (RGB for colour photos, L for grayscale ones)."""
    data = _skimage_data()
    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = data.stereo_motorcycle()
        array = left if name == "motorcycle_left" else right
    elif name in PHOTOS or name in GRAY_PHOTOS:
        array = getattr(data, name)()
    else:
        raise ValueError(f"Unknown photo {name!r}; choose from {PHOTOS + GRAY_PHOTOS}.")
    return Image.fromarray(np.ascontiguousarray(array))


def photos(names: Sequence[str] = PHOTOS) -> list[Image.Image]:
    """Several sample photos (default: every colour one), in order."""
    return [photo(name) for name in names]


class PhotoCrops(torch.utils.data.Dataset):
    """Square crops of real photos at several scales, resized to ``size``: a probe set of real image content.

    Args:
        size: side of every crop as returned (e.g. the model's input size).
        names: photos to crop (:data:`PHOTOS` and/or :data:`GRAY_PHOTOS`); grayscale ones are returned as RGB.
        crops_per_photo: crops of each photo; the first is the whole photo's centre square, the others are
            placed at random with sides drawn from ``scales`` (fractions of the photo's shorter side).
        seed: the crops' placement.

    Items are float tensors [3, size, size] in [0, 1]; ``boxes[i]`` is (photo index, top, left, side) of crop i
    in its photo's pixels.
    """

    def __init__(self, size: int = 224, names: Sequence[str] = PHOTOS + GRAY_PHOTOS, crops_per_photo: int = 4,
                 scales: Sequence[float] = (1.0, 0.6, 0.35), seed: int = 0):
        if crops_per_photo < 1:
            raise ValueError(f"crops_per_photo must be at least 1, got {crops_per_photo}.")
        self.size, self.names = int(size), tuple(names)
        self._photos = [torch.from_numpy(np.array(photo(n).convert("RGB"))).permute(2, 0, 1) for n in self.names]
        rng = np.random.default_rng(seed)
        self.boxes: list[tuple[int, int, int, int]] = []
        for index, image in enumerate(self._photos):
            h, w = image.shape[1:]
            short = min(h, w)
            self.boxes.append((index, (h - short) // 2, (w - short) // 2, short))
            for _ in range(crops_per_photo - 1):
                side = max(8, int(round(short * float(rng.choice(scales)))))
                top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                self.boxes.append((index, top, left, side))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, i: int) -> torch.Tensor:
        index, top, left, side = self.boxes[i]
        crop = self._photos[index][:, top:top + side, left:left + side].float().div(255)
        return F.interpolate(crop[None], size=(self.size, self.size), mode="bilinear", antialias=True,
                             align_corners=False)[0].clamp(0, 1)

    def cache_fingerprint(self) -> str:
        """The photos' pixels, the crop boxes and the size (for :mod:`cnnvis_widgets.cache`)."""
        h = hashlib.sha256(f"{self.size} {self.boxes}".encode())
        for image in self._photos:
            h.update(image.numpy().tobytes())
        return h.hexdigest()[:20]

    def tensor(self) -> torch.Tensor:
        """Every crop as one tensor [N, 3, size, size]."""
        return torch.stack([self[i] for i in range(len(self))])

    def __repr__(self) -> str:
        return f"PhotoCrops({len(self)} crops of {len(self.names)} photos at {self.size} px)"
