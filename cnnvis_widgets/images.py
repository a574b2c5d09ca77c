"""Image sources: every way a user can hand images to an engine, seen as one indexed collection.

Engines take images in [0, 1] with the model's channel count C (3 for RGB, 1 for grayscale, 4 or more
for RGBA or multispectral inputs): a tensor [N, C, H, W] (or one [C, H, W]), a numpy array, a PIL image, a
path, a list of any of these, or a dataset object (``Broden``, any ``torch.utils.data.Dataset`` whose items
are images or ``(image, target)`` pairs). ``ImageSource`` streams them in batches at the model's input size
so memory stays bounded whatever the dataset's length. How an image of another size is brought to that size
(centre crop, squash or letterbox) is the resize policy ``fit`` (:mod:`cnnvis_widgets.resizing`);
``ImageSource.seen_box`` says which region of each original the model saw.

Channels are matched to the model where that is unambiguous, and refused otherwise
(:func:`convert_channels`): PIL images and files are read in the model's mode (``"L"`` for one channel,
``"RGB"`` for three, ``"RGBA"`` for four when the file has an alpha band); a one-channel array becomes RGB
by repetition; an RGB array becomes grayscale by ITU-R BT.601 luma (``0.299 R + 0.587 G + 0.114 B``, what
PIL's ``convert("L")`` computes). Images holding NaN or infinite values are refused where they enter, and
so are images far outside [0, 1] (images normalized already, 0-255 values), which the model's normalization
would silently turn into other inputs (:mod:`cnnvis_widgets.normalization`); images normalized already say so
with :func:`~cnnvis_widgets.normalization.normalized`, which reads them back to [0, 1].

Images leave the engines the same way; ``to_hwc_uint8``, ``png_bytes`` and ``draw_box`` turn them into the
bytes that widgets and reports show: one channel as a grayscale PNG, three as RGB, and other counts as
their first three channels in RGB (two channels as red and green), see :func:`display_array`.
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

from .normalization import (NormalizedImages, check_extremes, check_values, extremes, normalize_transform,
                            normalized_dataset_message)
from .resizing import SQUASH, ResizePolicy, SeenBox

LUMA_BT601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights of R, G, B (PIL's convert("L"))


def _plural(channels: int) -> str:
    return f"{channels} channel" + ("" if channels == 1 else "s")


def convert_channels(images: torch.Tensor, channels: int, what: str = "images") -> torch.Tensor:
    """Images [N, c, H, W] → [N, ``channels``, H, W], where the conversion is unambiguous.

    Same count: unchanged. 1 → 3: the grey channel repeated (a view, no copy). 3 → 1: ITU-R BT.601 luma
    ``0.299 R + 0.587 G + 0.114 B``. Anything else (e.g. RGB images for a 4-channel model) raises an error
    that names both shapes and what to pass instead.
    """
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        weights = torch.tensor(LUMA_BT601, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    shape = "x".join(map(str, images.shape[1:]))
    if c == 4 and channels == 3:
        hint = "If the fourth channel is alpha, drop it (images[:, :3]); else wrap a model that takes 4 channels."
    elif c == 3 and channels == 4:
        hint = ("Add the fourth channel yourself, e.g. torch.cat([rgb, extra], 1) with extra [N, 1, H, W] "
                "(an alpha of ones for an RGBA model).")
    else:
        hint = f"Convert them to {_plural(channels)} yourself."
    raise ValueError(f"The model takes images with {_plural(channels)} ([N, {channels}, H, W]), but {what} "
                     f"have {_plural(c)} ({shape} per image); only 1 -> 3 (repetition) and 3 -> 1 (luma) are "
                     f"converted. {hint} Pass images [N, {channels}, H, W] in [0, 1].")


def _pil_array(image: Image.Image, channels: int) -> np.ndarray:
    """A PIL image read in the mode a ``channels``-channel model needs, as a uint8 or float32 array."""
    mode = image.mode
    if mode in ("I", "F"):
        kind = "32-bit integers" if mode == "I" else "floats"
        raise ValueError(f"Cannot read a PIL image of mode {mode!r} (unscaled {kind}) as an image in [0, 1]; convert it to a float array scaled to [0, 1] and pass that "
                         "(np.asarray(image) / its maximum).")
    if mode.startswith("I;16"):  # 16-bit grayscale (medical, microscopy): keep its precision
        if channels not in (1, 3):
            raise ValueError(f"A 16-bit grayscale image (mode {mode!r}) has one channel; the model takes "
                             f"{_plural(channels)}. Pass a tensor [{channels}, H, W] in [0, 1].")
        gray = np.asarray(image).astype(np.float32) / 65535.0
        return gray[..., None] if channels == 1 else np.repeat(gray[..., None], 3, axis=-1)
    if channels == 1:
        return np.asarray(image.convert("L"))[..., None]
    if channels == 3:
        return np.asarray(image.convert("RGB"))
    if channels == 4 and "A" in image.getbands():
        return np.asarray(image.convert("RGBA"))
    bands = "".join(image.getbands())
    hint = " (one with an alpha band reads as RGBA)" if channels == 4 else ""
    raise ValueError(f"Cannot read a PIL image of mode {mode!r} ({len(bands)} band(s) {bands}) for a model that takes "
                     f"{_plural(channels)}: image files are read as L (1 channel), RGB (3) or RGBA (4){hint}. Pass "
                     f"a tensor or array [{channels}, H, W] in [0, 1] instead.")


def _channels_last(shape: Sequence[int], channels: int) -> bool:
    """Whether a 3-D image of ``shape`` is laid out [H, W, C] rather than [C, H, W]."""
    counts = {1, 3, 4, channels}
    return shape[0] not in counts and shape[-1] in counts


def to_tensor(image, channels: int = 3) -> torch.Tensor:
    """One image (PIL, path, uint8/float array or tensor, HWC or CHW) → float tensor [channels, H, W] in [0, 1].

    Files and PIL images are read in the model's mode (see the module docstring); arrays and tensors with
    another channel count go through :func:`convert_channels` (an [H, W, 4] array given to a 3-channel model
    is taken as RGBA and loses its alpha, as PIL's ``convert("RGB")`` does). NaN or infinite values raise.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"Image file {path} does not exist; check the path.")
        with Image.open(path) as im:
            image = _pil_array(im, channels)
    if isinstance(image, Image.Image):
        image = _pil_array(image, channels)
    if isinstance(image, np.ndarray):
        is_uint8 = image.dtype == np.uint8
        image = torch.from_numpy(np.ascontiguousarray(image) if image.flags.writeable else image.copy())
        if is_uint8:
            image = image.float().div_(255)
    if isinstance(image, (tuple, list)) and image and isinstance(image[0], (torch.Tensor, Image.Image, np.ndarray)):
        image = image[0]  # (image, target) pairs from a dataset
        return to_tensor(image, channels)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"Cannot read an image from {type(image).__name__}; pass a tensor [{channels}, H, W] in "
                        "[0, 1], a numpy array, a PIL image or a file path.")
    if image.dtype == torch.uint8:
        image = image.float().div_(255)
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.ndim == 3 and _channels_last(image.shape, channels):
        if channels == 3 and image.shape[-1] == 4:
            image = image[..., :3]  # RGBA -> RGB
        image = image.permute(2, 0, 1)
    if image.ndim != 3:
        raise ValueError(f"Expected an image [{channels}, H, W] or [H, W, {channels}], got shape {tuple(image.shape)}.")
    return convert_channels(image[None], channels, "the image")[0].float()


def resize(images: torch.Tensor, size: tuple[int, int], fit: ResizePolicy | str = SQUASH) -> torch.Tensor:
    """[N, 3, h, w] at ``size`` = (H, W) under the resize policy ``fit`` (default: an anti-aliased bilinear
    resize); a no-op at that size. Every image an :class:`ImageSource` gives goes through here."""
    return ResizePolicy.of(fit).apply(images, size)


class ImageSource:
    """An indexed collection of images, read in batches at a fixed size.

    Args:
        images: see the module docstring.
        size: (H, W) every image is resized to (the model's input size).
        channels: the channel count every image is read with (the model's, ``Model.channels``); images with
            another count are converted where unambiguous (:func:`convert_channels`), else refused.
        fit: how an image of another size gets there: ``"squash"`` (default: resize to (H, W)), ``"crop"``
            (shorter side scaled, centre cut), ``"pad"`` (letterbox), or a
            :class:`~cnnvis_widgets.resizing.ResizePolicy` (engines pass the model's, ``model.fit``). An image
            already at ``size`` is used as it is.

    A tensor or array is checked for NaN and infinite values and for values far outside [0, 1] here, once; images
    of a list or dataset are checked as they are read, one at a time, and a dataset whose transform normalizes
    (torchvision's ``Normalize``) is refused at once. Either way the error names the image and what to pass.
    """

    def __init__(self, images, size: tuple[int, int], channels: int = 3, fit: ResizePolicy | str = SQUASH):
        self.size = tuple(int(s) for s in size)
        self.fit = ResizePolicy.of(fit)
        self.channels = int(channels)
        if self.channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}.")
        self._tensor: torch.Tensor | None = None
        self._items: Sequence | None = None
        if isinstance(images, ImageSource):  # another view of the same images, at this size
            self._tensor, self._items = images._tensor, images._items
            if self._tensor is not None:
                self._tensor = convert_channels(self._tensor, self.channels)
            return
        if isinstance(images, NormalizedImages) and images.tensor_like:
            images = images.tensor()  # read back to [0, 1] at once; checked below like any tensor
        if isinstance(images, (Image.Image, str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]  # one image (a 3-D array is one image, HWC or CHW, like a 3-D tensor)
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = torch.from_numpy(images)
            if _channels_last(images.shape[1:], self.channels):
                images = images.permute(0, 3, 1, 2)
        if isinstance(images, torch.Tensor):
            if images.ndim == 3:
                images = images.unsqueeze(0)
            if images.ndim != 4:
                raise ValueError(f"Expected images [N, {self.channels}, H, W] in [0, 1], got shape "
                                 f"{tuple(images.shape)}.")
            if images.dtype == torch.uint8:
                images = images.float().div(255)
            # NaN, infinities and values far outside [0, 1]: per-image extremes, 256 images at a time (bounded
            # temporaries), gathered on the tensor's device and brought to the host once for the whole tensor.
            if len(images):
                check_extremes(torch.cat([extremes(images[i:i + 256]) for i in range(0, len(images), 256)]))
            self._tensor = convert_channels(images, self.channels)
        elif hasattr(images, "__len__") and hasattr(images, "__getitem__"):
            normalize = normalize_transform(images)
            if normalize is not None:
                raise ValueError(normalized_dataset_message(normalize))
            self._items = images
        else:
            raise TypeError(f"Cannot use {type(images).__name__} as images: pass a tensor [N, {self.channels}, H, W], "
                            "a list of images or paths, or a dataset object with __len__ and __getitem__.")
        if len(self) == 0:
            raise ValueError("The image collection is empty; pass at least one image.")

    def __len__(self) -> int:
        return len(self._tensor) if self._tensor is not None else len(self._items)

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as float [C, H, W] at the source's size (on the CPU)."""
        if self._tensor is not None:
            return resize(self._tensor[index:index + 1].float(), self.size, self.fit)[0].cpu()
        image = to_tensor(self._items[index], self.channels)
        check_values(image[None], index)  # on the host, as the loader reads each image: no device sync
        return resize(image.unsqueeze(0), self.size, self.fit)[0]

    def images(self, indices: Sequence[int]) -> torch.Tensor:
        """Images at ``indices`` as float [len(indices), C, H, W]."""
        if self._tensor is not None:
            return resize(self._tensor[torch.as_tensor(list(indices), dtype=torch.long)].float(), self.size,
                          self.fit).cpu()
        if not len(indices):
            return torch.empty(0, self.channels, *self.size)
        return torch.stack([self.image(int(i)) for i in indices])

    def batches(self, batch_size: int, num_workers: int = 0, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(start_index, images [B, C, H, W])`` in dataset order, ``batch_size`` at a time, over
        images ``start`` to ``stop`` (default: all)."""
        stop = len(self) if stop is None else min(int(stop), len(self))
        if self._tensor is not None:
            for first in range(start, stop, batch_size):
                yield first, resize(self._tensor[first:min(first + batch_size, stop)].float(), self.size, self.fit)
            return
        if start >= stop:
            return
        dataset = _Indexed(self)
        if (start, stop) != (0, len(self)):
            dataset = torch.utils.data.Subset(dataset, range(start, stop))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        first = start
        for batch in loader:
            yield first, batch
            first += len(batch)

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
    """A [C, H, W] or [H, W, C] array (uint8, or float in [0, 1]) or tensor, or a 2-D grey one, as uint8
    [H, W, C], every channel kept (C = 1 stays one channel; :func:`display_array` picks what is shown)."""
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    elif array.ndim == 3:
        first, last = array.shape[0], array.shape[-1]
        if (first in (1, 3) and last not in (1, 3)) or (
                not (last in (1, 3) and first not in (1, 3)) and first <= last):
            array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


def display_array(image) -> np.ndarray:
    """What a widget shows of an image: uint8 [H, W] for one channel (a grayscale picture), [H, W, 3] for
    three; for other counts a false-colour RGB view: two channels as red and green (blue 0), four or more as
    their first three channels (the rest are not shown: for an RGBA image, the alpha; pass
    ``image[i:i + 3]`` or one channel ``image[i]`` to see others)."""
    array = to_hwc_uint8(image)
    c = array.shape[-1]
    if c == 1:
        return array[..., 0]
    if c == 2:
        return np.concatenate([array, np.zeros_like(array[..., :1])], -1)
    return np.ascontiguousarray(array[..., :3])


def png_bytes(image) -> bytes:
    """Encode an image as PNG (lossless, deterministic): grayscale (``"L"``) for one channel, RGB otherwise
    (see :func:`display_array`)."""
    buffer = io.BytesIO()
    Image.fromarray(display_array(image)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def draw_box(image, box, color=(255, 0, 255), scale: int = 1) -> np.ndarray:
    """The image (upscaled ``scale`` times) with the half-open box (top, left, bottom, right) outlined, as
    uint8 [H, W, 3] (a grayscale image turns RGB so that the box keeps its colour)."""
    im = Image.fromarray(display_array(image)).convert("RGB")
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
    im = Image.fromarray(display_array(image)).convert("RGB")  # coloured boxes on grey images too
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
