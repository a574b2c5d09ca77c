"""An independent reference of the documented DeconvNet / guided backward rules, for the tests.

torch's nonlinearities (``F.relu``, ``F.silu``, ``F.hardtanh`` as ReLU6, ...) are patched with a hand-written
autograd function whose backward is the rule as documented in :mod:`cnnvis_widgets.deconv.rules`, with
``f'(x)`` taken from autograd on a detached copy; gates (sigmoid, hard sigmoid) are held at their forward
values. A plain ``torch.autograd.grad`` through the patched network is the reference projection. Nothing of
the package's own rule code is used.
"""

from __future__ import annotations

import contextlib
import inspect
import threading

import torch
import torch.nn.functional as F

import cnnvis_widgets as cv

RECTIFIERS = ["relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "silu", "gelu", "hardswish", "mish", "softplus"]
GATES = ["sigmoid", "hardsigmoid"]
_inside = threading.local()


def _signature(fn) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


_HARDTANH = F.hardtanh


class _Reference(torch.autograd.Function):
    """``fn(x)`` forward; backward by the documented rule, with ``f'(x)`` from autograd on a detached copy."""

    @staticmethod
    def forward(ctx, x, fn, rule):
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            y = fn(xd)
            (slope,) = torch.autograd.grad(y.sum(), xd)  # elementwise: the gradient of the sum is f'(x)
        ctx.save_for_backward(slope)
        ctx.rule = rule
        return y.detach()

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None
        if ctx.rule == "guided":
            return (slope * grad).clamp_min(0), None, None
        return slope * grad, None, None


def _patched(original, kind: str, rule: str):
    def call(x, *args, **kwargs):
        if getattr(_inside, "depth", 0) or not isinstance(x, torch.Tensor) or not x.requires_grad:
            return original(x, *args, **kwargs)
        signature = _signature(original)
        if signature is None:  # a builtin (torch.relu, F.gelu): options by keyword, no in-place flag
            inplace = bool(kwargs.pop("inplace", False))
        else:
            bound = signature.bind(x, *args, **kwargs)
            bound.apply_defaults()
            options = dict(bound.arguments)
            options.pop(next(iter(options)))  # the input
            inplace = bool(options.pop("inplace", False))
            if original is _HARDTANH and options["min_val"] != 0:  # nn.ReLU6 is hardtanh(0, 6); others aren't
                return original(x, *args, **kwargs)
            args, kwargs = (), options
        _inside.depth = 1
        try:
            if kind == "gate":  # held at its forward value: no signal into the gating branch
                out = original(x, *args, **kwargs).detach()
            else:
                out = _Reference.apply(x, lambda t: original(t, *args, **kwargs), rule)
        finally:
            _inside.depth = 0
        return x.copy_(out) if inplace else out
    return call


@contextlib.contextmanager
def reference_rule(rule: str):
    if rule == "gradient":  # the plain gradient, gates included: nothing to patch
        yield
        return
    patches = [(F, name, "rectifier") for name in RECTIFIERS] + [(F, name, "gate") for name in GATES]
    patches += [(torch, "relu", "rectifier"), (torch.Tensor, "relu", "rectifier"), (torch, "sigmoid", "gate"),
                (torch.Tensor, "sigmoid", "gate")]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for (owner, name, kind), (_, _, original) in zip(patches, saved):
            setattr(owner, name, _patched(original, kind, rule))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


class _Reached(Exception):
    pass


# the rectifier modules of the documented rules (a layer that is one is projected from its input)
RECTIFIER_MODULES = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.PReLU, torch.nn.RReLU, torch.nn.ELU,
                     torch.nn.SELU, torch.nn.CELU, torch.nn.SiLU, torch.nn.GELU, torch.nn.Hardswish, torch.nn.Mish,
                     torch.nn.Softplus, torch.nn.Threshold)


def layer_output(model: cv.Model, images: torch.Tensor, layer: str, inputs: bool = False) -> torch.Tensor:
    """``layer``'s output (or a copy of its input) at its last call, the forward stopped there."""
    module, last, seen = dict(model.module.named_modules())[layer], model.layer(layer).calls, []

    def pre_hook(m, args):
        seen.append(args[0].clone())

    def hook(m, args, output):
        if not inputs:
            seen.append(output)
        if len(seen) == last:
            raise _Reached

    handles = [module.register_forward_hook(hook)] + ([module.register_forward_pre_hook(pre_hook)] if inputs else [])
    try:
        model(images)
    except _Reached:
        return seen[-1]
    finally:
        for handle in handles:
            handle.remove()
    raise AssertionError(f"{layer} did not run")


def reference_projection(model: cv.Model, images: torch.Tensor, layer: str, units, positions, values, rule: str):
    """The projection of the given activations with the patched functions and a plain backward; a layer that is
    a rectifier module is seeded at its input under the DeconvNet and guided rules (its own rectifier passes
    the seed), as documented in ``cnnvis_widgets.deconv.projection.deconvnet``."""
    x = images.clone().requires_grad_(True)
    from_input = rule != "gradient" and isinstance(dict(model.module.named_modules())[layer], RECTIFIER_MODULES)
    with model.inference(), torch.enable_grad(), reference_rule(rule):
        activation = layer_output(model, x, layer, inputs=from_input)
    seed = torch.zeros_like(activation)
    for row, (unit, (r, c), value) in enumerate(zip(units, positions, values)):
        seed[row, unit, r, c] = float(value)
    (projection,) = torch.autograd.grad(activation, x, seed)
    return projection
