"""Approximate fields from forward hooks, for modules that :mod:`torch.fx` cannot trace.

When symbolic tracing fails (data-dependent control flow), fields are
composed from the order in which modules run during the forward pass:
:class:`_SequentialTracker` applies the leaf-module rules of
:func:`~.registry._module_rule` in call order, following tensors by identity
where it can. This ignores functional operations and joins between branches,
so it is only an approximation; such records carry
``receptive_field_exact=False``.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn as nn

from .field import _IDENTITY
from .registry import _module_rule
from .tensor_fields import _Spatial, _first_tensor, _first_tensor_field, _spread


class _SequentialTracker:
    """Composes leaf modules in call order, following tensors by identity."""

    def __init__(self, x: torch.Tensor) -> None:
        self._known: dict[int, tuple[weakref.ref, Any]] = {}
        nd = x.dim()
        self.running: Any = _Spatial(_IDENTITY, (nd - 2, nd - 1), (x.shape[-2], x.shape[-1]))
        self._remember(x, self.running)

    def _remember(self, value: Any, field: Any) -> None:
        if isinstance(value, torch.Tensor):
            self._known[id(value)] = (weakref.ref(value), _first_tensor_field(value, field))
        elif isinstance(value, (tuple, list)):
            for item in value:
                self._remember(item, field)
        elif isinstance(value, dict):
            for item in value.values():
                self._remember(item, field)

    def _lookup(self, tensor: torch.Tensor | None) -> Any:
        if tensor is not None:
            entry = self._known.get(id(tensor))
            if entry is not None and entry[0]() is tensor:
                return entry[1]
        return self.running

    def observe(self, mod: nn.Module, inputs: tuple, output: Any) -> Any:
        if next(mod.children(), None) is None:
            x = _first_tensor(inputs)
            if x is None:
                field = None
            else:
                try:
                    field = _module_rule(mod, (x,), {}, (self._lookup(x),), {}, output)
                except Exception:
                    field = None
        else:
            field = self._lookup(_first_tensor(output))
        field = _first_tensor_field(output, _spread(output, field))
        self._remember(output, field)
        self.running = field
        return field
