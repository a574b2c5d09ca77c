"""Field values attached to tensors during propagation, and walkers over nested values.

While the fields are propagated, every value of the forward pass carries one
of:

* ``_CONST``: the value does not depend on the input (parameters, shapes,
  literals);
* ``None``: the units see the whole input, or the field is unknown;
* :class:`_Spatial`: a :class:`~.field.ReceptiveField` plus the two tensor
  dimensions that index its grid and the grid's size;
* :class:`_Multi`: the fields of a tuple, list or dict value, mirroring its
  structure.

The helpers below walk nested argument and output structures (tuples, lists,
dicts, slices) to find their tensors and pair them with their fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .field import ReceptiveField


class _Const:
    """Marks values that do not depend on the input (parameters, shapes)."""

    def __repr__(self) -> str:
        return "CONST"


_CONST = _Const()


@dataclass(frozen=True)
class _Spatial:
    """Field of a tensor whose dimensions ``dims`` index the grid ``grid``."""

    rf: ReceptiveField
    dims: tuple[int, int]
    grid: tuple[int, int]


@dataclass(frozen=True)
class _Multi:
    """Fields of a tuple, list or dict value, mirroring its structure."""

    items: Any

    def first_leaf(self) -> Any:
        leaves = _leaves(self)
        return leaves[0] if leaves else _CONST


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        items = value
    elif isinstance(value, dict):
        items = value.values()
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _first_tensor_field(value: Any, field: Any) -> Any:
    """Field of the first tensor in ``value``; ``_CONST`` if there is none."""
    if isinstance(value, torch.Tensor):
        return field.first_leaf() if isinstance(field, _Multi) else field
    if isinstance(value, (tuple, list, dict)):
        keys = list(value.keys()) if isinstance(value, dict) else range(len(value))
        for key in keys:
            sub = field.items[key] if isinstance(field, _Multi) else field
            found = _first_tensor_field(value[key], sub)
            if found is not _CONST:
                return found
    return _CONST


def _leaves(field: Any) -> list[Any]:
    """Every leaf field in an argument structure."""
    if isinstance(field, _Multi):
        field = field.items
    if isinstance(field, dict):
        field = list(field.values())
    if isinstance(field, (tuple, list)):
        return [leaf for item in field for leaf in _leaves(item)]
    if isinstance(field, slice):
        return _leaves([field.start, field.stop, field.step])
    return [field]


def _pairs(value: Any, field: Any) -> list[tuple[torch.Tensor, Any]]:
    """(tensor, field) pairs of the input-dependent tensors in an argument structure."""
    if isinstance(field, _Multi):
        field = field.items
    if isinstance(value, torch.Tensor):
        return [] if field is _CONST else [(value, field)]
    if isinstance(value, dict) and isinstance(field, dict):
        return [p for key in value for p in _pairs(value[key], field.get(key, _CONST))]
    if isinstance(value, (tuple, list)) and isinstance(field, (tuple, list)):
        return [p for v, f in zip(value, field) for p in _pairs(v, f)]
    return []


def _spread(value: Any, field: Any) -> Any:
    """Attach a leaf field to every tensor of an output value, checking shapes."""
    if isinstance(field, _Multi):
        return field
    if isinstance(value, torch.Tensor):
        if isinstance(field, _Spatial):
            dims = field.dims
            if value.dim() <= max(dims) or (value.shape[dims[0]], value.shape[dims[1]]) != field.grid:
                return None
        return field
    if isinstance(value, (tuple, list)):
        return _Multi([_spread(v, field) for v in value])
    if isinstance(value, dict):
        return _Multi({k: _spread(v, field) for k, v in value.items()})
    return _CONST


def _has_tensor(value: Any) -> bool:
    return _first_tensor(value) is not None
