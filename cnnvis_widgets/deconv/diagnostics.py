"""First-layer filter diagnostics: dead filters and aliasing (Zeiler & Fergus 2014, §4.1 and Fig. 6).

Zeiler & Fergus found two problems in AlexNet's first layer by looking at it: filters that are "a mix of
extremely high and low frequency information, with little coverage of the mid frequencies", some of them
dead, and "aliasing artifacts caused by the large stride 4 used in the 1st layer convolutions", visible in
the second layer's projections. Their fix (ZFNet): 7x7 filters instead of 11x11 and stride 2 instead of 4.
This module turns what they saw into numbers per filter:

- ``max_activation``: the filter's largest response over the dataset; ``<= 0`` means its ReLU never fires
  (a dead filter).
- ``weight_norm`` (relative to the layer's median) and ``spatial_contrast`` (the share of the filter's
  weight energy that is not its per-channel mean): near zero means near-constant weights ("flat").
- ``high_frequency``: the share of the filter's spectral energy above half the Nyquist frequency (0.25
  cycles per pixel, radially); white noise gives about 0.8, smooth oriented edges far less.
- ``checkerboard``, per unit of the second conv layer: spectral energy of its top images' DeconvNet
  projections at the frequencies of the first layer's sampling grid (multiples of 1/stride: the transposed
  strided filtering lays copies of the first-layer filters on that grid), as a ratio to what a spectrum
  without such peaks would put there (1 = no excess).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..model import Model
from .top_images import TopActivations, projection_crops, top_activations

# Flags shown in the gallery, and the thresholds that raise them.
FLAT_CONTRAST = 0.05  # spatial_contrast below this: the filter is (almost) constant over space
FLAT_NORM = 0.05  # weight_norm below this share of the layer's median: the filter has (almost) vanished
HIGH_FREQUENCY = 0.75  # share of energy above half Nyquist; white noise: ~0.8
CHECKERBOARD = 2.0  # excess energy on the stride's frequency lattice


@dataclass
class FilterDiagnostics:
    """Per-filter numbers for the first conv layer and per-unit aliasing for the second; see the module doc.

    ``top_first`` and ``top_second`` are the two layers' top activations, flagged (``meta["flags"]``), the
    second with DeconvNet projections; display the object (or pass them to :class:`NeuronGallery`) to see
    the flags on the tiles.
    """

    layer: str
    second_layer: str
    stride: int
    max_activation: np.ndarray
    weight_norm: np.ndarray
    spatial_contrast: np.ndarray
    high_frequency: np.ndarray
    checkerboard: np.ndarray
    top_first: TopActivations = field(repr=False)
    top_second: TopActivations = field(repr=False)

    @property
    def dead(self) -> np.ndarray:
        """Filters whose ReLU never fires on the dataset."""
        return self.max_activation <= 0

    @property
    def flat(self) -> np.ndarray:
        """Filters with (near-)constant or vanished weights."""
        return (self.spatial_contrast < FLAT_CONTRAST) | (self.weight_norm < FLAT_NORM)

    @property
    def noisy(self) -> np.ndarray:
        """Filters whose energy is mostly at high spatial frequencies."""
        return self.high_frequency > HIGH_FREQUENCY

    @property
    def aliased(self) -> np.ndarray:
        """Second-layer units whose projections show the stride's checkerboard."""
        return self.checkerboard > CHECKERBOARD

    def flags(self) -> dict[str, dict[str, list[str]]]:
        """``{layer: {unit: [flag, ...]}}`` for flagged units only."""
        first: dict[str, list[str]] = {}
        for name, mask in (("dead", self.dead), ("flat", self.flat), ("high-freq", self.noisy)):
            for unit in np.flatnonzero(mask):
                first.setdefault(str(unit), []).append(name)
        second = {str(u): ["checkerboard"] for u in np.flatnonzero(self.aliased)}
        return {self.layer: first, self.second_layer: second}

    def summary(self) -> dict[str, float]:
        """Layer-level figures: counts of flagged filters, and medians."""
        return {
            "filters": int(len(self.max_activation)), "dead": int(self.dead.sum()), "flat": int(self.flat.sum()),
            "high_frequency": int(self.noisy.sum()),
            "median_high_frequency": float(np.median(self.high_frequency)),
            "median_checkerboard": float(np.median(self.checkerboard)),
            "aliased_second_layer_units": int(self.aliased.sum()),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (f"FilterDiagnostics({self.layer}: {s['filters']} filters, {s['dead']} dead, {s['flat']} flat, "
                f"{s['high_frequency']} high-frequency (median share {s['median_high_frequency']:.2f}); "
                f"{self.second_layer} checkerboard median {s['median_checkerboard']:.2f}, "
                f"{s['aliased_second_layer_units']} units aliased; stride {self.stride})")


def high_frequency_share(weights: torch.Tensor) -> np.ndarray:
    """Share of each filter's non-DC spectral energy above 0.25 cycles/pixel (radially).

    ``weights``: [filters, channels, kh, kw]; the DFT is taken on the kernel's own grid and the channels'
    power spectra are summed. A constant filter has none, a checkerboard nearly all, white noise about 0.8.
    """
    w = weights.detach().float().cpu()
    kh, kw = w.shape[-2:]
    power = torch.fft.fft2(w).abs().square().sum(1)  # [filters, kh, kw]
    radius = (torch.fft.fftfreq(kh)[:, None].square() + torch.fft.fftfreq(kw)[None, :].square()).sqrt()
    total = power.sum((-2, -1)) - power[:, 0, 0]
    return (power[:, radius > 0.25].sum(-1) / total.clamp_min(1e-30)).numpy()


def checkerboard_index(projections: torch.Tensor, stride: int) -> np.ndarray:
    """Excess spectral energy of each image on the lattice of frequencies (m/stride, n/stride), DC excluded.

    ``projections``: [N, C, H, W]. The power spectrum (channels summed) is read at the lattice bins (and
    their immediate neighbours, since the pattern is windowed by the receptive field); the share of the
    non-DC energy found there is divided by the share of bins they are, so a spectrum without peaks there
    gives about 1.
    """
    p = projections.detach().float().cpu()
    p = p - p.mean((-2, -1), keepdim=True)
    h, w = p.shape[-2:]
    power = torch.fft.fft2(p).abs().square().sum(1)  # [N, H, W]
    lattice = torch.zeros(h, w, dtype=torch.bool)
    if stride > 1:
        rows = {round(m * h / stride) % h for m in range(stride)}
        cols = {round(m * w / stride) % w for m in range(stride)}
        for r in rows:
            for c in cols:
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        lattice[(r + dr) % h, (c + dc) % w] = True
    dc = torch.zeros(h, w, dtype=torch.bool)
    for dr in (-1, 0, 1):
        for dcol in (-1, 0, 1):
            dc[dr % h, dcol % w] = True
    lattice &= ~dc
    if not lattice.any():
        return np.ones(len(p), dtype=np.float32)
    rest = ~dc
    share = power[:, lattice].sum(-1) / power[:, rest].sum(-1).clamp_min(1e-30)
    return (share / (lattice.sum() / rest.sum())).numpy().astype(np.float32)


def _first_conv(model: Model) -> str:
    for layer in model.layers:
        module = model.submodule(layer.name)
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == model.channels:
            return layer.name
    raise ValueError(f"The model has no Conv2d layer on its {model.channels}-channel input; filter diagnostics need "
                     "one: pass layer= with the name of the conv layer that reads the image.")


def _next_conv(model: Model, layer: str) -> str:
    names = model.layers.names
    for name in names[names.index(layer) + 1:]:
        if isinstance(model.submodule(name), torch.nn.Conv2d):
            return name
    raise ValueError(f"No Conv2d layer follows {layer!r}; pass second_layer= with a conv layer name.")


@torch.no_grad()
def filter_diagnostics(model: Model, dataset, layer: str | None = None, second_layer: str | None = None,
                       k: int = 9, rule: str = "deconvnet", batch_size: int = 64,
                       progress: bool = True) -> FilterDiagnostics:
    """Dead filters and aliasing in the first layer, as numbers per filter (Zeiler & Fergus 2014, §4.1).

    Args:
        model: a :class:`Model`.
        dataset: images to measure activations on (anything :func:`top_activations` takes).
        layer: the first conv layer (default: the conv layer on the image input).
        second_layer: the conv layer whose projections show aliasing (default: the next conv layer).
        k: top images per unit (the second layer's checkerboard is the median over its top images).
        rule: the projection rule for the second layer (see :func:`~cnnvis_widgets.deconv.projection.deconvnet`).
    """
    layer = layer or _first_conv(model)
    conv = model.submodule(layer)
    if not isinstance(conv, torch.nn.Conv2d):
        raise ValueError(f"Layer {layer!r} is a {type(conv).__name__}; filter diagnostics need a Conv2d layer.")
    second_layer = second_layer or _next_conv(model, layer)
    dataset = model.image_source(dataset)  # read (and checked) once for the three passes below
    top_first = top_activations(model, dataset, layer, k=k, batch_size=batch_size, progress=progress)
    top_second = top_activations(model, dataset, second_layer, k=k, batch_size=batch_size, progress=progress)
    stride = int(conv.stride[0])

    w = conv.weight.detach().float().cpu()
    norms = w.flatten(1).norm(dim=1)
    weight_norm = (norms / norms.median().clamp_min(1e-30)).numpy()
    centred = w - w.mean((-2, -1), keepdim=True)
    spatial_contrast = (centred.flatten(1).norm(dim=1) / norms.clamp_min(1e-30)).numpy()
    high_frequency = high_frequency_share(w)

    units, kk = top_second.indices.shape
    checker = np.empty(units * kk, dtype=np.float32)

    def measure(rows: slice, projections: torch.Tensor) -> None:
        checker[rows] = checkerboard_index(projections, stride)

    # one projection pass: the checkerboard is measured on whole projections, the gallery shows their crops
    top_second.projections = projection_crops(
        model, dataset, second_layer, top_second.indices, top_second.positions, top_second.boxes,
        max(top_second.crops.shape[-2:]), rule, batch_size, on_batch=measure)
    top_second.meta["projection_rule"] = rule
    diagnostics = FilterDiagnostics(
        layer=layer, second_layer=second_layer, stride=stride, max_activation=top_first.values[:, 0].copy(),
        weight_norm=weight_norm, spatial_contrast=spatial_contrast, high_frequency=high_frequency,
        checkerboard=np.median(checker.reshape(units, kk), axis=1), top_first=top_first, top_second=top_second)
    flags = diagnostics.flags()
    top_first.meta["flags"] = flags[layer]
    top_second.meta["flags"] = flags[second_layer]
    return diagnostics


__all__ = ["FilterDiagnostics", "checkerboard_index", "filter_diagnostics", "high_frequency_share"]
