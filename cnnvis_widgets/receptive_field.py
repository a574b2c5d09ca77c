"""Receptive fields and output shapes of every layer of a CNN.

The receptive field of a unit is the region of the input image that can
influence its value. For a chain of convolutions and poolings it follows the
recursive composition rule of Araujo, Norris and Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill, 2019
(https://distill.pub/2019/computing-receptive-fields/). With ``size_in``,
``stride_in`` and ``start_in`` the field of the layer's input grid (in input
pixels) and a layer of kernel ``k``, stride ``s``, padding ``p`` and dilation
``d`` (effective kernel ``k_eff = d * (k - 1) + 1``)::

    size_out   = size_in + (k_eff - 1) * stride_in
    stride_out = stride_in * s
    start_out  = start_in - p * stride_in

Element-wise operations with several inputs (residual additions,
concatenation along channels, ...) take the union of their inputs' fields,
which makes branching networks (ResNet, GoogLeNet) exact, as in the
multi-path section of the same article.

:func:`trace_layers` runs one forward pass of a zero image to record each
layer's output shape, and propagates fields over the data-flow graph obtained
with :func:`torch.fx.symbolic_trace`. Leaf modules are mapped by name;
containers (``nn.Sequential``, residual blocks, inception blocks) get the
field of their output, found through ``node.meta["nn_module_stack"]``.

Conventions and limits:

* Fields are bounding boxes: a layer with a stride larger than its input's
  field size leaves gaps, which the box includes.
* ``None`` means that the units see the whole input (after flatten,
  ``Linear`` over space, global or non-divisible adaptive pooling, spatial
  means, squeeze-and-excitation gates, normalisations whose statistics span
  space such as ``GroupNorm``, ``InstanceNorm`` or ``LayerNorm`` over H and W)
  or that the field cannot be determined (unknown operations, transposed
  convolutions, interpolation). Unknown operations are never assumed to keep
  the field.
* Only 2-D spatial layers are modelled; tensors are expected in NCHW layout at
  the input, and permutes / reshapes that keep H and W are followed.
* When symbolic tracing fails (data-dependent control flow), fields are
  composed from the order in which modules run during the forward pass. This
  ignores functional operations and joins between branches, so it is only an
  approximation; such records carry ``receptive_field_exact=False``.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "ReceptiveField",
    "LayerTrace",
    "trace_layers",
    "receptive_field_of",
]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, in input pixels (height, width).

    The unit at output grid position ``(i, j)`` sees input rows
    ``[start[0] + i * stride[0], start[0] + i * stride[0] + size[0])`` and the
    matching columns. ``start`` is negative when padding puts part of the
    field outside the image.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]

    def __post_init__(self) -> None:
        for field_name in ("size", "stride", "start"):
            value = tuple(int(v) for v in getattr(self, field_name))
            if len(value) != 2:
                raise ValueError(f"{field_name} must have two entries, got {value}")
            object.__setattr__(self, field_name, value)
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
    """

    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    calls: int
    receptive_field: ReceptiveField | None
    receptive_field_exact: bool = True


# ---------------------------------------------------------------------------
# Field values attached to tensors during propagation


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


# A field is _CONST, None ("whole input" or unknown), _Spatial or _Multi.
_IDENTITY = ReceptiveField((1, 1), (1, 1), (0, 0))


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value[0], value[0]
    if len(value) != 2:
        raise ValueError(f"expected one or two values, got {value}")
    return value


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
    return ReceptiveField(size, new_stride, start)


def _union(a: ReceptiveField, b: ReceptiveField) -> ReceptiveField | None:
    """Smallest field containing both; ``None`` if the grids differ in stride."""
    if a == b:
        return a
    if a.stride != b.stride:
        return None
    start = tuple(min(a.start[k], b.start[k]) for k in (0, 1))
    end = tuple(max(a.start[k] + a.size[k], b.start[k] + b.size[k]) for k in (0, 1))
    return ReceptiveField(tuple(end[k] - start[k] for k in (0, 1)), a.stride, start)


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


# ---------------------------------------------------------------------------
# Rules for single operations


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _main(args: tuple, fargs: tuple) -> tuple[Any, Any]:
    if not args:
        return None, None
    return args[0], (fargs[0] if fargs else _CONST)


def _only_main_varies(fargs: tuple, fkwargs: dict) -> bool:
    """True when nothing but the first argument depends on the input."""
    return all(leaf is _CONST for leaf in _leaves(list(fargs[1:])) + _leaves(fkwargs))


def _pointwise(pairs: list[tuple[torch.Tensor, Any]], out: Any) -> Any:
    """Union rule for ops that keep the spatial grid (with right-aligned broadcasting)."""
    out_t = _first_tensor(out)
    if out_t is None or not pairs:
        return None
    result: _Spatial | None = None
    for tensor, field in pairs:
        if field is _CONST:
            continue
        if isinstance(field, _Multi):
            field = field.first_leaf()
        if not isinstance(field, _Spatial):
            return None
        offset = out_t.dim() - tensor.dim()
        if offset < 0:
            return None
        dims = (field.dims[0] + offset, field.dims[1] + offset)
        if (out_t.shape[dims[0]], out_t.shape[dims[1]]) != field.grid:
            return None
        if result is None:
            result = _Spatial(field.rf, dims, field.grid)
            continue
        if dims != result.dims:
            return None
        merged = _union(result.rf, field.rf)
        if merged is None:
            return None
        result = _Spatial(merged, dims, field.grid)
    return result


def _remap(field: Any, out: Any, dims: tuple[int, int]) -> Any:
    """Same field with the grid now at ``dims`` of the output."""
    if not isinstance(field, _Spatial):
        return None
    out_t = _first_tensor(out)
    if out_t is None or min(dims) < 0 or max(dims) >= out_t.dim():
        return None
    if (out_t.shape[dims[0]], out_t.shape[dims[1]]) != field.grid:
        return None
    return _Spatial(field.rf, dims, field.grid)


def _window(
    x: Any,
    field: Any,
    out: Any,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any = 1,
) -> Any:
    """Sliding-window layer on the last two dimensions."""
    out_t = _first_tensor(out)
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor) or out_t is None:
        return None
    nd = x.dim()
    if field.dims != (nd - 2, nd - 1) or out_t.dim() != nd:
        return None
    kernel, dilation = _pair(kernel), _pair(dilation)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            padding = tuple((dilation[a] * (kernel[a] - 1)) // 2 for a in (0, 1))
        else:
            return None
    padding = _pair(padding)
    rf = _compose(field.rf, kernel, stride, padding, dilation)
    return _Spatial(rf, field.dims, (out_t.shape[-2], out_t.shape[-1]))


def _adaptive(x: Any, field: Any, out: Any) -> Any:
    """Adaptive pooling: global pooling sees everything; even splits are plain pooling."""
    out_t = _first_tensor(out)
    if not isinstance(x, torch.Tensor) or out_t is None or x.dim() < 2:
        return None
    size_in, size_out = tuple(x.shape[-2:]), tuple(out_t.shape[-2:])
    if size_out == (1, 1) and size_in != (1, 1):
        return None
    if any(o < 1 or i % o for i, o in zip(size_in, size_out)):
        return None
    kernel = tuple(i // o for i, o in zip(size_in, size_out))
    return _window(x, field, out, kernel, kernel, 0)


def _pad(x: Any, field: Any, out: Any, pad: Any) -> Any:
    """Constant/reflect/replicate padding: a 1x1 window with (top, left) padding."""
    pad = [int(p) for p in pad]
    left = pad[0] if len(pad) >= 1 else 0
    top = pad[2] if len(pad) >= 4 else 0
    return _window(x, field, out, 1, 1, (top, left))


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _keep_if_untouched(x: Any, field: Any, out: Any, dims: Any) -> Any:
    """Field unchanged when the op only acts along ``dims`` and they are not spatial."""
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor) or dims is None:
        return None
    if isinstance(dims, int):
        dims = (dims,)
    touched = {_norm_dim(int(d), x.dim()) for d in dims}
    if touched & set(field.dims):
        return None
    return _pointwise([(x, field)], out)


def _last_dims(x: Any, field: Any, out: Any, count: int) -> Any:
    if not isinstance(x, torch.Tensor):
        return None
    return _keep_if_untouched(x, field, out, tuple(range(x.dim() - count, x.dim())))


def _flatten(x: Any, field: Any, out: Any, start: int, end: int) -> Any:
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor) or x.dim() == 0:
        return None
    start, end = _norm_dim(start, x.dim()), _norm_dim(end, x.dim())
    if start >= end:
        return _remap(field, out, field.dims)
    if any(start <= d <= end for d in field.dims):
        return None
    dims = tuple(d if d < start else d - (end - start) for d in field.dims)
    return _remap(field, out, dims)


def _reshape(x: Any, field: Any, out: Any) -> Any:
    """Reshape keeps the grid when the trailing block from H onwards is unchanged."""
    out_t = _first_tensor(out)
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor) or out_t is None:
        return None
    tail = x.dim() - min(field.dims)
    if out_t.dim() < tail or tuple(out_t.shape[out_t.dim() - tail:]) != tuple(x.shape[x.dim() - tail:]):
        return None
    shift = out_t.dim() - x.dim()
    return _remap(field, out, (field.dims[0] + shift, field.dims[1] + shift))


def _permute(x: Any, field: Any, out: Any, perm: Any) -> Any:
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor):
        return None
    perm = [_norm_dim(int(p), x.dim()) for p in perm]
    if sorted(perm) != list(range(x.dim())):
        return None
    return _remap(field, out, (perm.index(field.dims[0]), perm.index(field.dims[1])))


def _transpose(x: Any, field: Any, out: Any, d0: int, d1: int) -> Any:
    if not isinstance(x, torch.Tensor):
        return None
    perm = list(range(x.dim()))
    d0, d1 = _norm_dim(d0, x.dim()), _norm_dim(d1, x.dim())
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _permute(x, field, out, perm)


def _unsqueeze(x: Any, field: Any, out: Any, dim: int) -> Any:
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor):
        return None
    dim = dim + x.dim() + 1 if dim < 0 else dim
    return _remap(field, out, tuple(d if d < dim else d + 1 for d in field.dims))


def _reduce(x: Any, field: Any, out: Any, dim: Any, keepdim: bool) -> Any:
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor) or dim is None:
        return None
    if isinstance(dim, int):
        dim = (dim,)
    reduced = {_norm_dim(int(d), x.dim()) for d in dim}
    if reduced & set(field.dims):
        return None
    if keepdim:
        return _remap(field, out, field.dims)
    return _remap(field, out, tuple(d - sum(r < d for r in reduced) for d in field.dims))


def _getitem(x: Any, field: Any, out: Any, index: Any) -> Any:
    """Basic indexing of a tensor; crops and strided slices of H and W shift the field."""
    if not isinstance(field, _Spatial) or not isinstance(x, torch.Tensor):
        return None
    index = index if isinstance(index, tuple) else (index,)
    for item in index:
        if item is not None and item is not Ellipsis and (isinstance(item, bool) or not isinstance(item, (int, slice))):
            return None
    consuming = sum(1 for item in index if item is not None and item is not Ellipsis)
    if sum(1 for item in index if item is Ellipsis) > 1 or consuming > x.dim():
        return None
    expanded: list[Any] = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (x.dim() - consuming))
        else:
            expanded.append(item)
    expanded.extend([slice(None)] * (x.dim() - sum(1 for i in expanded if i is not None)))
    rf, in_dim, out_dim = field.rf, 0, 0
    new_dims: dict[int, int] = {}
    start, stride = list(rf.start), list(rf.stride)
    for item in expanded:
        if item is None:
            out_dim += 1
            continue
        if isinstance(item, int):
            if in_dim in field.dims:
                return None
            in_dim += 1
            continue
        if in_dim in field.dims:
            axis = field.dims.index(in_dim)
            first, _, step = item.indices(x.shape[in_dim])
            if step < 1:
                return None
            start[axis] += first * stride[axis]
            stride[axis] *= step
            new_dims[axis] = out_dim
        in_dim += 1
        out_dim += 1
    out_t = _first_tensor(out)
    if out_t is None:
        return None
    dims = (new_dims[0], new_dims[1])
    grid = (out_t.shape[dims[0]], out_t.shape[dims[1]])
    if min(grid) < 1:
        return None
    return _Spatial(ReceptiveField(rf.size, stride, start), dims, grid)


def _names(module: Any, names: list[str]) -> list[Any]:
    return [obj for obj in (getattr(module, n, None) for n in names) if obj is not None]


_POINTWISE_MODULES = tuple(
    _names(
        nn,
        [
            "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU",
            "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Hardtanh",
            "Sigmoid", "Tanh", "Softplus", "Softsign", "LogSigmoid", "Threshold",
            "Tanhshrink", "Hardshrink", "Softshrink", "Identity", "Dropout",
            "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
            "FeatureAlphaDropout", "LocalResponseNorm", "CrossMapLRN2d",
            "Softmax2d", "ChannelShuffle",
        ],
    )
)
_PAD_MODULES = tuple(
    _names(
        nn,
        ["ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"],
    )
)
_SOFTMAX_MODULES = tuple(_names(nn, ["Softmax", "LogSoftmax", "Softmin"]))


def _module_rule(mod: nn.Module, args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
    """Field of a leaf module's output."""
    x, field = _main(args, fargs)
    if isinstance(mod, _POINTWISE_MODULES):
        return _pointwise(_pairs(list(args), list(fargs)) + _pairs(kwargs, fkwargs), out)
    if not _only_main_varies(fargs, fkwargs):
        return None
    if isinstance(mod, nn.Conv2d):
        return _window(x, field, out, mod.kernel_size, mod.stride, mod.padding, mod.dilation)
    if isinstance(mod, nn.MaxPool2d):
        return _window(x, field, out, mod.kernel_size, mod.stride, mod.padding, mod.dilation)
    if isinstance(mod, nn.AvgPool2d):
        return _window(x, field, out, mod.kernel_size, mod.stride, mod.padding)
    if isinstance(mod, nn.LPPool2d):
        return _window(x, field, out, mod.kernel_size, mod.stride, 0)
    if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return _adaptive(x, field, out)
    if _PAD_MODULES and isinstance(mod, _PAD_MODULES):
        return _pad(x, field, out, mod.padding)
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        # Running statistics make it per-channel affine; batch statistics mix space.
        if mod.training or mod.running_mean is None:
            return None
        return _pointwise([(x, field)], out)
    if isinstance(mod, _SOFTMAX_MODULES):
        return _keep_if_untouched(x, field, out, mod.dim)
    if isinstance(mod, nn.GLU):
        return _keep_if_untouched(x, field, out, mod.dim)
    if isinstance(mod, nn.Flatten):
        return _flatten(x, field, out, mod.start_dim, mod.end_dim)
    if isinstance(mod, nn.Linear):
        return _last_dims(x, field, out, 1)
    if isinstance(mod, nn.LayerNorm):
        return _last_dims(x, field, out, len(mod.normalized_shape))
    return None


_Rule = Callable[[tuple, dict, tuple, dict, Any], Any]


def _all_pointwise(args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
    return _pointwise(_pairs(list(args), list(fargs)) + _pairs(kwargs, fkwargs), out)


def _single(rule: Callable[..., Any]) -> _Rule:
    """Wrap a rule of the first argument; other input-dependent arguments give None."""

    def wrapped(args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
        if not _only_main_varies(fargs, fkwargs):
            return None
        x, field = _main(args, fargs)
        return rule(x, field, out, args, kwargs)

    return wrapped


def _dim_rule(index: int, name: str, default: Any) -> _Rule:
    return _single(lambda x, f, out, a, k: _keep_if_untouched(x, f, out, _arg(a, k, index, name, default)))


def _conv_fn(x, f, out, a, k):
    weight = _arg(a, k, 1, "weight")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        return None
    return _window(
        x, f, out, tuple(weight.shape[-2:]), _arg(a, k, 3, "stride", 1),
        _arg(a, k, 4, "padding", 0), _arg(a, k, 5, "dilation", 1),
    )


def _maxpool_fn(x, f, out, a, k):
    return _window(
        x, f, out, _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "stride", None),
        _arg(a, k, 3, "padding", 0), _arg(a, k, 4, "dilation", 1),
    )


def _avgpool_fn(x, f, out, a, k):
    return _window(x, f, out, _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "stride", None), _arg(a, k, 3, "padding", 0))


def _lppool_fn(x, f, out, a, k):
    return _window(x, f, out, _arg(a, k, 2, "kernel_size"), _arg(a, k, 3, "stride", None), 0)


def _batch_norm_fn(x, f, out, a, k):
    if _arg(a, k, 5, "training", False) or _arg(a, k, 1, "running_mean") is None:
        return None
    return _pointwise([(x, f)], out)


def _cat(args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
    tensors, dim = _arg(args, kwargs, 0, "tensors"), _arg(args, kwargs, 1, "dim", 0)
    pairs = _pairs(tensors, fargs[0] if fargs else fkwargs.get("tensors", _CONST))
    out_t = _first_tensor(out)
    if out_t is None or not isinstance(dim, int):
        return None
    dim = _norm_dim(dim, out_t.dim())
    for tensor, field in pairs:
        if not isinstance(field, _Spatial) or tensor.dim() != out_t.dim() or dim in field.dims:
            return None
    return _pointwise(pairs, out)


def _max_min(args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
    other = _arg(args, kwargs, 1, "other", _arg(args, kwargs, 1, "dim"))
    if isinstance(other, torch.Tensor):
        return _all_pointwise(args, kwargs, fargs, fkwargs, out)
    return _reduction(args, kwargs, fargs, fkwargs, out)


_reduction = _single(lambda x, f, out, a, k: _reduce(x, f, out, _arg(a, k, 1, "dim"), bool(_arg(a, k, 2, "keepdim", False))))


def _permute_rule(x, f, out, a, k):
    dims = a[1:] if len(a) > 1 else (k.get("dims"),)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return _permute(x, f, out, dims)


def _unbind(x, f, out, a, k):
    if not isinstance(f, _Spatial) or not isinstance(out, (tuple, list)):
        return None
    dim = _norm_dim(_arg(a, k, 1, "dim", 0), x.dim())
    if dim in f.dims:
        return None
    dims = tuple(d - (d > dim) for d in f.dims)
    return _Multi([_remap(f, piece, dims) for piece in out])


_FUNCTION_RULES: dict[Any, _Rule] = {}
_METHOD_RULES: dict[str, _Rule] = {}


def _register() -> None:
    pointwise_fns = [
        operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
        operator.mod, operator.pow, operator.neg, operator.pos, operator.abs,
        operator.iadd, operator.isub, operator.imul, operator.itruediv,
        operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne,
        operator.and_, operator.or_, operator.xor, operator.invert,
    ]
    pointwise_fns += _names(torch, [
        "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
        "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "square", "relu", "relu_",
        "sigmoid", "tanh", "clamp", "clip", "clamp_min", "clamp_max", "maximum",
        "minimum", "where", "sign", "erf", "sin", "cos", "addcmul", "addcdiv", "lerp",
        "nan_to_num", "dropout", "feature_dropout", "alpha_dropout", "hardswish",
    ])
    pointwise_fns += _names(F, [
        "relu", "relu_", "relu6", "elu", "elu_", "selu", "celu", "leaky_relu",
        "leaky_relu_", "prelu", "rrelu", "gelu", "silu", "mish", "hardswish",
        "hardsigmoid", "hardtanh", "hardtanh_", "sigmoid", "tanh", "softplus",
        "softsign", "logsigmoid", "threshold", "tanhshrink", "hardshrink",
        "softshrink", "dropout", "dropout1d", "dropout2d", "dropout3d",
        "alpha_dropout", "feature_alpha_dropout", "local_response_norm",
    ])
    try:
        from torchvision.ops import stochastic_depth

        pointwise_fns.append(stochastic_depth)
    except ImportError:
        pass
    for fn in pointwise_fns:
        _FUNCTION_RULES[fn] = _all_pointwise

    for fn in _names(torch, ["conv2d"]) + _names(F, ["conv2d"]):
        _FUNCTION_RULES[fn] = _single(_conv_fn)
    for fn in _names(torch, ["max_pool2d"]) + _names(F, ["max_pool2d", "max_pool2d_with_indices"]):
        _FUNCTION_RULES[fn] = _single(_maxpool_fn)
    for fn in _names(torch, ["avg_pool2d"]) + _names(F, ["avg_pool2d"]):
        _FUNCTION_RULES[fn] = _single(_avgpool_fn)
    for fn in _names(F, ["lp_pool2d"]):
        _FUNCTION_RULES[fn] = _single(_lppool_fn)
    for fn in _names(torch, ["adaptive_avg_pool2d"]) + _names(F, ["adaptive_avg_pool2d", "adaptive_max_pool2d"]):
        _FUNCTION_RULES[fn] = _single(lambda x, f, out, a, k: _adaptive(x, f, out))
    _FUNCTION_RULES[F.pad] = _single(lambda x, f, out, a, k: _pad(x, f, out, _arg(a, k, 1, "pad")))
    _FUNCTION_RULES[F.batch_norm] = _single(_batch_norm_fn)
    _FUNCTION_RULES[F.linear] = _single(lambda x, f, out, a, k: _last_dims(x, f, out, 1))
    _FUNCTION_RULES[F.layer_norm] = _single(
        lambda x, f, out, a, k: _last_dims(x, f, out, len(_pair_shape(_arg(a, k, 1, "normalized_shape"))))
    )
    _FUNCTION_RULES[F.normalize] = _dim_rule(2, "dim", 1)
    _FUNCTION_RULES[F.glu] = _dim_rule(1, "dim", -1)
    for fn in _names(F, ["softmax", "log_softmax", "softmin"]) + _names(torch, ["softmax", "log_softmax"]):
        _FUNCTION_RULES[fn] = _dim_rule(1, "dim", None)
    for fn in _names(torch, ["cat", "concat", "concatenate"]):
        _FUNCTION_RULES[fn] = _cat
    for fn in _names(torch, ["chunk", "split", "tensor_split"]):
        _FUNCTION_RULES[fn] = _dim_rule(2, "dim", 0)
    _FUNCTION_RULES[torch.unbind] = _single(_unbind)
    for fn in _names(torch, ["mean", "sum", "amax", "amin", "std", "var", "logsumexp", "prod"]):
        _FUNCTION_RULES[fn] = _reduction
    for fn in _names(torch, ["max", "min"]):
        _FUNCTION_RULES[fn] = _max_min
    _FUNCTION_RULES[torch.flatten] = _single(
        lambda x, f, out, a, k: _flatten(x, f, out, _arg(a, k, 1, "start_dim", 0), _arg(a, k, 2, "end_dim", -1))
    )
    _FUNCTION_RULES[torch.reshape] = _single(lambda x, f, out, a, k: _reshape(x, f, out))
    _FUNCTION_RULES[torch.permute] = _single(_permute_rule)
    for fn in _names(torch, ["transpose", "swapaxes", "swapdims"]):
        _FUNCTION_RULES[fn] = _single(
            lambda x, f, out, a, k: _transpose(x, f, out, _arg(a, k, 1, "dim0"), _arg(a, k, 2, "dim1"))
        )
    _FUNCTION_RULES[torch.unsqueeze] = _single(lambda x, f, out, a, k: _unsqueeze(x, f, out, _arg(a, k, 1, "dim")))
    _FUNCTION_RULES[operator.getitem] = _getitem_rule

    for name in [
        "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "true_divide",
        "neg", "abs", "exp", "log", "sqrt", "rsqrt", "pow", "square", "relu", "relu_",
        "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "clamp_min",
        "clamp_min_", "clamp_max", "clip", "maximum", "minimum", "masked_fill",
        "where", "sign", "contiguous", "clone", "detach", "float", "double", "half",
        "bfloat16", "to", "type", "type_as", "requires_grad_", "expand_as", "expand",
        "lerp", "addcmul", "nan_to_num", "exp_", "abs_", "neg_",
    ]:
        _METHOD_RULES[name] = _all_pointwise
    for name in ["softmax", "log_softmax"]:
        _METHOD_RULES[name] = _dim_rule(1, "dim", None)
    for name in ["chunk", "split", "tensor_split"]:
        _METHOD_RULES[name] = _dim_rule(2, "dim", 0)
    _METHOD_RULES["unbind"] = _single(_unbind)
    for name in ["mean", "sum", "amax", "amin", "std", "var", "logsumexp", "prod"]:
        _METHOD_RULES[name] = _reduction
    for name in ["max", "min"]:
        _METHOD_RULES[name] = _max_min
    _METHOD_RULES["flatten"] = _FUNCTION_RULES[torch.flatten]
    for name in ["view", "reshape", "view_as", "reshape_as"]:
        _METHOD_RULES[name] = _single(lambda x, f, out, a, k: _reshape(x, f, out))
    _METHOD_RULES["permute"] = _single(_permute_rule)
    for name in ["transpose", "swapaxes", "swapdims"]:
        _METHOD_RULES[name] = _FUNCTION_RULES[torch.transpose]
    _METHOD_RULES["unsqueeze"] = _FUNCTION_RULES[torch.unsqueeze]


def _pair_shape(shape: Any) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _getitem_rule(args: tuple, kwargs: dict, fargs: tuple, fkwargs: dict, out: Any) -> Any:
    container, index = args[0], args[1]
    field = fargs[0]
    if not _only_main_varies(fargs, fkwargs):
        return None
    if isinstance(field, _Multi):
        if isinstance(index, slice):
            return _Multi(field.items[index])
        return field.items[index]
    if isinstance(container, torch.Tensor):
        return _getitem(container, field, out, index)
    return None


_register()


# ---------------------------------------------------------------------------
# Exact propagation over the torch.fx graph


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


# ---------------------------------------------------------------------------
# Sequential fallback from forward hooks


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


# ---------------------------------------------------------------------------
# Public functions


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device, torch.get_default_dtype()
    return torch.device("cpu"), torch.get_default_dtype()


class _Record:
    __slots__ = ("calls", "output_shape", "field")

    def __init__(self) -> None:
        self.calls = 0
        self.output_shape: tuple[int, ...] | None = None
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
