"""How one operation transforms the field of a tensor.

Each rule takes the main input ``x``, its field and the operation's output
and returns the output's field, or ``None`` when the units of the output see
the whole input or the field cannot be determined:

* pointwise operations keep the grid and take the union of their inputs'
  fields (with right-aligned broadcasting), which makes residual additions
  exact; an operand that is one value per channel computed from the whole
  image (the gate of a squeeze-and-excitation block, ``x * sigmoid(fc(mean(x)))``)
  keeps the field of the other operands and marks it ``global_context``;
* sliding windows (convolution, pooling, padding, evenly dividing adaptive
  pooling) follow the recursion of Araujo et al. (2019), see
  :func:`~.field._compose`; global or non-divisible adaptive pooling sees
  everything;
* operations along non-spatial dimensions only (softmax over channels,
  ``Linear`` or ``LayerNorm`` over the last dimension) keep the field;
* flatten, reshape, permute, transpose and unsqueeze follow H and W when they
  keep them, and reductions when they do not reduce them;
* basic indexing crops and strides H and W, shifting the field.

Only 2-D spatial layers are modelled: window rules expect the grid on the last
two dimensions (NCHW layout).
"""

from __future__ import annotations

from typing import Any

import torch

from .field import ReceptiveField, _compose, _union, _with_global_context
from .tensor_fields import _CONST, _Multi, _Spatial, _first_tensor


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value[0], value[0]
    if len(value) != 2:
        raise ValueError(f"expected one or two values, got {value}")
    return value


def _pointwise(pairs: list[tuple[torch.Tensor, Any]], out: Any) -> Any:
    """Union rule for ops that keep the spatial grid (with right-aligned broadcasting)."""
    out_t = _first_tensor(out)
    if out_t is None or not pairs:
        return None
    result: _Spatial | None = None
    gated = False
    for tensor, field in pairs:
        if field is _CONST:
            continue
        if isinstance(field, _Multi):
            field = field.first_leaf()
        if field is None and _per_channel(tensor, out_t):
            gated = True  # a gate of global context: scales channels, moves nothing in space
            continue
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
    if gated and result is not None:
        result = _Spatial(_with_global_context(result.rf), result.dims, result.grid)
    return result


def _per_channel(tensor: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether ``tensor`` is one value per (sample, channel) broadcast over ``out``'s 2-D grid."""
    return (tensor.dim() == out.dim() == 4 and tuple(tensor.shape[-2:]) == (1, 1)
            and tuple(out.shape[-2:]) != (1, 1) and tensor.shape[1] in (1, out.shape[1]))


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
    return _Spatial(ReceptiveField(rf.size, stride, start, rf.global_context), dims, grid)
