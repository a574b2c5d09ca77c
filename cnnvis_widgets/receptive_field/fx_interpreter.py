"""Exact propagation of fields over the :mod:`torch.fx` data-flow graph.

The module is traced with :func:`torch.fx.symbolic_trace` and the graph is run
on a real input by :class:`_FieldInterpreter`, which derives each node's field
from its arguments' fields with the rules of :mod:`.registry`. Following the
data flow rather than the call order makes branching networks (ResNet,
GoogLeNet) exact: residual additions and concatenations take the union of
their branches' fields.

Leaf modules are mapped by name; containers (``nn.Sequential``, residual
blocks, inception blocks) get the field of their output, found through
``node.meta["nn_module_stack"]``. The first placeholder is the image, with
its grid on the last two dimensions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from .field import _IDENTITY, ReceptiveField
from .registry import _FUNCTION_RULES, _METHOD_RULES, _module_rule
from .tensor_fields import _CONST, _Multi, _Spatial, _first_tensor, _has_tensor, _leaves, _spread


class _FieldInterpreter(fx.Interpreter):
    """Runs the traced graph on a real input and derives each node's field."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.fields: dict[fx.Node, Any] = {}
        self.shapes: dict[fx.Node, tuple[int, ...] | None] = {}
        self._first_placeholder = True

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        try:
            field = self._field(n, value, args, kwargs)
        except Exception:
            field = None  # unexpected argument pattern: stay conservative
        self.fields[n] = _spread(value, field)
        tensor = _first_tensor(value)
        self.shapes[n] = tuple(tensor.shape) if tensor is not None else None
        return value

    def _field(self, n: fx.Node, value: Any, args: tuple, kwargs: dict) -> Any:
        if n.op == "placeholder":
            first, self._first_placeholder = self._first_placeholder, False
            if first and isinstance(value, torch.Tensor) and value.dim() >= 2:
                nd = value.dim()
                return _Spatial(_IDENTITY, (nd - 2, nd - 1), (value.shape[-2], value.shape[-1]))
            return _CONST
        if n.op in ("get_attr", "output") or not _has_tensor(value):
            return _CONST
        # Same structure as the arguments, literals marked constant
        def lookup(a: Any) -> Any:
            return self.fields[a] if isinstance(a, fx.Node) else _CONST

        fargs = fx.node.map_aggregate(n.args, lookup)
        fkwargs = fx.node.map_aggregate(n.kwargs, lookup)
        if all(leaf is _CONST for leaf in _leaves(list(fargs)) + _leaves(dict(fkwargs))):
            return _CONST
        if n.op == "call_module":
            return _module_rule(self.module.get_submodule(n.target), args, kwargs, fargs, fkwargs, value)
        if n.op == "call_function":
            rule = _FUNCTION_RULES.get(n.target)
        elif n.op == "call_method":
            rule = _METHOD_RULES.get(n.target)
        else:
            rule = None
        return None if rule is None else rule(args, kwargs, tuple(fargs), dict(fkwargs), value)


def _module_fields(
    gm: fx.GraphModule, x: torch.Tensor, shapes_by_name: dict[str, tuple[int, ...] | None]
) -> dict[str, ReceptiveField | None]:
    """Receptive field of each module name present in the traced graph."""
    interp = _FieldInterpreter(gm)
    interp.run(x)
    nodes = list(gm.graph.nodes)
    order = {n: i for i, n in enumerate(nodes)}
    groups: dict[str, list[fx.Node]] = {}
    last_key: dict[str, str] = {}
    for n in nodes:
        stack = n.meta.get("nn_module_stack") or {}
        for key, info in stack.items():
            path = info[0] if isinstance(info, tuple) and isinstance(info[0], str) else str(key).split("@")[0]
            groups.setdefault(key, []).append(n)
            last_key[path] = key
    result: dict[str, ReceptiveField | None] = {}
    for name, shape in shapes_by_name.items():
        key = last_key.get(name)
        group = groups.get(key) if key is not None else None
        if group is None:
            # without nn_module_stack metadata, leaf modules are still named
            leaf_calls = [n for n in nodes if n.op == "call_module" and n.target == name]
            group = leaf_calls[-1:] if leaf_calls else None
        if not group:
            continue
        node = _output_node(group, interp.shapes, shape, order)
        if node is None:
            continue
        field = _first_tensor_field_from(interp, node)
        result[name] = field.rf if isinstance(field, _Spatial) else None
    return result


def _first_tensor_field_from(interp: _FieldInterpreter, node: fx.Node) -> Any:
    field = interp.fields.get(node)
    if isinstance(field, _Multi):
        return field.first_leaf()
    return field


def _output_node(
    group: list[fx.Node],
    shapes: dict[fx.Node, tuple[int, ...] | None],
    shape: tuple[int, ...] | None,
    order: dict[fx.Node, int],
) -> fx.Node | None:
    """The node producing a module call's output: used outside the call, matching its shape."""
    members = set(group)
    tensors = [n for n in group if shapes.get(n) is not None]
    escaping = [n for n in tensors if any(user not in members for user in n.users)]
    for candidates in (
        [n for n in escaping if shape is not None and shapes[n][1:] == shape],
        escaping,
        tensors,
    ):
        if candidates:
            return max(candidates, key=order.__getitem__)
    return None
