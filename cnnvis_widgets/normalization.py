"""What values an image may hold where it enters, and images that are normalized already.

Engines take images in [0, 1] and apply the model's normalization themselves (``Model.normalize``). Images
normalized already (a training set whose transform ends with ``transforms.Normalize``), or holding 0-255 values
as floats, would be normalized again without a sign: other top images, other activations. So every image is
checked where it enters (:class:`~cnnvis_widgets.images.ImageSource`): NaN and infinities are refused, and so are
values more than :data:`RANGE_MARGIN` outside [0, 1]; a dataset whose transform normalizes is refused before it
is read. Images that are normalized already say so with :func:`normalized`, which reads them back to [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

# How far outside [0, 1] an image may reach before it is refused. The margin admits what resampling images in
# [0, 1] produces: bicubic interpolation (PyTorch's and torchvision's Keys kernel, a = -0.75, antialiased or not)
# overshoots by at most 0.445 (its negative lobes summed over both axes, reached by a bright 2x2 dot upscaled),
# real photos by about 0.1; this package's own resizing clamps to [0, 1]. Images normalized with ImageNet's
# statistics span about [-2.1, 2.6], and 0-255 values reach far beyond 1.5, so neither passes.
RANGE_MARGIN = 0.5


def extremes(images: torch.Tensor) -> torch.Tensor:
    """Each image's (minimum, maximum) as float [N, 2], on the images' device, in one reduction (NaN propagates)."""
    flat = images.reshape(len(images), -1)
    if flat.dtype == torch.bool or flat.shape[1] == 0:
        return torch.zeros(len(images), 2, device=images.device)
    low, high = torch.aminmax(flat, dim=1)
    return torch.stack([low, high], 1).float()


def check_extremes(extreme: torch.Tensor, first_index: int = 0) -> None:
    """Raise an error naming the first image whose (minimum, maximum) in ``extreme`` [N, 2] (from :func:`extremes`,
    numbered from ``first_index``) is NaN or infinite, or lies more than :data:`RANGE_MARGIN` outside [0, 1]."""
    low, high = extreme.cpu().double().unbind(1)
    bad = ~(torch.isfinite(low) & torch.isfinite(high))
    if bool(bad.any()):
        index = first_index + int(bad.nonzero()[0, 0])
        raise ValueError(f"Image {index} holds NaN or infinite values; images must be finite, in [0, 1]. Fix or "
                         f"drop that image (e.g. torch.nan_to_num(images).clamp(0, 1), or leave index {index} out).")
    far = (low < -RANGE_MARGIN) | (high > 1 + RANGE_MARGIN)
    if bool(far.any()):
        row = int(far.nonzero()[0, 0])
        raise ValueError(_out_of_range_message(first_index + row, float(low[row]), float(high[row])))


def check_values(images: torch.Tensor, first_index: int = 0) -> None:
    """Raise an error naming the first image of ``images`` [N, ...] (numbered from ``first_index``) that holds a
    NaN or an infinity or lies far outside [0, 1]. One reduction and one host transfer per call: call it where
    images enter (per image read, per tensor given), never inside a loop over optimization steps."""
    check_extremes(extremes(images), first_index)


def _out_of_range_message(index: int, low: float, high: float) -> str:
    normalized_hint = ("If they are normalized already (e.g. by a transforms.Normalize in the dataset's transform), "
                       "drop the Normalize, as the model applies its own (model.mean, model.std), or pass "
                       "cv.normalized(images, mean=..., std=...) with the mean and std they were normalized with.")
    scaled_hint = "If they are 0-255 values, divide them by 255 (uint8 images are divided for you)."
    hints = [normalized_hint, scaled_hint] if low < -RANGE_MARGIN else [scaled_hint, normalized_hint]
    return (f"Image {index} holds values from {low:.4g} to {high:.4g}, far outside [0, 1]: engines take images in "
            f"[0, 1] and normalize them with the model's mean and std. " + " ".join(hints))


def normalize_transform(dataset):
    """The ``Normalize`` (torchvision's, v1 or v2) in a dataset's transform, or None; found through ``Subset``s
    and composed transforms. One with mean 0 and std 1 changes nothing and is not reported."""
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    pending = [getattr(dataset, "transform", None)]
    while pending:
        transform = pending.pop()
        if type(transform).__name__ == "Normalize" and hasattr(transform, "mean") and hasattr(transform, "std"):
            if any(float(m) != 0 for m in transform.mean) or any(float(s) != 1 for s in transform.std):
                return transform
        inner = getattr(transform, "transforms", None)
        if isinstance(inner, (list, tuple)):
            pending.extend(inner)
    return None


def normalized_dataset_message(transform) -> str:
    """What to do about a dataset whose transform normalizes (``transform``, from :func:`normalize_transform`)."""
    mean, std = tuple(float(m) for m in transform.mean), tuple(float(s) for s in transform.std)
    return (f"The dataset's transform normalizes its images ({transform!r}), and the model would normalize them "
            f"again: engines take images in [0, 1] and apply the model's own mean and std. Drop the Normalize from "
            f"the transform, or pass cv.normalized(dataset, mean={mean}, std={std}), which reads the images back "
            f"to [0, 1].")


class NormalizedImages:
    """Images normalized already, ``(x - mean) / std`` of images ``x`` in [0, 1]; made by :func:`normalized`.

    Item ``i`` is image ``i`` read back to [0, 1], ``image * std + mean``, as float [C, H, W] (the target of an
    ``(image, target)`` pair is dropped); :meth:`tensor` reads a tensor or array of images back at once.
    """

    def __init__(self, images, mean: Sequence[float], std: Sequence[float]):
        if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim == 3:
            images = images[None]  # one image
        self.images = images
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if not self.mean or len(self.mean) != len(self.std) or any(s == 0 for s in self.std):
            raise ValueError(f"cv.normalized needs one mean and one non-zero std per channel (or one for all), as "
                             f"given to the Normalize that made the images; got mean={mean!r}, std={std!r}.")

    @property
    def tensor_like(self) -> bool:
        """Whether the images are one tensor or array [N, C, H, W]."""
        return isinstance(self.images, (torch.Tensor, np.ndarray))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        item = self.images[index]
        if isinstance(item, (tuple, list)) and item:
            item = item[0]  # (image, target) pairs
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(np.array(item))
        if not isinstance(item, torch.Tensor) or not item.is_floating_point():
            kind = f"a tensor of {item.dtype}" if isinstance(item, torch.Tensor) else f"a {type(item).__name__}"
            raise TypeError(f"cv.normalized reads normalized images as float tensors [C, H, W]; item {index} is "
                            f"{kind}. Images that are not normalized need no cv.normalized: pass them as they are.")
        return self._restore(item.float())

    def tensor(self) -> torch.Tensor:
        """The tensor or array of normalized images [N, C, H, W] read back to [0, 1], as one float tensor (a copy)."""
        return self._restore(torch.as_tensor(self.images).float())

    def _restore(self, image: torch.Tensor) -> torch.Tensor:
        """[..., C, H, W] (or one channel [H, W]) from normalized values back to [0, 1]."""
        channels = image.shape[-3] if image.ndim >= 3 else 1
        if len(self.mean) not in (1, channels):
            raise ValueError(f"cv.normalized got {len(self.mean)} means and stds, but the images have {channels} "
                             f"channel(s) (shape {tuple(image.shape)}): give one per channel, or one for all.")
        shape = (-1, 1, 1) if image.ndim >= 3 else (-1, 1)
        mean = torch.tensor(self.mean, dtype=image.dtype, device=image.device).view(shape)
        std = torch.tensor(self.std, dtype=image.dtype, device=image.device).view(shape)
        return image * std + mean

    def __repr__(self) -> str:
        return f"cv.normalized({type(self.images).__name__} of {len(self)} images, mean={self.mean}, std={self.std})"


def normalized(images, mean: Sequence[float], std: Sequence[float]) -> NormalizedImages:
    """Mark ``images`` as normalized already with ``mean`` and ``std`` (as ``transforms.Normalize(mean, std)`` made
    them): engines read them back to [0, 1] (``image * std + mean``) and then apply the model's normalization, so
    results, crops and pictures are those of the images in [0, 1].

    ``images``: a tensor or array [N, C, H, W] (or one [C, H, W]), a list, or a dataset whose items are normalized
    float tensors [C, H, W] or ``(image, target)`` pairs (e.g. a training set with ``Normalize`` in its transform).
    Wrong statistics show: images read back far outside [0, 1] are refused, as any image is.
    """
    return NormalizedImages(images, mean, std)


__all__ = ["RANGE_MARGIN", "NormalizedImages", "check_extremes", "check_values", "extremes", "normalize_transform",
           "normalized", "normalized_dataset_message"]
