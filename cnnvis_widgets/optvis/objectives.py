"""Objectives for activation maximization: what the synthesized images should make the network do.

Following Lucid's ``optvis.objectives`` (Olah et al. 2017, "Feature Visualization", Distill), an objective
is a small object that composes with ``+``, ``-``, unary ``-``, ``*`` and ``/``. Unlike Lucid's, every
objective here is **per image**: it maps the captured activations to a vector of shape ``[B]``, one value
per batch image. A whole layer is one optimization with one image per unit, the loss is
``-objective.sum()``, and so each image's gradient depends only on that image (except for
:func:`diversity`, which couples the images of one unit on purpose).

A ``unit`` argument is an int (the same unit for every image) or a sequence / tensor of shape ``[B]``
(image ``b`` optimizes unit ``unit[b]``).
"""

from __future__ import annotations

import numbers
from typing import Callable, Iterable

import torch

OUTPUT = "<output>"  # activation key of the model's final output
IMAGE = "<image>"  # activation key of the parameterized image ([B, C, H, W] in [0, 1], before transforms)

Acts = dict[str, torch.Tensor]


class Objective:
    """A per-image objective: ``objective(acts) -> Tensor[B]``.

    Args:
        fn: maps the dict of captured activations (layer name -> tensor [B, ...]) to a tensor [B].
        layers: the layer names ``fn`` reads (the engine hooks exactly these).
        name: a readable description, shown in ``repr``.
    """

    def __init__(self, fn: Callable[[Acts], torch.Tensor], layers: Iterable[str], name: str):
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    # -- composition ----------------------------------------------------------------------------------
    def _combine(self, other, op, symbol: str) -> "Objective":
        if isinstance(other, Objective):
            return Objective(lambda acts: op(self(acts), other(acts)), self.layers + other.layers,
                             f"({self.name} {symbol} {other.name})")
        if isinstance(other, numbers.Number):
            return Objective(lambda acts: op(self(acts), other), self.layers, f"({self.name} {symbol} {other})")
        return NotImplemented

    def __add__(self, other):
        return self._combine(other, lambda a, b: a + b, "+")

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self._combine(other, lambda a, b: a - b, "-")

    def __rsub__(self, other):
        return (-self) + other

    def __neg__(self):
        return Objective(lambda acts: -self(acts), self.layers, f"-{self.name}")

    def __mul__(self, other):
        return self._combine(other, lambda a, b: a * b, "*")

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        if not isinstance(other, numbers.Number):
            return NotImplemented
        return self._combine(other, lambda a, b: a / b, "/")


class _Units:
    """A unit index shared by all images, or one per image; moved to the activations' device once."""

    def __init__(self, unit):
        if isinstance(unit, numbers.Integral):
            self.scalar, self.tensor = int(unit), None
        else:
            self.scalar, self.tensor = None, torch.as_tensor(unit, dtype=torch.long).reshape(-1)
        self._cache: dict[torch.device, torch.Tensor] = {}

    def select(self, a: torch.Tensor) -> torch.Tensor:
        """``a[b, unit[b]]`` for a tensor [B, C]."""
        if self.scalar is not None:
            return a[:, self.scalar]
        index = self._cache.get(a.device)
        if index is None:
            index = self._cache.setdefault(a.device, self.tensor.to(a.device))
        if index.numel() != a.shape[0]:
            raise ValueError(f"The objective has {index.numel()} per-image units but the batch has "
                             f"{a.shape[0]} images; give one unit per image or a single int.")
        return a.gather(1, index[:, None])[:, 0]

    def __repr__(self) -> str:
        return str(self.scalar) if self.scalar is not None else f"<{self.tensor.numel()} units>"


def _act(acts: Acts, layer: str) -> torch.Tensor:
    a = acts[layer]
    return a[0] if isinstance(a, (tuple, list)) else a


def channel(layer: str, unit) -> Objective:
    """The spatial mean of channel ``unit`` of ``layer`` (Olah et al. 2017, Fig. "channel").

    On a layer without spatial dimensions (a linear layer) this is the unit's value.
    """
    units = _Units(unit)

    def fn(acts):
        a = _act(acts, layer)
        return units.select(a.flatten(2).mean(2) if a.dim() > 2 else a)

    return Objective(fn, [layer], f"channel({layer!r}, {units})")


def neuron(layer: str, unit, y: int | None = None, x: int | None = None) -> Objective:
    """One spatial position (default: the centre, ``H // 2, W // 2``) of channel ``unit`` of ``layer``.

    This is the "neuron" of Olah et al. 2017 and the single unit of Erhan et al. 2009 / Yosinski et al.
    2015. On a linear layer it is the unit's value.
    """
    units = _Units(unit)

    def fn(acts):
        a = _act(acts, layer)
        if a.dim() == 4:
            h, w = a.shape[-2:]
            a = a[:, :, h // 2 if y is None else y, w // 2 if x is None else x]
        return units.select(a)

    return Objective(fn, [layer], f"neuron({layer!r}, {units}, y={y}, x={x})")


def class_logit(unit, layer: str | None = None) -> Objective:
    """The unnormalized class score ``S_c`` (Simonyan et al. 2014, Eq. 1), not the softmax probability.

    ``layer=None`` reads the model's final output; name a layer (e.g. ``"fc8"``) to read that one.
    """
    key = OUTPUT if layer is None else layer
    units = _Units(unit)

    def fn(acts):
        a = _act(acts, key)
        return units.select(a.flatten(2).mean(2) if a.dim() > 2 else a)

    return Objective(fn, [key], f"class_logit({units}, layer={layer!r})")


def direction(layer: str, vector) -> Objective:
    """The dot product of a channel-space ``vector`` with the activation at every position, averaged.

    Olah et al. 2017 ("direction"); ``vector`` has shape [C] (all images) or [B, C] (one per image).
    """
    vector = torch.as_tensor(vector, dtype=torch.float32)
    cache: dict[tuple, torch.Tensor] = {}

    def fn(acts):
        a = _act(acts, layer)
        key = (a.device, a.dtype)
        v = cache.get(key)
        if v is None:
            v = cache.setdefault(key, vector.to(a.device, a.dtype))
        v = v.expand(a.shape[0], -1) if v.dim() == 1 else v
        return torch.einsum("bc...,bc->b...", a, v).flatten(1).mean(1)

    return Objective(fn, [layer], f"direction({layer!r})")


def deep_dream(layer: str) -> Objective:
    """The mean squared activation of ``layer`` (Mordvintsev et al. 2015, "DeepDream"; as in Lucid)."""

    def fn(acts):
        return _act(acts, layer).pow(2).flatten(1).mean(1)

    return Objective(fn, [layer], f"deep_dream({layer!r})")


def gram_cosine(a: torch.Tensor, n: int) -> torch.Tensor:
    """For activations [B, C, ...] in groups of ``n`` adjacent images: the cosine similarities [B/n, n, n]
    between the images' Gram matrices (each Gram matrix L2-normalized as a whole, as in Lucid)."""
    flat = a.flatten(2)  # [B, C, L]
    grams = flat @ flat.transpose(1, 2)  # [B, C, C]
    grams = grams.flatten(1)
    grams = grams / grams.norm(dim=1, keepdim=True).clamp_min(1e-10)
    grams = grams.reshape(-1, n, grams.shape[1])
    return grams @ grams.transpose(1, 2)


def diversity(layer: str, weight: float = 1.0, n: int = 2) -> Objective:
    """Diversity among the ``n`` images of each unit (Olah et al. 2017, "Diversity"; Lucid's
    ``objectives.diversity``): ``-weight`` times the image's summed cosine similarity to the other
    images of its group, divided by ``n``, so that a group's values add up to ``-weight`` times
    Lucid's diversity term. The images of one unit must be adjacent in the batch, ``n`` per unit.
    Lucid's notebooks use a weight of about 1e2.
    """
    if n < 2:
        raise ValueError("diversity needs at least 2 images per unit (n_per_unit >= 2).")

    def fn(acts):
        a = _act(acts, layer)
        if a.shape[0] % n:
            raise ValueError(f"diversity: the batch of {a.shape[0]} images is not made of groups of {n}.")
        sim = gram_cosine(a if a.dim() > 2 else a[:, :, None], n)
        others = sim.sum(2) - sim.diagonal(dim1=1, dim2=2)  # [G, n]
        return -weight * others.reshape(-1) / n

    return Objective(fn, [layer], f"diversity({layer!r}, {weight}, n={n})")


def as_objective(spec, layer: str | None, units: torch.Tensor) -> Objective:
    """Build the objective the engine optimizes from a name or a callable ``fn(units) -> Objective``."""
    if isinstance(spec, Objective):
        return spec
    if callable(spec):
        obj = spec(units)
        if not isinstance(obj, Objective):
            raise TypeError(f"objective callable returned {type(obj).__name__}; it must return an Objective, "
                            "e.g. lambda units: channel('conv5', units) - 0.1 * deep_dream('conv4').")
        return obj
    names = {"channel": channel, "neuron": neuron}
    if spec in names:
        if layer is None:
            raise ValueError(f"objective={spec!r} needs a layer name.")
        return names[spec](layer, units)
    if spec in ("logit", "class", "class_logit"):
        return class_logit(units, layer)
    raise ValueError(f"Unknown objective {spec!r}: use 'channel', 'neuron', 'logit' (or 'class'), or a callable "
                     "taking the per-image units and returning an Objective.")


__all__ = ["Objective", "channel", "neuron", "class_logit", "direction", "deep_dream", "diversity", "gram_cosine",
           "as_objective"]
