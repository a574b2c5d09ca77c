"""How an image of any size becomes the model's input, and where the part the model saw lies in the original.

A :class:`ResizePolicy` names one of three ways to bring an image to the input size ``(H, W)``, each one the
evaluation transform of a model zoo:

* ``"crop"``: scale the image, keeping its aspect ratio, so that its shorter side is ``size / crop_fraction``,
  then cut the centre ``(H, W)``. This is torchvision's ``Resize(resize_size)`` + ``CenterCrop(crop_size)``
  (``weights.transforms()``, with ``crop_fraction = crop_size / resize_size``, e.g. 224 / 256) and timm's
  ``crop_mode="center"`` (``crop_fraction`` is its ``crop_pct``). Nothing is distorted; the borders are lost.
* ``"squash"``: scale each side to ``size / crop_fraction`` and cut the centre; with ``crop_fraction=1`` (the
  default) a plain resize to ``(H, W)``. The aspect ratio is not kept and, at 1, nothing is lost (timm's
  ``crop_mode="squash"``).
* ``"pad"``: letterbox. Scale, keeping the aspect ratio, so that the longer side is ``size / crop_fraction``, then
  pad (and, below 1, cut) to ``(H, W)`` with ``fill`` (timm's ``crop_mode="border"``, which fills with the mean).

Sizes follow the references: the target before the cut is ``floor(size / crop_fraction)`` (timm's
``transforms_imagenet_eval``; torchvision's ratios give its integer ``resize_size`` back), a square target
scales the shorter (``"crop"``) or longer (``"pad"``) side as torchvision's ``Resize(int)`` / ``Resize(max_size=)``
do (the other side truncated), a non-square one as timm's ``ResizeKeepRatio`` (rounded), and the cut sits where
torchvision's ``center_crop`` puts it. The pixels come from torchvision's ``transforms.v2.functional`` ops
(``resize`` antialiased, ``pad``, ``crop``), batched.

An image that is already at the input size comes back unchanged, bit for bit, under every policy: it is taken
as already framed. Images that engines return (activation maximization, reconstructions) then feed other
engines as they are, and datasets made at the model's size (ShapeWorld for MiniAlexNet) are read as made.

:meth:`ResizePolicy.seen_box` says, for an original of a given size, which box of it the model saw and at what
scale, so that positions in results (which refer to the image the model saw) map back onto the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FITS = ("crop", "squash", "pad")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "nearest-exact")
DEFAULT_CROP_FRACTION = 0.875  # 224 / 256: torchvision's classic Resize(256) + CenterCrop(224), timm's DEFAULT_CROP_PCT


@dataclass(frozen=True)
class SeenBox:
    """The region of an original image that the model saw, in original pixels.

    Attributes:
        top, left, bottom, right: the half-open box, as floats; under ``"pad"`` it reaches past the original
            (the padding), under ``"crop"`` it lies inside it.
        scale: (rows, columns) of the seen image per original pixel.
        original_size: (height, width) of the original.
    """

    top: float
    left: float
    bottom: float
    right: float
    scale: tuple[float, float]
    original_size: tuple[int, int]

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.top, self.left, self.bottom, self.right

    @property
    def whole(self) -> bool:
        """Whether the model saw all of the original (``"squash"``, ``"pad"``, an image at size), none cut off."""
        h, w = self.original_size
        return self.top < 0.5 and self.left < 0.5 and self.bottom > h - 0.5 and self.right > w - 0.5

    def to_original(self, box) -> tuple[float, float, float, float]:
        """A half-open box (top, left, bottom, right) in seen-image pixels, in original pixels."""
        top, left, bottom, right = (float(v) for v in box)
        sy, sx = self.scale
        return self.top + top / sy, self.left + left / sx, self.top + bottom / sy, self.left + right / sx

    def pixel(self, row: int, column: int) -> tuple[int, int]:
        """The original pixel under the centre of seen pixel (row, column) (``align_corners=False`` geometry)."""
        sy, sx = self.scale
        return math.floor(self.top + (row + 0.5) / sy), math.floor(self.left + (column + 0.5) / sx)


@dataclass(frozen=True)
class _Plan:
    resized: tuple[int, int]  # (h, w) after scaling
    offset: tuple[int, int]  # (top, left) of the input frame in the scaled image; negative where it is padded


@dataclass(frozen=True)
class ResizePolicy:
    """How images are brought to the model's input size (see the module docstring).

    Args:
        fit: ``"crop"``, ``"squash"`` or ``"pad"``.
        crop_fraction: the share of the scaled image's side that the input keeps (torchvision's
            ``crop_size / resize_size``, timm's ``crop_pct``); default 0.875 for ``"crop"``, 1 otherwise.
        interpolation: ``"bilinear"`` (torchvision's default), ``"bicubic"`` (most timm weights), ``"nearest"``
            or ``"nearest-exact"``; antialiased when downscaling (bilinear, bicubic).
        fill: the colour of ``"pad"``'s borders, RGB in [0, 1] (one value or three). A :class:`~cnnvis_widgets.Model`
            given ``fit="pad"`` fills with its normalization mean, which the network sees as zero, as timm's
            ``crop_mode="border"`` does; default mid-grey.
    """

    fit: str = "squash"
    crop_fraction: float | None = None
    interpolation: str = "bilinear"
    fill: float | tuple[float, ...] = 0.5

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(map(repr, FITS))}; got {self.fit!r}.")
        fraction = (DEFAULT_CROP_FRACTION if self.fit == "crop" else 1.0) if self.crop_fraction is None \
            else float(self.crop_fraction)
        if not 0 < fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1] (e.g. 224 / 256 = 0.875); got {self.crop_fraction!r}.")
        object.__setattr__(self, "crop_fraction", fraction)
        interpolation = str(getattr(self.interpolation, "value", self.interpolation)).lower()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {self.interpolation!r}.")
        object.__setattr__(self, "interpolation", interpolation)
        fill = tuple(float(v) for v in self.fill) if isinstance(self.fill, (tuple, list)) else float(self.fill)
        object.__setattr__(self, "fill", fill)

    @classmethod
    def of(cls, value, fill=None) -> "ResizePolicy":
        """A policy from a :class:`ResizePolicy` (kept) or a fit name; ``fill`` (if given) colours a named ``"pad"``."""
        if isinstance(value, ResizePolicy):
            return value
        if isinstance(value, str):
            return cls(value, fill=tuple(fill) if fill is not None and value == "pad" else 0.5)
        raise TypeError(f"fit must be 'crop', 'squash', 'pad' or a cv.ResizePolicy; got {type(value).__name__}.")

    def __repr__(self) -> str:
        return f"ResizePolicy({self.fit!r}, crop_fraction={self.crop_fraction:g}, interpolation={self.interpolation!r})"

    def to_dict(self) -> dict:
        fill = list(self.fill) if isinstance(self.fill, tuple) else self.fill
        return {"fit": self.fit, "crop_fraction": self.crop_fraction, "interpolation": self.interpolation, "fill": fill}

    @classmethod
    def from_dict(cls, data: dict | None) -> "ResizePolicy":
        return cls(**data) if data else cls()

    # -- geometry -----------------------------------------------------------------------------------------
    def _plan(self, original: tuple[int, int], size: tuple[int, int]) -> _Plan:
        h, w = (int(v) for v in original)
        H, W = (int(v) for v in size)
        target = (math.floor(H / self.crop_fraction + 1e-6), math.floor(W / self.crop_fraction + 1e-6))
        if self.fit == "squash":
            resized = target
        elif target[0] == target[1]:  # torchvision's Resize(int) (shorter side) / Resize(None, max_size) (longer)
            short, long = min(h, w), max(h, w)
            new = (target[0], int(target[0] * long / short)) if self.fit == "crop" else \
                (int(target[0] * short / long), target[0])  # (shorter side, longer side)
            resized = new if h <= w else new[::-1]
        else:  # timm's ResizeKeepRatio: cover ("crop") or fit inside ("pad") the target
            ratios = (h / target[0], w / target[1])
            ratio = min(ratios) if self.fit == "crop" else max(ratios)
            resized = (round(h / ratio), round(w / ratio))
        resized = (max(1, resized[0]), max(1, resized[1]))
        # torchvision's center_crop: pad a side that is too short (the extra pixel after), else cut at round(excess / 2)
        offset = tuple(int(round((n - c) / 2.0)) if n >= c else -((c - n) // 2) for n, c in zip(resized, (H, W)))
        return _Plan(resized, offset)

    def seen_box(self, original_size, size) -> SeenBox:
        """Which box of an original of ``original_size`` (h, w) the model sees at input ``size`` (H, W)."""
        h, w = (int(v) for v in original_size)
        H, W = (int(v) for v in size)
        if (h, w) == (H, W):
            return SeenBox(0.0, 0.0, float(h), float(w), (1.0, 1.0), (h, w))
        plan = self._plan((h, w), (H, W))
        sy, sx = plan.resized[0] / h, plan.resized[1] / w
        top, left = plan.offset[0] / sy, plan.offset[1] / sx
        return SeenBox(top, left, top + H / sy, left + W / sx, (sy, sx), (h, w))

    # -- pixels -------------------------------------------------------------------------------------------
    def apply(self, images: torch.Tensor, size) -> torch.Tensor:
        """Images [..., C, h, w] (floats in [0, 1]) at ``size`` = (H, W); unchanged if already at that size."""
        import torchvision.transforms.v2.functional as TF
        from torchvision.transforms import InterpolationMode

        size = tuple(int(v) for v in size)
        if tuple(images.shape[-2:]) == size:
            return images
        plan = self._plan(images.shape[-2:], size)
        out = images
        if plan.resized != tuple(images.shape[-2:]):
            out = TF.resize(images, list(plan.resized), interpolation=InterpolationMode(self.interpolation),
                            antialias=True).clamp_(0, 1)
        (top, left), (h, w) = plan.offset, plan.resized
        pad = [max(0, -left), max(0, -top), max(0, left + size[1] - w), max(0, top + size[0] - h)]  # l, t, r, b
        if any(pad):
            fill = self.fill
            if isinstance(fill, tuple) and len(fill) != out.shape[-3]:
                fill = sum(fill) / len(fill)
            out = TF.pad(out, pad, fill=list(fill) if isinstance(fill, tuple) else fill)
            top, left = top + pad[1], left + pad[0]
        if (top, left, *out.shape[-2:]) != (0, 0, *size):
            out = TF.crop(out, top, left, size[0], size[1])
        return out


SQUASH = ResizePolicy("squash")
