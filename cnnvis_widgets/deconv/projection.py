"""DeconvNet projections: one activation mapped back to pixel space (Zeiler & Fergus 2014).

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014), §2.1: to see what
excites one activation, set every other activation of its layer to zero and pass the layer back through
a deconvnet to the pixels: max-unpooling with the forward pass's switches, rectification, and filtering
with the transposed filters of the same layer. Unpooling with switches and transposed filtering are what
autograd already does for max-pooling and convolution, so a deconvnet is the backward pass with one
change at the rectifiers. Three rules for that change:

- ``"deconvnet"``: pass only positive backward signals, ignoring the forward sign (Zeiler & Fergus 2014).
- ``"guided"``: pass only positive signals where the forward input was positive too (guided backprop,
  Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net", §3.4).
- ``"gradient"``: the plain gradient (Simonyan et al. 2014's saliency, without the absolute value).

The papers define the rules for ReLU; :mod:`cnnvis_widgets.deconv.rules` extends them to every
rectifier-like unit (LeakyReLU, ELU, SiLU, GELU, Hardswish, Mish, ...) and to the sigmoid gates of
squeeze-and-excitation blocks (options ``gates=`` and ``rectifiers=``), and says when a network has
nonlinearities that the chosen rule leaves at their plain gradient.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..model import Model, feature_layer, run_until
from .nonlinearities import RECTIFIER_MODULES
from .rules import check_options, rectifier_rule

@dataclass
class Projections:
    """The result of :func:`deconvnet`: one projection per selected activation.

    Attributes:
        projections: float32 [N, C, H, W], the projection onto the input image (C: the model's channels).
        image_indices: int64 [N], which input image each row projects.
        units: int64 [N], the unit (channel or feature) of each row.
        positions: int64 [N, 2], (row, column) of the activation in the layer's grid; -1 for layers
            without space.
        values: float32 [N], the activation's value (the seed of the backward pass, as in Zeiler & Fergus).
        layer, rule: what was projected, and how.
        nonlinearities: what the rule did at each nonlinearity the forward hit (e.g. ``{"silu": "guided",
            "sigmoid gate": "held constant", "tanh": "plain gradient"}``); empty for ``rule="gradient"``.
        gates, rectifiers: the rule's options (see :mod:`cnnvis_widgets.deconv.rules`).
    """

    projections: np.ndarray
    image_indices: np.ndarray
    units: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    layer: str
    rule: str
    nonlinearities: dict = field(default_factory=dict)
    gates: str = "constant"
    rectifiers: str = "slope"

    def __len__(self) -> int:
        return len(self.units)

    def __repr__(self) -> str:
        return f"Projections(layer={self.layer!r}, rule={self.rule!r}, n={len(self)})"

    def display(self) -> np.ndarray:
        """The projections as images in [0, 1], zero at mid-grey (see :func:`display_projection`)."""
        return display_projection(self.projections)

    def sheet(self, images=None, scale: int = 2, limit: int = 32):
        """A PIL image: the projections in a row (at most ``limit``), under their input images if given.

        ``images``: the images the projections were computed from, indexed like ``image_indices``
        (a tensor [N, C, H, W] in [0, 1]).
        """
        from PIL import Image

        from ..images import display_array

        count = min(len(self), limit)
        rows = [[np.atleast_3d(display_array(p)) for p in self.display()[:count]]]
        if images is not None:
            picked = [images[int(i)] for i in self.image_indices[:count]]
            rows.insert(0, [np.atleast_3d(display_array(im)) for im in picked])
        h, w = rows[0][0].shape[:2]
        sheet = np.full((len(rows) * (h + 2) - 2, count * (w + 2) - 2, 3), 255, np.uint8)
        for r, row in enumerate(rows):
            for i, tile in enumerate(row):
                sheet[r * (h + 2):r * (h + 2) + h, i * (w + 2):i * (w + 2) + w] = tile
        return Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.sheet().save(buffer, format="PNG")
        return buffer.getvalue()


def display_projection(projections, percentile: float = 99.0) -> np.ndarray:
    """Projections [..., C, H, W] as images in [0, 1]: zero at mid-grey, each image scaled so that the
    ``percentile`` of its magnitudes reaches the ends of the range (the few stronger pixels clip)."""
    p = np.asarray(projections, dtype=np.float32)
    flat = np.abs(p).reshape(*p.shape[:-3], -1)
    scale = np.percentile(flat, percentile, axis=-1)
    scale = np.where(scale > 0, scale, flat.max(-1))[..., None, None, None]
    return np.clip(0.5 + p / (2 * np.maximum(scale, 1e-12)), 0, 1)


def _broadcast(name: str, value, n: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.int64)
    if array.ndim == 0 or (name == "position" and array.ndim == 1):
        return np.broadcast_to(array, (n, *array.shape)).copy()
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but there are {n} images; give one per image or one for all.")
    return array


def deconvnet(model: Model, images, layer: str, unit: int | Sequence[int] | None = None,
              position: Sequence[int] | np.ndarray | None = None, rule: str = "deconvnet", seed: str = "value",
              batch_size: int = 32, image_indices: Sequence[int] | None = None, gates: str = "constant",
              rectifiers: str = "slope") -> Projections:
    """Project one activation of ``layer`` per image back to pixel space (Zeiler & Fergus 2014, §2.1).

    Every other activation of the layer is zeroed; the selected one seeds the backward pass with its own
    value (``seed="value"``, as Zeiler & Fergus) or with 1 (``seed="one"``, the plain derivative). Rows are
    independent and run in batches, so many images, or one image with many units, take one backward pass
    per batch.

    Args:
        model: a :class:`Model`; its module is not modified.
        images: images in [0, 1] with the model's channels (anything :meth:`Model.image_source` reads).
        layer: a name from ``model.layers``.
        unit: the unit per row: an int for all rows, one per image, or None for each image's strongest unit.
        position: (row, column) in the layer's grid, for all rows or one per row; None: the unit's strongest
            position in each image. Ignored for layers without space.
        rule: ``"deconvnet"``, ``"guided"`` or ``"gradient"``, at every rectifier-like unit (ReLU, ReLU6,
            LeakyReLU, ELU, SELU, CELU, SiLU, GELU, Hardswish, Mish, Softplus, ...; see
            :mod:`cnnvis_widgets.deconv.rules`).
        image_indices: project only these images of ``images`` (repeats allowed: one row each).
        batch_size: rows per backward pass.
        gates: at the sigmoid / hard-sigmoid gates of squeeze-and-excitation blocks: ``"constant"`` (held at
            their forward values, no signal into the gating branch) or ``"gradient"`` (differentiated
            through). Ignored by ``rule="gradient"``.
        rectifiers: how ``rule="guided"`` gates the signal at a rectifier-like unit ``f`` other than the
            ReLU family: ``"slope"`` (``relu(f'(x) * g)``) or ``"relu"`` (``1[x > 0] * relu(g)``).

    A layer that is a rectifier module (``nn.ReLU6``, ``nn.SiLU``, ...) is projected from its input under
    ``"deconvnet"`` and ``"guided"``: the seed passes the layer's own rectifier unchanged, as Zeiler & Fergus
    reconstruct a rectified map starting below its rectifier. That keeps a saturated unit (ReLU6 at 6, whose
    slope is 0) from projecting to nothing; for ReLU it changes nothing. ``"gradient"`` stays the plain
    gradient, zero at a saturated unit, and a warning names the rows that project to zero.

    Raises :class:`~cnnvis_widgets.deconv.rules.RuleHasNoEffectError` when a rule other than ``"gradient"``
    changes no nonlinearity of the network, and warns once
    (:class:`~cnnvis_widgets.deconv.rules.UnchangedNonlinearityWarning`) when it leaves some at their plain
    gradient.
    """
    check_options(rule, gates, rectifiers)
    if seed not in ("value", "one"):
        raise ValueError(f"seed must be 'value' or 'one', got {seed!r}.")
    info = feature_layer(model, layer, "deconvnet")
    source = model.image_source(images)
    rows = np.arange(len(source)) if image_indices is None else np.asarray(image_indices, dtype=np.int64)
    n = len(rows)
    units = None if unit is None else _broadcast("unit", unit, n)
    if units is not None and ((units < 0) | (units >= info.units)).any():
        raise ValueError(f"unit out of range: {layer} has {info.units} units, numbered 0..{info.units - 1}.")
    spatial = info.spatial
    positions = None if position is None or not spatial else _broadcast("position", position, n)
    if positions is not None:
        grid = np.array(info.output_shape[1:])
        if positions.shape != (n, 2) or ((positions < 0) | (positions >= grid)).any():
            raise ValueError(f"position must be (row, column) inside {layer}'s {grid[0]}x{grid[1]} grid, one pair "
                             "for all images or one per image.")
    out_projections, out_units, out_positions, out_values = [], [], [], []
    nonlinearities: dict[str, str] = {}
    device = model.device
    from_input = rule != "gradient" and isinstance(model.submodule(layer), RECTIFIER_MODULES)
    with model.inference():
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size)
            batch = source.images(rows[index].tolist()).to(device, model.dtype).requires_grad_(True)
            mode = rectifier_rule(rule, gates, rectifiers)
            result = _project_batch(model, batch, layer, mode, seed, spatial, from_input,
                                    None if units is None else torch.as_tensor(units[index], device=device),
                                    None if positions is None else torch.as_tensor(positions[index], device=device))
            nonlinearities.update(mode.summary())
            for store, value in zip((out_projections, out_units, out_positions, out_values), result):
                store.append(value.detach().cpu())
    projections = torch.cat(out_projections).float()
    values = torch.cat(out_values).float()
    _warn_empty(projections, values, torch.cat(out_units), layer, rule)
    return Projections(
        projections=projections.numpy(), image_indices=rows,
        units=torch.cat(out_units).numpy(), positions=torch.cat(out_positions).numpy(),
        values=values.numpy(), layer=layer, rule=rule, nonlinearities=nonlinearities,
        gates=gates, rectifiers=rectifiers)


def _warn_empty(projections: torch.Tensor, values: torch.Tensor, units: torch.Tensor, layer: str, rule: str) -> None:
    """Warn when a row with a non-zero seed projects to exactly zero (e.g. the plain gradient of a saturated unit)."""
    empty = (projections.flatten(1).abs().amax(1) == 0) & (values != 0)
    if bool(empty.any()):
        rows = empty.nonzero()[:, 0].tolist()
        warnings.warn(
            f"{len(rows)} of {len(values)} projections of layer {layer!r} are zero everywhere although their "
            f"activation is not (rows {rows[:8]}, units {units[rows[:8]].tolist()}): under rule={rule!r} the signal "
            "dies at a unit whose slope is zero, e.g. a ReLU6 saturated at 6. Project another unit or position, a "
            "layer before the saturation, or use rule='deconvnet', which ignores the forward signal.",
            RuntimeWarning, stacklevel=3)


def _project_batch(model: Model, batch: torch.Tensor, layer: str, mode: rectifier_rule, seed: str, spatial: bool,
                   from_input: bool, units: torch.Tensor | None, positions: torch.Tensor | None):
    """One forward to ``layer`` under ``mode`` and one backward from the selected activation of each row (from
    the layer's input, the pre-activation, when ``from_input``)."""
    captured: list[torch.Tensor] = []
    pre_activation: list[torch.Tensor] = []
    last_call, calls = model.layer(layer).calls, [0]

    def keep_input(module, inputs):
        calls[0] += 1
        if calls[0] == last_call:  # a copy: an in-place rectifier overwrites its input
            pre_activation.append(inputs[0].clone())

    with torch.enable_grad(), mode, model.hooks() as hooks:
        if from_input:
            hooks.forward_pre(layer, keep_input)
        run_until(model, batch, layer, captured.append)
    mode.check(model.module, f"layer {layer!r}")
    activation = captured[0]
    b = activation.shape[0]
    rows = torch.arange(b, device=activation.device)
    flat = activation.detach().flatten(2) if spatial else activation.detach().view(b, -1, 1)
    if units is None:
        units = flat.amax(2).argmax(1)
    unit_maps = flat[rows, units]  # [b, positions]
    if positions is None:
        where = unit_maps.argmax(1)
    else:
        where = positions[:, 0] * activation.shape[-1] + positions[:, 1]
    values = unit_maps[rows, where]
    grad = torch.zeros_like(flat)
    grad[rows, units, where] = values if seed == "value" else torch.ones_like(values)
    start = pre_activation[0] if from_input else activation
    (projection,) = torch.autograd.grad(start, batch, grad.view_as(start))
    width = activation.shape[-1]
    pos = torch.stack([where // width, where % width], 1) if spatial else torch.full((b, 2), -1, device=rows.device)
    return projection, units, pos, values


__all__ = ["Projections", "deconvnet", "display_projection"]
