"""Public entry points: :func:`trace_layers` and :func:`receptive_field_of`.

:func:`trace_layers` runs one forward pass of a zero image with forward hooks
to record each layer's output shape and call count, then computes the fields
exactly over the :mod:`torch.fx` graph (:mod:`.fx_interpreter`), or, when
symbolic tracing fails, approximately from the hooks' call order
(:mod:`.sequential_fallback`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn

from .field import LayerTrace, ReceptiveField
from .fx_interpreter import _module_fields
from .sequential_fallback import _SequentialTracker
from .tensor_fields import _Spatial, _first_tensor

__all__ = ["trace_layers", "receptive_field_of"]


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device, torch.get_default_dtype()
    return torch.device("cpu"), torch.get_default_dtype()


class _Record:
    __slots__ = ("calls", "output_shape", "output_type", "field")

    def __init__(self) -> None:
        self.calls = 0
        self.output_shape: tuple[int, ...] | None = None
        self.output_type = "tensor"
        self.field: Any = None


def trace_layers(module: nn.Module, input_size: tuple[int, int, int]) -> dict[str, LayerTrace]:
    """Output shape and receptive field of every named submodule of ``module``.

    Runs ``module`` once, in eval mode and under :func:`torch.no_grad`, on a
    zero tensor of shape ``[1, *input_size]`` with the device and dtype of its
    parameters. Forward hooks are always removed and every submodule's
    ``training`` flag is restored, also when the forward raises; parameters
    and buffers are left untouched (BatchNorm running statistics do not update
    in eval mode).

    Receptive fields follow the composition rule of Araujo et al., "Computing
    Receptive Fields of Convolutional Neural Networks", Distill 2019, applied
    over the :mod:`torch.fx` data-flow graph so that residual additions and
    concatenations take the union of their branches. If the module cannot be
    traced symbolically, fields are composed along the call order of the
    modules instead and every record has ``receptive_field_exact=False``.

    Returns a dict keyed by the dotted names of ``module.named_modules()``
    (the root excluded), in that order.
    """
    input_size = tuple(int(v) for v in input_size)
    named = [(name, mod) for name, mod in module.named_modules() if name]
    records = {name: _Record() for name, _ in named}
    flags = {mod: mod.training for mod in module.modules()}
    device, dtype = _device_dtype(module)
    x = torch.zeros((1, *input_size), device=device, dtype=dtype)
    tracker = _SequentialTracker(x)
    handles = []

    def make_hook(record: _Record) -> Callable[..., None]:
        def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
            record.calls += 1
            tensor = _first_tensor(output)
            record.output_shape = tuple(tensor.shape[1:]) if tensor is not None else None
            record.output_type = "tensor" if isinstance(output, torch.Tensor) else type(output).__name__
            try:
                record.field = tracker.observe(mod, inputs, output)
            except Exception:
                record.field = None

        return hook

    exact_fields: dict[str, ReceptiveField | None] | None = None
    try:
        for mod in flags:
            mod.training = False
        try:
            for name, mod in named:
                handles.append(mod.register_forward_hook(make_hook(records[name])))
            with torch.no_grad():
                module(x)
        finally:
            for handle in handles:
                handle.remove()
        try:
            gm = fx.symbolic_trace(module)
            with torch.no_grad():
                exact_fields = _module_fields(
                    gm, x, {name: rec.output_shape for name, rec in records.items()}
                )
        except Exception:
            exact_fields = None
    finally:
        for mod, flag in flags.items():
            mod.training = flag

    exact = exact_fields is not None
    result: dict[str, LayerTrace] = {}
    for name, mod in named:
        rec = records[name]
        if rec.calls == 0:
            rf = None
        elif exact:
            rf = exact_fields.get(name)
        else:
            rf = rec.field.rf if isinstance(rec.field, _Spatial) else None
        result[name] = LayerTrace(
            name=name,
            kind=type(mod).__name__,
            output_shape=rec.output_shape,
            calls=rec.calls,
            receptive_field=rf,
            receptive_field_exact=exact,
            output_type=rec.output_type,
        )
    return result


def receptive_field_of(
    module: nn.Module, input_size: tuple[int, int, int], layer_name: str
) -> ReceptiveField | None:
    """Receptive field of one named layer (see :func:`trace_layers`)."""
    traces = trace_layers(module, input_size)
    if layer_name not in traces:
        raise KeyError(f"no submodule named {layer_name!r}")
    return traces[layer_name].receptive_field
