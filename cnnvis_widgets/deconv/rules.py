"""Backward rules at the rectifiers: DeconvNet, guided backprop and the plain gradient.

A DeconvNet projection (Zeiler & Fergus 2014, §2.1) is the backward pass with one change at the
rectifiers; guided backprop (Springenberg et al. 2015, §3.4) is another such change. The rectifiers are
swapped at the level of the torch operations while the projection runs (a
:class:`torch.overrides.TorchFunctionMode` that routes ``relu``, ``relu6`` and ``hardtanh(0, max)`` calls
through a rectifier with the chosen backward rule): ``nn.ReLU``/``nn.ReLU6`` modules, in place or not,
and ``F.relu``/``torch.relu``/``Tensor.relu`` calls inside a ``forward`` are all covered, on any module,
traceable or not, and the user's module is never edited.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

RULES = ("deconvnet", "guided", "gradient")


class _Rectifier(torch.autograd.Function):
    """``clamp(x, 0, upper)`` forward; the backward rule of ``rule`` at the rectifier."""

    @staticmethod
    def forward(ctx, x, rule: str, upper: float | None):
        ctx.rule = rule
        if rule != "deconvnet":  # the deconvnet rule ignores the forward pass's signs
            passes = x > 0
            if upper is not None:
                passes &= x < upper
            ctx.save_for_backward(passes)
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        (passes,) = ctx.saved_tensors
        grad = grad * passes
        return (grad.clamp_min(0) if ctx.rule == "guided" else grad), None, None


def _rectifier_call(func, args, kwargs) -> tuple[torch.Tensor, float | None, bool] | None:
    """(input, upper bound, in place) when ``func(*args, **kwargs)`` is a ReLU-type rectifier, else None."""
    name = getattr(func, "__name__", "")
    x = args[0] if args else kwargs.get("input", kwargs.get("self"))
    if not isinstance(x, torch.Tensor):
        return None
    if func in _RELU_FUNCS:
        inplace = name == "relu_" or bool(args[1] if len(args) > 1 else kwargs.get("inplace", False))
        return x, None, inplace
    if func is F.relu6:
        return x, 6.0, bool(args[1] if len(args) > 1 else kwargs.get("inplace", False))
    if func in (F.hardtanh, F.hardtanh_):
        low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
        high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
        if low != 0:
            return None  # not a rectifier
        inplace = func is F.hardtanh_ or bool(args[3] if len(args) > 3 else kwargs.get("inplace", False))
        return x, float(high), inplace
    return None


_RELU_FUNCS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class rectifier_rule(TorchFunctionMode):
    """Within this block, every ReLU-type call backpropagates with ``rule`` (see the module docstring).

    The forward values are unchanged. In-place calls stay in place (the rectified values are copied
    back into the input tensor), so code that relies on them computes the same forward.
    """

    def __init__(self, rule: str):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
        self.rule = rule

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.rule != "gradient":
            call = _rectifier_call(func, args, kwargs)
            if call is not None:
                x, upper, inplace = call
                out = _Rectifier.apply(x, self.rule, upper)
                return x.copy_(out) if inplace else out
        return func(*args, **kwargs)


__all__ = ["RULES", "rectifier_rule"]
