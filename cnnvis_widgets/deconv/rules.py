"""Backward rules at the nonlinearities: DeconvNet, guided backprop and the plain gradient.

A DeconvNet projection (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks",
§2.1) is the backward pass with one change at the rectifiers; guided backprop (Springenberg et al. 2015,
"Striving for Simplicity: The All Convolutional Net", §3.4, Fig. 1) is another such change. Both papers
define the change for ReLU only. The rules here, for a unit ``y = f(x)`` whose output receives the
backward signal ``g``:

- ``"deconvnet"``: ``relu(g)`` at every rectifier-like unit (the table of :mod:`.nonlinearities`: the ReLU
  family, LeakyReLU, PReLU, RReLU, ELU, SELU, CELU, SiLU, GELU, Hardswish, Mish, Softplus). This is Zeiler
  & Fergus's rule as they state it: the reconstruction is passed through a ReLU, and the forward signal is
  never looked at, so it applies unchanged to any unit that plays a rectifier's role.
- ``"guided"``: ``relu(f'(x) * g)`` (``rectifiers="slope"``, the default). For ReLU, ``f'(x) = 1[x > 0]``
  and this is exactly Springenberg et al.'s ``1[x > 0] * relu(g)``; for a smooth or leaky unit it keeps
  only the positive signals after the unit's own local slope, which is also what Captum's
  ``GuidedBackprop`` (Kokhlikyan et al. 2020) computes on any module it hooks: the ReLU of the module's
  input gradient. ``rectifiers="relu"`` reads every rectifier-like unit as the ReLU it approximates and
  applies Springenberg et al.'s mask as written, ``1[x > 0] * relu(g)``: the sign of the forward input
  (their "bottom data"), not the slope, gates the signal. The ReLU family (ReLU, ReLU6,
  ``hardtanh(0, max)``, ``threshold``), whose slope is 0 or 1, gives the same under both options.
- ``"gradient"``: the plain gradient ``f'(x) * g`` everywhere (Simonyan et al. 2014's saliency, without the
  absolute value); nothing is changed.

Gates are not rectifiers. In a squeeze-and-excitation block (Hu et al. 2018) the features are scaled by
``sigmoid(s)`` (MobileNetV3: ``hardsigmoid(s)``), a gate computed from the features themselves. With
``gates="constant"`` (default) a gate is held at its forward value: the signal passes through the product
to the gated features, scaled by the gate, and none flows into the gating branch, as layer-wise relevance
propagation treats multiplicative gates (Arras et al. 2017, "Explaining Recurrent Neural Network
Predictions in Sentiment Analysis", §3: the gate gets no relevance, the gated signal takes all of it);
this keeps the projection a map of the features the unit sees, not of what sets their gain.
``gates="gradient"`` differentiates through the gate as the plain gradient does.

A sigmoid or hard sigmoid counts as a gate where its output (or a view of it: ``view``, ``expand``,
``unsqueeze``, ...) multiplies a tensor that carries the signal (one that requires grad). That catches SE
blocks whatever the gate's shape, and GLU-style gates, but not a sigmoid used as an output squashing or
scaled by a constant. A product of ``x`` with the sigmoid (hard sigmoid) of that same ``x`` is SiLU
(Hardswish) written out, and gets the rectifier rule.

Everything is swapped at the level of torch operations while the projection runs: :class:`rectifier_rule`
is a :class:`torch.overrides.TorchFunctionMode`, and every activation module's forward ends in the
functional calls it catches (``nn.SiLU`` in ``F.silu``, ``nn.ReLU6`` in ``F.hardtanh(x, 0, 6)``, ...), so
modules, functional calls and tensor methods, in place or not, are covered on any module, traceable or
not, and the user's module is never edited. Calls made while grad is off (``torch.no_grad``, the forward
of a custom ``autograd.Function``) pass through untouched: their backward is not the rule's to change.

Nothing degrades silently. The mode records which nonlinearities the forward hit and which it changed;
:meth:`rectifier_rule.check` warns once (:class:`UnchangedNonlinearityWarning`) when some that ran are left
at their plain gradient (tanh, a sigmoid that gates nothing, gates with ``gates="gradient"``, ...), and
raises :class:`RuleHasNoEffectError` when the rule changed nothing at all, since the result would be the
plain gradient under another name.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .nonlinearities import GATE, OTHER, RECTIFIER, Call, has_activation_modules, parse_call

RULES = ("deconvnet", "guided", "gradient")
GATES = ("constant", "gradient")
RECTIFIERS = ("slope", "relu")


class UnchangedNonlinearityWarning(UserWarning):
    """A projection rule left some nonlinearities of the network at their plain gradient."""


class RuleHasNoEffectError(ValueError):
    """A projection rule changed no nonlinearity: its result would be the plain gradient."""


def check_options(rule: str, gates: str = "constant", rectifiers: str = "slope") -> None:
    """Raise a ValueError naming the valid values when an option is not one of them."""
    for name, value, valid in (("rule", rule, RULES), ("gates", gates, GATES), ("rectifiers", rectifiers, RECTIFIERS)):
        if value not in valid:
            raise ValueError(f"{name} must be one of {', '.join(valid)}; got {value!r}.")


class _RectifierBackward(torch.autograd.Function):
    """``unit(x)`` forward, values unchanged; the rule's backward signal instead of ``f'(x) * g``.

    ``mask(x)``, when given, is where the guided rule lets the signal through (the ReLU family's slope, or
    ``x > 0`` under ``rectifiers="relu"``); without it the guided rule uses the slope ``f'(x)``, taken by
    autograd from the same call of ``unit`` that gives the forward values.
    """

    @staticmethod
    def forward(ctx, x, unit, mask, rule: str):
        ctx.rule = rule
        if rule == "deconvnet":  # Zeiler & Fergus's rule never looks at the forward signal
            return unit(x)
        if mask is not None:
            ctx.save_for_backward(mask(x))
            return unit(x)
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            y = unit(xd)
            (slope,) = torch.autograd.grad(y, xd, torch.ones_like(y))
        ctx.save_for_backward(slope)
        return y.detach()

    @staticmethod
    def backward(ctx, grad):
        if ctx.rule == "deconvnet":
            return grad.clamp_min(0), None, None, None
        (gate,) = ctx.saved_tensors
        return (grad * gate).clamp_min(0), None, None, None


def _positive(x: torch.Tensor) -> torch.Tensor:
    return x > 0


@dataclass(eq=False)
class _GateCandidate:
    """The output of a sigmoid or hard sigmoid, until a product shows whether it gates something."""

    kind: str  # "sigmoid" or "hardsigmoid"
    source: weakref.ref | None  # the sigmoid's input (None for in-place calls)
    used: bool = False


_PRODUCTS = {torch.mul, torch.multiply, torch.Tensor.mul, torch.Tensor.multiply, torch.Tensor.__mul__,
             torch.Tensor.__rmul__}
_INPLACE_PRODUCTS = {torch.Tensor.mul_, torch.Tensor.multiply_, torch.Tensor.__imul__}
_VIEWS = {getattr(torch.Tensor, n) for n in ("view", "view_as", "reshape", "reshape_as", "expand", "expand_as",
                                             "unsqueeze", "squeeze", "flatten", "permute", "transpose",
                                             "contiguous", "to", "type_as", "float", "half", "bfloat16",
                                             "__getitem__")}
_VIEWS |= {torch.reshape, torch.unsqueeze, torch.squeeze, torch.flatten, torch.permute, torch.transpose}
_WRITTEN_OUT = {"sigmoid": ("silu (x * sigmoid(x))", torch.sigmoid),
                "hardsigmoid": ("hardswish (x * hardsigmoid(x))", F.hardsigmoid)}
_WARNED: set[frozenset[str]] = set()


def _times(x: torch.Tensor, squash) -> torch.Tensor:
    return x * squash(x)


class rectifier_rule(TorchFunctionMode):
    """Within this block, every nonlinearity backpropagates with ``rule`` (see the module docstring).

    Args:
        rule: ``"deconvnet"``, ``"guided"`` or ``"gradient"``.
        gates: ``"constant"`` (gates held at their forward values) or ``"gradient"``.
        rectifiers: how the guided rule gates the signal at a rectifier-like unit: ``"slope"`` (its local
            slope ``f'(x)``) or ``"relu"`` (``1[x > 0]``, the unit read as a ReLU).

    The forward values are unchanged. In-place calls stay in place (the values are copied back into the
    input tensor), so code that relies on them computes the same forward. After the block, :attr:`changed`
    and :attr:`unchanged` count the calls per nonlinearity that the rule changed and left at their plain
    gradient, :meth:`summary` says what happened to each, and :meth:`check` warns or raises about them.
    """

    def __init__(self, rule: str, gates: str = "constant", rectifiers: str = "slope"):
        super().__init__()
        check_options(rule, gates, rectifiers)
        self.rule, self.gates, self.rectifiers = rule, gates, rectifiers
        self.changed: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()
        self._descriptions: dict[str, str] = {}
        self._candidates: dict[int, tuple[weakref.ref, _GateCandidate]] = {}

    # -- the mode -----------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.rule == "gradient" or not torch.is_grad_enabled():
            return func(*args, **kwargs)
        call = parse_call(func, args, kwargs)
        if call is not None:
            return self._nonlinearity(func, args, kwargs, call)
        if func in _PRODUCTS or func in _INPLACE_PRODUCTS:
            return self._product(func, args, kwargs)
        out = func(*args, **kwargs)
        if func in _VIEWS and args and isinstance(out, torch.Tensor):
            candidate = self._candidate(args[0])
            if candidate is not None and out is not args[0]:
                self._remember(out, candidate)
        return out

    def __exit__(self, exc_type, exc_value, traceback):
        result = super().__exit__(exc_type, exc_value, traceback)
        seen: set[int] = set()
        for ref, candidate in self._candidates.values():  # sigmoids that gated nothing kept their gradient
            if not candidate.used and id(candidate) not in seen:
                seen.add(id(candidate))
                self._count(self.unchanged, candidate.kind, self._descriptions.get(candidate.kind, candidate.kind))
        self._candidates.clear()
        return result

    def _nonlinearity(self, func, args, kwargs, call: Call):
        unit = call.nonlinearity
        if unit.family == RECTIFIER:
            mask = None
            if unit.mask is not None:
                mask = functools.partial(unit.mask, **call.params)
            elif self.rectifiers == "relu":
                mask = _positive
            out = _RectifierBackward.apply(call.x, functools.partial(unit.apply, **call.params), mask, self.rule)
            self._count(self.changed, unit.name, unit.describe())
            return call.x.copy_(out) if call.inplace else out
        out = func(*args, **kwargs)
        if unit.family == GATE:
            self._descriptions.setdefault(unit.name, unit.describe())
            self._remember(out, _GateCandidate(unit.name, None if call.inplace else weakref.ref(call.x)))
        else:
            assert unit.family == OTHER
            self._count(self.unchanged, unit.name, unit.describe())
        return out

    def _product(self, func, args, kwargs):
        if len(args) < 2 and "other" not in kwargs:
            return func(*args, **kwargs)
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other")
        ca, cb = self._candidate(a), self._candidate(b)
        if (ca is None) == (cb is None):  # no gate, or two gates: not a gated signal
            return func(*args, **kwargs)
        gate, signal, candidate = (a, b, ca) if ca is not None else (b, a, cb)
        if not isinstance(signal, torch.Tensor) or not signal.requires_grad:
            return func(*args, **kwargs)  # a gate scaled by a constant: no signal is gated
        candidate.used = True
        inplace = func in _INPLACE_PRODUCTS
        if candidate.source is not None and candidate.source() is signal:  # SiLU or Hardswish written out
            name, squash = _WRITTEN_OUT[candidate.kind]
            mask = _positive if self.rectifiers == "relu" else None
            out = _RectifierBackward.apply(signal, functools.partial(_times, squash=squash), mask, self.rule)
            self._count(self.changed, name, name)
            return a.copy_(out) if inplace else out
        name = f"{candidate.kind} gate"
        self._descriptions.setdefault(name, f"{self._descriptions[candidate.kind]} gating features")
        if self.gates == "gradient":
            self._count(self.unchanged, name, self._descriptions[name])
            return func(*args, **kwargs)
        self._count(self.changed, name, self._descriptions[name])
        if inplace and gate is a:  # gate.mul_(signal): the product of the held gate, written into the gate
            return a.copy_(a.detach() * b)
        args, kwargs, held = list(args), dict(kwargs), gate.detach()
        slot = 0 if gate is a else 1
        if len(args) > slot:
            args[slot] = held
        else:
            kwargs["input" if slot == 0 else "other"] = held
        return func(*args, **kwargs)

    # -- bookkeeping (host-side Python, no device work) --------------------------------------------------
    def _count(self, counter: Counter, name: str, description: str) -> None:
        counter[name] += 1
        self._descriptions.setdefault(name, description)

    def _remember(self, tensor: torch.Tensor, candidate: _GateCandidate) -> None:
        self._candidates[id(tensor)] = (weakref.ref(tensor), candidate)

    def _candidate(self, tensor) -> _GateCandidate | None:
        if not isinstance(tensor, torch.Tensor):
            return None
        found = self._candidates.get(id(tensor))
        return found[1] if found is not None and found[0]() is tensor else None

    # -- the report ---------------------------------------------------------------------------------------
    def summary(self) -> dict[str, str]:
        """What happened to each nonlinearity the forward hit: the rule's name, ``"held constant"`` for a
        held gate, or ``"plain gradient"``."""
        done = {name: "held constant" if name.endswith(" gate") else self.rule for name in self.changed}
        return {**done, **{name: "plain gradient" for name in self.unchanged}}

    def check(self, module: nn.Module | None = None, where: str = "") -> None:
        """Warn or raise about what the rule did (call after the block).

        Raises :class:`RuleHasNoEffectError` when the rule is not ``"gradient"`` and changed nothing, either
        because every nonlinearity that ran is one it leaves alone, or because none ran and ``module`` (when
        given) has no activation module at all. When none ran but ``module`` has some (the layer comes
        before the network's first nonlinearity), every rule gives the same result, and nothing is said.
        Warns once per process and set of types (:class:`UnchangedNonlinearityWarning`) when the rule
        changed some nonlinearities but left others at their plain gradient.
        """
        if self.rule == "gradient":
            return
        where = f" up to {where}" if where else ""
        left = sorted(self.unchanged)
        described = "; ".join(self._descriptions.get(name, name) for name in left)
        if not self.changed:
            if left:
                raise RuleHasNoEffectError(
                    f"rule={self.rule!r} changed none of the nonlinearities that ran{where}: {described}. The result "
                    f"would be the plain gradient under another name. {self._advice(left)}")
            if module is None or not has_activation_modules(module):
                raise RuleHasNoEffectError(
                    f"No nonlinearity that rule={self.rule!r} knows ran{where}, and the network has no activation "
                    "module, so the result would be the plain gradient under another name. Pass rule='gradient' "
                    "(the same numbers, asked for knowingly). If the network's nonlinearities are custom "
                    "autograd Functions or operations the rules do not know, write them with torch's activations "
                    "(nn.ReLU, nn.SiLU, F.gelu, ...) so that the rule can change them.")
            return
        if left and frozenset(left) not in _WARNED:
            _WARNED.add(frozenset(left))
            warnings.warn(
                f"rule={self.rule!r} left these nonlinearities{where} at their plain gradient: {described}. The "
                f"result mixes the rule with the plain gradient there. {self._advice(left)} To accept the mix, "
                "filter cnnvis_widgets.deconv.rules.UnchangedNonlinearityWarning.",
                UnchangedNonlinearityWarning, stacklevel=3)

    def _advice(self, left: list[str]) -> str:
        advice = []
        if any(not name.endswith(" gate") for name in left):
            advice.append("DeconvNet and guided backprop define no rule for these units (only for rectifier-like "
                          "units and gates, see cnnvis_widgets.deconv.rules)")
        if any(name.endswith(" gate") for name in left):
            advice.append("pass gates='constant' to hold the gates at their forward values")
        advice.append("pass rule='gradient' for the plain gradient throughout")
        text = "; ".join(advice)
        return text[0].upper() + text[1:] + "."

__all__ = ["GATES", "RECTIFIERS", "RULES", "RuleHasNoEffectError", "UnchangedNonlinearityWarning", "check_options",
           "rectifier_rule"]
