"""The value types of receptive-field tracing and their arithmetic.

:class:`ReceptiveField` is the field of the units of one layer, in input
pixels; :class:`LayerTrace` is what :func:`~cnnvis_widgets.receptive_field.trace_layers`
records for one named submodule.

:func:`_compose` is the recursive composition rule of Araujo, Norris and Sim (Distill, 2019), whose
formulas the package docstring gives; :func:`_union` joins the fields of the inputs of multi-input
element-wise operations, as in the multi-path section of the same article. Fields are bounding boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReceptiveField", "LayerTrace"]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, in input pixels (height, width).

    The unit at output grid position ``(i, j)`` sees input rows
    ``[start[0] + i * stride[0], start[0] + i * stride[0] + size[0])`` and the
    matching columns. ``start`` is negative when padding puts part of the
    field outside the image.

    ``global_context`` is True when a per-channel gate computed from the whole image (a
    squeeze-and-excitation block, Hu et al. 2018, as in MobileNetV3, EfficientNet and RegNetY) scales the
    units on the way: such a gate multiplies each channel by one number, so it moves nothing in space,
    and the box is the field of the spatial path it gates. Strictly, every pixel can change the unit's
    value through the gate; where that matters, read ``global_context``.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]
    global_context: bool = False

    def __post_init__(self) -> None:
        for field_name in ("size", "stride", "start"):
            value = tuple(int(v) for v in getattr(self, field_name))
            if len(value) != 2:
                raise ValueError(f"{field_name} must have two entries, got {value}")
            object.__setattr__(self, field_name, value)
        object.__setattr__(self, "global_context", bool(self.global_context))
        if min(self.size) < 1 or min(self.stride) < 1:
            raise ValueError(f"size and stride must be positive: {self}")

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """Field of unit ``(i, j)`` as half-open ``(top, left, bottom, right)``."""
        top = self.start[0] + i * self.stride[0]
        left = self.start[1] + j * self.stride[1]
        return top, left, top + self.size[0], left + self.size[1]

    def clipped_box(
        self, i: int, j: int, height: int, width: int
    ) -> tuple[int, int, int, int]:
        """:meth:`box` clipped to an image of ``height`` x ``width`` pixels."""
        top, left, bottom, right = self.box(i, j)
        top, bottom = min(max(top, 0), height), min(max(bottom, 0), height)
        left, right = min(max(left, 0), width), min(max(right, 0), width)
        return top, left, bottom, right

    def center(self, i: int, j: int) -> tuple[float, float]:
        """Centre of the field of unit ``(i, j)`` in pixel-index coordinates.

        This is the middle pixel of :meth:`box` (``top + (size - 1) / 2``); it
        is a whole number when the size is odd.
        """
        top, left, _, _ = self.box(i, j)
        return top + (self.size[0] - 1) / 2, left + (self.size[1] - 1) / 2


@dataclass(frozen=True)
class LayerTrace:
    """What :func:`trace_layers` records for one named submodule.

    ``output_shape`` excludes the batch dimension and comes from the module's
    last call (first tensor of a tuple/list/dict output); ``None`` if it was
    never called or returned no tensor. ``receptive_field`` is ``None`` when
    the units see the whole input or the field cannot be determined.
    ``receptive_field_exact`` is ``False`` when the field comes from the
    sequential fallback used for modules that :mod:`torch.fx` cannot trace.
    ``output_type`` is ``"tensor"`` when the last call returned one tensor,
    else the type name of what it returned (``"tuple"``, ``"dict"``, ...).
    """

    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    calls: int
    receptive_field: ReceptiveField | None
    receptive_field_exact: bool = True
    output_type: str = "tensor"


# The field of one input pixel, where propagation starts.
_IDENTITY = ReceptiveField((1, 1), (1, 1), (0, 0))


def _compose(
    rf: ReceptiveField,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> ReceptiveField:
    """Araujo et al. (2019) recursion for one sliding-window layer."""
    size = tuple(rf.size[a] + dilation[a] * (kernel[a] - 1) * rf.stride[a] for a in (0, 1))
    start = tuple(rf.start[a] - padding[a] * rf.stride[a] for a in (0, 1))
    new_stride = tuple(rf.stride[a] * stride[a] for a in (0, 1))
    return ReceptiveField(size, new_stride, start, rf.global_context)


def _union(a: ReceptiveField, b: ReceptiveField) -> ReceptiveField | None:
    """Smallest field containing both; ``None`` if the grids differ in stride."""
    if a == b:
        return a
    if a.stride != b.stride:
        return None
    start = tuple(min(a.start[k], b.start[k]) for k in (0, 1))
    end = tuple(max(a.start[k] + a.size[k], b.start[k] + b.size[k]) for k in (0, 1))
    return ReceptiveField(tuple(end[k] - start[k] for k in (0, 1)), a.stride, start,
                          a.global_context or b.global_context)


def _with_global_context(rf: ReceptiveField) -> ReceptiveField:
    """The same box, marked as scaled by a gate computed from the whole image."""
    return ReceptiveField(rf.size, rf.stride, rf.start, True)
