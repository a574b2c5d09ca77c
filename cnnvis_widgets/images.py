"""Image sources: every way a user can hand images to an engine, seen as one indexed collection.

Engines take RGB images in [0, 1]: a tensor [N, 3, H, W] (or one [3, H, W]), a numpy array, a PIL image, a
path, a list of any of these, or a dataset object (``Broden``, any ``torch.utils.data.Dataset`` whose items
are images or ``(image, target)`` pairs). ``ImageSource`` streams them in batches at the model's input size
so memory stays bounded whatever the dataset's length. How an image of another size is brought to that size
(centre crop, squash or letterbox) is the resize policy ``fit`` (:mod:`cnnvis_widgets.resizing`);
``ImageSource.seen_box`` says which region of each original the model saw.

Images leave the engines the same way; ``to_hwc_uint8``, ``png_bytes`` and ``draw_box`` turn them into the
bytes that widgets and reports show.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .resizing import SQUASH, ResizePolicy, SeenBox


def to_tensor(image) -> torch.Tensor:
    """One image (PIL, path, uint8/float array or tensor, HWC or CHW) → float tensor [3, H, W] in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"Image file {path} does not exist; check the path.")
        with Image.open(path) as im:
            image = im.convert("RGB")
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        is_uint8 = image.dtype == np.uint8
        image = torch.from_numpy(np.ascontiguousarray(image) if image.flags.writeable else image.copy())
        if is_uint8:
            image = image.float().div_(255)
    if isinstance(image, (tuple, list)) and image and isinstance(image[0], (torch.Tensor, Image.Image, np.ndarray)):
        image = image[0]  # (image, target) pairs from a dataset
        return to_tensor(image)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"Cannot read an image from {type(image).__name__}; pass a tensor [3, H, W] in [0, 1], "
                        "a numpy array, a PIL image or a file path.")
    if image.dtype == torch.uint8:
        image = image.float().div_(255)
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim == 3 and image.shape[0] not in (1, 3) and image.shape[-1] in (1, 3, 4):
        image = image[..., :3].permute(2, 0, 1)  # HWC
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"Expected an image [3, H, W] or [H, W, 3], got shape {tuple(image.shape)}.")
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.float()


def resize(images: torch.Tensor, size: tuple[int, int], fit: ResizePolicy | str = SQUASH) -> torch.Tensor:
    """[N, 3, h, w] at ``size`` = (H, W) under the resize policy ``fit`` (default: an anti-aliased bilinear
    resize); a no-op at that size. Every image an :class:`ImageSource` gives goes through here."""
    return ResizePolicy.of(fit).apply(images, size)


class ImageSource:
    """An indexed collection of images, read in batches at a fixed size.

    Args:
        images: see the module docstring.
        size: (H, W) every image is resized to (the model's input size).
        fit: how an image of another size gets there: ``"squash"`` (default: resize to (H, W)), ``"crop"``
            (shorter side scaled, centre cut), ``"pad"`` (letterbox), or a
            :class:`~cnnvis_widgets.resizing.ResizePolicy` (engines pass the model's, ``model.fit``). An image
            already at ``size`` is used as it is.
    """

    def __init__(self, images, size: tuple[int, int], fit: ResizePolicy | str = SQUASH):
        self.size = tuple(int(s) for s in size)
        self.fit = ResizePolicy.of(fit)
        self._tensor: torch.Tensor | None = None
        self._items: Sequence | None = None
        if isinstance(images, ImageSource):  # another view of the same images, at this size
            self._tensor, self._items = images._tensor, images._items
            return
        if isinstance(images, (Image.Image, str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]  # one image (a 3-D array is one image, HWC or CHW, like a 3-D tensor)
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = torch.from_numpy(images)
            if images.shape[1] not in (1, 3):
                images = images.permute(0, 3, 1, 2)
        if isinstance(images, torch.Tensor):
            if images.ndim == 3:
                images = images.unsqueeze(0)
            if images.ndim != 4 or images.shape[1] != 3:
                raise ValueError(f"Expected images [N, 3, H, W] in [0, 1], got shape {tuple(images.shape)}.")
            if images.dtype == torch.uint8:
                images = images.float().div(255)
            self._tensor = images
        elif hasattr(images, "__len__") and hasattr(images, "__getitem__"):
            self._items = images
        else:
            raise TypeError(f"Cannot use {type(images).__name__} as images: pass a tensor [N, 3, H, W], a list of "
                            "images or paths, or a dataset object with __len__ and __getitem__.")
        if len(self) == 0:
            raise ValueError("The image collection is empty; pass at least one image.")

    def __len__(self) -> int:
        return len(self._tensor) if self._tensor is not None else len(self._items)

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as float [3, H, W] at the source's size (on the CPU)."""
        if self._tensor is not None:
            return resize(self._tensor[index:index + 1].float(), self.size, self.fit)[0].cpu()
        return resize(to_tensor(self._items[index]).unsqueeze(0), self.size, self.fit)[0]

    def images(self, indices: Sequence[int]) -> torch.Tensor:
        """Images at ``indices`` as float [len(indices), 3, H, W]."""
        if self._tensor is not None:
            return resize(self._tensor[torch.as_tensor(list(indices), dtype=torch.long)].float(), self.size,
                          self.fit).cpu()
        return torch.stack([self.image(int(i)) for i in indices]) if len(indices) else torch.empty(0, 3, *self.size)

    def batches(self, batch_size: int, num_workers: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start_index, images [B, 3, H, W])`` in dataset order, ``batch_size`` at a time."""
        if self._tensor is not None:
            for start in range(0, len(self), batch_size):
                yield start, resize(self._tensor[start:start + batch_size].float(), self.size, self.fit)
            return
        loader = torch.utils.data.DataLoader(
            _Indexed(self), batch_size=batch_size, shuffle=False, num_workers=num_workers,
        )
        start = 0
        for batch in loader:
            yield start, batch
            start += len(batch)

    def original(self, index: int) -> torch.Tensor:
        """Image ``index`` as given, before resizing: float [3, h, w] on the CPU."""
        if self._tensor is not None:
            return self._tensor[index].float().cpu()
        return to_tensor(self._items[index])

    def seen_box(self, index: int) -> SeenBox:
        """Where the image the model sees lies in original image ``index``: the box (top, left, bottom, right) in
        original pixels and the scale. Crops and positions in results refer to the seen image; this maps
        them back (``seen_box(i).to_original(box)``)."""
        size = self._tensor.shape[-2:] if self._tensor is not None else self.original(index).shape[-2:]
        return self.fit.seen_box(tuple(size), self.size)


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, source: ImageSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.source.image(index)


def to_hwc_uint8(image) -> np.ndarray:
    """A [3, H, W] or [H, W, 3] array (uint8, or float in [0, 1]) or tensor as uint8 [H, W, 3]."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def png_bytes(image) -> bytes:
    """Encode an image as PNG (lossless, deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(to_hwc_uint8(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def draw_box(image, box, color=(255, 0, 255), scale: int = 1) -> np.ndarray:
    """The image (upscaled ``scale`` times) with the half-open box (top, left, bottom, right) outlined."""
    im = Image.fromarray(to_hwc_uint8(image))
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    top, left, bottom, right = (int(v) * scale for v in box)
    ImageDraw.Draw(im).rectangle([left, top, right - 1, bottom - 1], outline=color, width=max(1, scale))
    return np.asarray(im)


def framed_picture(image, boxes, side: int = 192, dim_outside=None) -> np.ndarray:
    """The image scaled for display, with boxes outlined: uint8 [h', w', 3].

    An image smaller than ``side`` is upscaled by a whole factor (nearest, pixels stay sharp), a larger one
    downscaled (antialiased) so that its longer side is ``side``. ``boxes`` are ``(box, colour)`` pairs, each box a
    half-open (top, left, bottom, right) in image pixels (floats; the parts past the image are not drawn).
    Outside the box ``dim_outside``, if given, the picture is darkened by half.
    """
    im = Image.fromarray(to_hwc_uint8(image))
    factor = side / max(im.width, im.height)
    factor = float(math.floor(factor)) if factor >= 1 else factor
    if factor != 1:
        size = (max(1, round(im.width * factor)), max(1, round(im.height * factor)))
        im = im.resize(size, Image.NEAREST if factor > 1 else Image.BILINEAR, reducing_gap=None if factor > 1 else 3.0)
    width = max(1, int(factor))

    def scaled(box):
        return tuple(round(float(v) * factor) for v in box)

    if dim_outside is not None:
        top, left, bottom, right = scaled(dim_outside)
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, im.height), min(right, im.width)
        dimmed = Image.eval(im, lambda v: v // 2)
        if bottom > top and right > left:
            dimmed.paste(im.crop((left, top, right, bottom)), (left, top))
        im = dimmed
    draw = ImageDraw.Draw(im)
    for box, colour in boxes:
        top, left, bottom, right = scaled(box)
        if bottom > top and right > left:
            draw.rectangle([left, top, right - 1, bottom - 1], outline=tuple(colour), width=width)
    return np.asarray(im)
