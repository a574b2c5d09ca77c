"""The elementwise nonlinearities that the backward rules of :mod:`.rules` know, and how to read their calls.

Every activation module's ``forward`` ends in a torch function (``nn.SiLU`` calls ``F.silu``, ``nn.GELU``
calls ``F.gelu``, ``nn.ReLU6`` calls ``F.hardtanh(x, 0, 6)``, ``nn.Sigmoid`` calls ``torch.sigmoid``, ...),
so one table of functions covers modules and functional calls alike. Each entry says which family the
nonlinearity belongs to:

- ``RECTIFIER``: rectifier-like units, whose backward the rules change: the ReLU family (ReLU, ReLU6,
  ``hardtanh(x, 0, max)``, ``threshold``) and its leaky and smooth relatives: LeakyReLU (Maas et al. 2013),
  PReLU (He et al. 2015), RReLU (Xu et al. 2015), ELU (Clevert et al. 2016), SELU (Klambauer et al. 2017),
  CELU (Barron 2017), SiLU/Swish (Elfwing et al. 2018; Ramachandran et al. 2017), GELU (Hendrycks &
  Gimpel 2016, exact and tanh approximation), Hardswish (Howard et al. 2019, MobileNetV3), Mish (Misra
  2019) and Softplus (Dugas et al. 2001). All are ~identity for large inputs and ~0 (or a small slope)
  for negative ones: each is a ReLU with a soft or leaky knee.
- ``GATE``: sigmoid and hard sigmoid, which squeeze-and-excitation blocks (Hu et al. 2018) and
  MobileNetV3 use as multiplicative gates ``x * sigmoid(s)``. :mod:`.rules` decides at the product
  whether one is a gate.
- ``OTHER``: nonlinearities that no rule changes (tanh, ``hardtanh`` with other bounds, softsign,
  log-sigmoid, the shrinkage functions, ``erf``, softmax, GLU). They are watched so that a projection that
  leaves them at their plain gradient says so.

Calls are read by :func:`parse_call` into the entry, the input tensor, the other arguments by name and
whether the call is in place; ``entry.apply(x, **params)`` recomputes the same values out of place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

RECTIFIER, GATE, OTHER = "rectifier", "gate", "other"


@dataclass(frozen=True)
class Nonlinearity:
    """One elementwise nonlinearity.

    Attributes:
        name: short name used in reports (``"silu"``).
        family: ``RECTIFIER``, ``GATE`` or ``OTHER``.
        modules: the ``nn`` module classes whose forward calls it.
        functions: the names of the torch functions that compute it, for messages.
        params: the names of the positional arguments after the input, in call order.
        apply: ``apply(x, **params)``: the same values, out of place (``params`` without ``inplace``).
        mask: for units whose slope is 0 or 1 (the ReLU family): ``mask(x, **params)``, where the slope is 1.
    """

    name: str
    family: str
    modules: tuple[type, ...]
    functions: tuple[str, ...]
    params: tuple[str, ...] = ()
    apply: Callable[..., torch.Tensor] | None = None
    mask: Callable[..., torch.Tensor] | None = None

    def describe(self) -> str:
        """``"silu (nn.SiLU, F.silu)"``: the name with the modules and functions that reach it."""
        names = [f"nn.{m.__name__}" for m in self.modules] + [f for f in self.functions if not f.endswith("_")]
        return f"{self.name} ({', '.join(names)})"


_NAMESPACES = {"F": F, "torch": torch, "Tensor": torch.Tensor}


def _resolve(name: str):
    """The function called ``name`` ("F.silu", "Tensor.relu_", "torch.special.expit"), or None in this torch."""
    head, *rest = name.split(".")
    obj = _NAMESPACES[head]
    for part in rest:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _entry(name, family, modules, functions, params=(), apply=None, mask=None) -> Nonlinearity:
    return Nonlinearity(name, family, tuple(modules), tuple(functions), tuple(params), apply, mask)


RELU = _entry("relu", RECTIFIER, [nn.ReLU], ["F.relu", "torch.relu", "Tensor.relu", "F.relu_", "Tensor.relu_"],
              ["inplace"], lambda x: F.relu(x), lambda x: x > 0)
RELU6 = _entry("relu6", RECTIFIER, [nn.ReLU6], ["F.relu6"], ["inplace"], lambda x: F.relu6(x),
               lambda x: (x > 0) & (x < 6))
CLIPPED_RELU = _entry("hardtanh(0, max)", RECTIFIER, [nn.ReLU6, nn.Hardtanh], ["F.hardtanh", "F.hardtanh_"],
                      ["min_val", "max_val", "inplace"],
                      lambda x, min_val=0.0, max_val=1.0: F.hardtanh(x, min_val, max_val),
                      lambda x, min_val=0.0, max_val=1.0: (x > min_val) & (x < max_val))
HARDTANH = _entry("hardtanh", OTHER, [nn.Hardtanh], ["F.hardtanh", "F.hardtanh_"], ["min_val", "max_val", "inplace"])
THRESHOLD = _entry("threshold", RECTIFIER, [nn.Threshold], ["F.threshold", "torch.threshold", "F.threshold_"],
                   ["threshold", "value", "inplace"], lambda x, threshold, value: F.threshold(x, threshold, value),
                   lambda x, threshold, value: x > threshold)
LEAKY_RELU = _entry("leaky_relu", RECTIFIER, [nn.LeakyReLU], ["F.leaky_relu", "F.leaky_relu_"],
                    ["negative_slope", "inplace"], lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope))
PRELU = _entry("prelu", RECTIFIER, [nn.PReLU], ["F.prelu", "Tensor.prelu"], ["weight"],
               lambda x, weight: F.prelu(x, weight))
RRELU = _entry("rrelu", RECTIFIER, [nn.RReLU], ["F.rrelu", "torch.rrelu", "F.rrelu_"],
               ["lower", "upper", "training", "inplace"],
               lambda x, lower=1 / 8, upper=1 / 3, training=False: F.rrelu(x, lower, upper, training))
ELU = _entry("elu", RECTIFIER, [nn.ELU], ["F.elu", "F.elu_"], ["alpha", "inplace"],
             lambda x, alpha=1.0: F.elu(x, alpha))
SELU = _entry("selu", RECTIFIER, [nn.SELU], ["F.selu", "torch.selu", "torch.selu_"], ["inplace"],
              lambda x: F.selu(x))
CELU = _entry("celu", RECTIFIER, [nn.CELU], ["F.celu", "torch.celu", "torch.celu_"], ["alpha", "inplace"],
              lambda x, alpha=1.0: F.celu(x, alpha))
SILU = _entry("silu", RECTIFIER, [nn.SiLU], ["F.silu"], ["inplace"], lambda x: F.silu(x))
GELU = _entry("gelu", RECTIFIER, [nn.GELU], ["F.gelu"], ["approximate"],
              lambda x, approximate="none": F.gelu(x, approximate=approximate))
HARDSWISH = _entry("hardswish", RECTIFIER, [nn.Hardswish], ["F.hardswish"], ["inplace"], lambda x: F.hardswish(x))
MISH = _entry("mish", RECTIFIER, [nn.Mish], ["F.mish"], ["inplace"], lambda x: F.mish(x))
SOFTPLUS = _entry("softplus", RECTIFIER, [nn.Softplus], ["F.softplus"], ["beta", "threshold"],
                  lambda x, beta=1.0, threshold=20.0: F.softplus(x, beta, threshold))
SIGMOID = _entry("sigmoid", GATE, [nn.Sigmoid],
                 ["torch.sigmoid", "Tensor.sigmoid", "torch.special.expit", "torch.sigmoid_", "Tensor.sigmoid_"],
                 apply=lambda x: torch.sigmoid(x))
HARDSIGMOID = _entry("hardsigmoid", GATE, [nn.Hardsigmoid], ["F.hardsigmoid"], ["inplace"],
                     lambda x: F.hardsigmoid(x))
_OTHERS = [
    _entry("tanh", OTHER, [nn.Tanh], ["torch.tanh", "Tensor.tanh", "torch.tanh_", "Tensor.tanh_"]),
    _entry("softsign", OTHER, [nn.Softsign], ["F.softsign"]),
    _entry("logsigmoid", OTHER, [nn.LogSigmoid], ["F.logsigmoid"]),
    _entry("tanhshrink", OTHER, [nn.Tanhshrink], ["F.tanhshrink"]),
    _entry("softshrink", OTHER, [nn.Softshrink], ["F.softshrink"]),
    _entry("hardshrink", OTHER, [nn.Hardshrink], ["F.hardshrink", "Tensor.hardshrink"]),
    _entry("erf", OTHER, [], ["torch.erf", "Tensor.erf", "torch.special.erf"]),
    _entry("softmax", OTHER, [nn.Softmax, nn.LogSoftmax, nn.Softmax2d],
           ["F.softmax", "torch.softmax", "Tensor.softmax", "F.log_softmax", "torch.log_softmax", "Tensor.log_softmax"]),
    _entry("glu", OTHER, [nn.GLU], ["F.glu"]),
]

NONLINEARITIES: tuple[Nonlinearity, ...] = (
    RELU, RELU6, HARDTANH, THRESHOLD, LEAKY_RELU, PRELU, RRELU, ELU, SELU, CELU, SILU, GELU, HARDSWISH, MISH,
    SOFTPLUS, SIGMOID, HARDSIGMOID, *_OTHERS)
"""Every nonlinearity the rules know (``CLIPPED_RELU`` is ``HARDTANH`` read as a rectifier)."""

# function -> (entry, always in place); a trailing underscore names an in-place function
_CALLS: dict = {}
for _nonlinearity in NONLINEARITIES:
    for _name in _nonlinearity.functions:
        _func = _resolve(_name)
        if _func is not None:
            _CALLS.setdefault(_func, (_nonlinearity, _name.endswith("_")))

ACTIVATION_MODULES: tuple[type, ...] = tuple({m for n in NONLINEARITIES for m in n.modules})
"""The module classes of every known nonlinearity."""
RECTIFIER_MODULES: tuple[type, ...] = tuple({m for n in NONLINEARITIES if n.family == RECTIFIER for m in n.modules})
"""The module classes of the rectifier-like nonlinearities (the ones DeconvNet and guided rules change)."""


@dataclass
class Call:
    """A call of a known nonlinearity: the entry, the input, the other arguments by name, in place or not."""

    nonlinearity: Nonlinearity
    x: torch.Tensor
    params: dict
    inplace: bool

    def apply(self) -> torch.Tensor:
        """The call's values, out of place."""
        return self.nonlinearity.apply(self.x, **self.params)


def parse_call(func, args: tuple, kwargs: dict) -> Call | None:
    """The :class:`Call` when ``func(*args, **kwargs)`` is a known nonlinearity, else None."""
    try:
        found = _CALLS.get(func)
    except TypeError:  # an unhashable callable
        return None
    if found is None:
        return None
    nonlinearity, always_inplace = found
    x = args[0] if args else kwargs.get("input", kwargs.get("self"))
    if not isinstance(x, torch.Tensor):
        return None
    params = dict(zip(nonlinearity.params, args[1:]))
    params.update((k, v) for k, v in kwargs.items() if k not in ("input", "self"))
    inplace = bool(params.pop("inplace", False)) or always_inplace
    if nonlinearity is HARDTANH and params.get("min_val", -1.0) == 0:  # a clipped ReLU
        if params.get("max_val", 1.0) == 6:
            return Call(RELU6, x, {}, inplace)  # nn.ReLU6's forward is hardtanh(x, 0, 6)
        nonlinearity = CLIPPED_RELU
    return Call(nonlinearity, x, params, inplace)


def has_activation_modules(module: nn.Module) -> bool:
    """Whether ``module`` holds any module of a known nonlinearity."""
    return any(isinstance(m, ACTIVATION_MODULES) for m in module.modules())


__all__ = ["ACTIVATION_MODULES", "RECTIFIER_MODULES", "GATE", "NONLINEARITIES", "OTHER", "RECTIFIER", "Call", "Nonlinearity",
           "has_activation_modules", "parse_call"]
