"""Which rule applies to each operation: leaf modules, torch functions and tensor methods.

:func:`_module_rule` maps a leaf ``nn.Module`` (by type) to a rule of
:mod:`.rules`; ``_FUNCTION_RULES`` (keyed by the callable, for
``call_function`` nodes of :mod:`torch.fx`) and ``_METHOD_RULES`` (keyed by
the method name, for ``call_method`` nodes) do the same for functional code.
The tables are filled by :func:`_register` when this module is imported.
Names missing from the installed torch version are skipped.

Anything not listed gets ``None``: unknown operations are never assumed to
keep the field (transposed convolutions and interpolation, for instance, are
not listed, nor are ``GroupNorm`` and ``InstanceNorm``, whose statistics span
space). Batch norm keeps the field only with running statistics (a
per-channel affine map); ``Linear`` and ``LayerNorm`` keep it only when they
do not act on H or W. An operation with more than one input-dependent
argument is only followed when it is pointwise or a concatenation, and a
pointwise operation gives ``None`` as soon as one of its inputs does: a
squeeze-and-excitation gate (a product with a global average) sees everything.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rules import (
    _adaptive,
    _flatten,
    _getitem,
    _keep_if_untouched,
    _last_dims,
    _norm_dim,
    _pad,
    _permute,
    _pointwise,
    _reduce,
    _remap,
    _reshape,
    _transpose,
    _unsqueeze,
    _window,
)
from .tensor_fields import _CONST, _Multi, _Spatial, _first_tensor, _leaves, _pairs


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
