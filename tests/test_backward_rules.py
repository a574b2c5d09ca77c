"""Backward rules at nonlinearities a projection cannot change: it warns or raises, never degrades silently.

Small hand-built networks, so that which nonlinearity ran is known exactly. The numbers of each rule against
an independent reference are in ``test_model_zoo.py`` (real architectures) and ``test_deconvnet.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.deconv import rules
from cnnvis_widgets.deconv.rules import RuleHasNoEffectError, UnchangedNonlinearityWarning


@pytest.fixture(autouse=True)
def _fresh_warning_registry(monkeypatch):
    """Each test sees the once-per-process warnings as new."""
    monkeypatch.setattr(rules, "_WARNED", set())


def _images(n=2, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _wrap(module, size=16):
    torch.manual_seed(0)
    return cv.Model(module.eval(), mean=(0.5,) * 3, std=(0.25,) * 3, input_size=(3, size, size))


class Mixed(nn.Module):
    """A ReLU the rules change, then a tanh they cannot."""

    def __init__(self):
        super().__init__()
        self.conv1, self.act1 = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()
        self.conv2, self.act2 = nn.Conv2d(6, 6, 3, padding=1), nn.Tanh()
        self.conv3 = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        return self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))


class TanhOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.act = nn.Conv2d(3, 6, 3, padding=1), nn.Tanh()
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


class _Square(torch.autograd.Function):
    """A custom nonlinearity: the rules cannot see inside it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x.abs()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x.abs() * g


class CustomFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        return self.conv2(_Square.apply(self.conv1(x)))


class SqueezeExcite(nn.Module):
    """conv → SiLU → SE gate (sigmoid) → conv: a rectifier and a gate."""

    def __init__(self):
        super().__init__()
        self.conv1, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.SiLU()
        self.reduce, self.expand = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        h = self.act(self.conv1(x))
        gate = torch.sigmoid(self.expand(F.relu(self.reduce(h.mean((2, 3), keepdim=True)))))
        return self.conv2(h * gate)


class Functional(nn.Module):
    """The same network written with modules or with functional calls and tensor methods."""

    def __init__(self, functional: bool):
        super().__init__()
        self.functional = functional
        self.conv1, self.conv2, self.conv3 = (nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1),
                                              nn.Conv2d(6, 4, 3, padding=1))
        self.silu, self.gelu = nn.SiLU(), nn.GELU()

    def forward(self, x):
        if self.functional:
            return self.conv3(F.gelu(self.conv2(F.silu(self.conv1(x)))))
        return self.conv3(self.gelu(self.conv2(self.silu(self.conv1(x)))))


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_a_nonlinearity_left_at_its_gradient_warns_once_naming_it(rule):
    model = _wrap(Mixed())
    with pytest.warns(UnchangedNonlinearityWarning) as caught:
        p = cv.deconvnet(model, _images(), "conv3", rule=rule)
    message = str(caught[0].message)
    assert "tanh" in message.lower() and "rule='gradient'" in message
    assert p.nonlinearities.get("tanh") == "plain gradient"
    assert p.nonlinearities.get("relu") == rule
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnchangedNonlinearityWarning)
        cv.deconvnet(model, _images(seed=1), "conv3", rule=rule)  # once per process and set of types
    gradient = cv.deconvnet(model, _images(), "conv3", rule="gradient")
    assert not np.allclose(p.projections, gradient.projections)  # the ReLU was still changed


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_a_rule_that_changes_nothing_raises_with_what_to_do(rule):
    with pytest.raises(RuleHasNoEffectError, match="rule='gradient'") as error:
        cv.deconvnet(_wrap(TanhOnly()), _images(), "conv2", rule=rule)
    assert "tanh" in str(error.value).lower()
    cv.deconvnet(_wrap(TanhOnly()), _images(), "conv2", rule="gradient")  # asked for knowingly: fine


def test_a_custom_autograd_nonlinearity_raises_and_says_how_to_write_it():
    with pytest.raises(RuleHasNoEffectError, match=r"nn\.ReLU") as error:
        cv.deconvnet(_wrap(CustomFunction()), _images(), "conv2", rule="deconvnet")
    assert "rule='gradient'" in str(error.value)


def test_a_layer_before_the_first_nonlinearity_needs_no_rule():
    p = cv.deconvnet(_wrap(Mixed()), _images(), "conv1", rule="deconvnet")
    g = cv.deconvnet(_wrap(Mixed()), _images(), "conv1", rule="gradient")
    np.testing.assert_allclose(p.projections, g.projections, rtol=1e-5, atol=1e-7)


def test_gates_held_constant_or_differentiated_and_the_gradient_option_warns():
    model = _wrap(SqueezeExcite())
    held = cv.deconvnet(model, _images(), "conv2", rule="deconvnet")
    assert held.nonlinearities.get("sigmoid gate") == "held constant"
    with pytest.warns(UnchangedNonlinearityWarning, match="gates='constant'"):
        through = cv.deconvnet(model, _images(), "conv2", rule="deconvnet", gates="gradient")
    assert through.nonlinearities.get("sigmoid gate") == "plain gradient"
    assert not np.allclose(held.projections, through.projections)
    gradient = cv.deconvnet(model, _images(), "conv2", rule="gradient")
    assert not np.allclose(held.projections, gradient.projections)


def test_gate_held_constant_equals_a_detached_gate():
    """Planted: holding the gate at its forward value is the backward of the network with the gate detached,
    and the rectifier rule written out by hand."""
    se = SqueezeExcite().eval()
    model = _wrap(se)
    images = _images(1)
    p = cv.deconvnet(model, images, "conv2", unit=[1], image_indices=[0], rule="deconvnet")

    class _DeconvSiLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return F.silu(x)

        @staticmethod
        def backward(ctx, g):
            return g.clamp(min=0)

    x = ((images - 0.5) / 0.25).requires_grad_(True)
    h = _DeconvSiLU.apply(se.conv1(x))
    with torch.no_grad():
        gate = torch.sigmoid(se.expand(F.relu(se.reduce(h.mean((2, 3), keepdim=True)))))
    out = se.conv2(h * gate)[0, 1]
    row, col = p.positions[0]
    (grad,) = torch.autograd.grad(out[row, col], x)
    # seeded with the activation's value (Zeiler & Fergus), through the wrapper's normalization to [0, 1] pixels
    expected = (grad * out[row, col].detach() / 0.25).numpy()
    np.testing.assert_allclose(p.values[0], float(out[row, col]), rtol=1e-5)
    np.testing.assert_allclose(p.projections[0], expected[0], rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_functional_calls_get_the_same_rule_as_modules():
    modules, functional = Functional(False), Functional(True)
    functional.load_state_dict(modules.state_dict())
    for rule in ("deconvnet", "guided"):
        a = cv.deconvnet(_wrap(modules), _images(), "conv3", rule=rule)
        b = cv.deconvnet(_wrap(functional), _images(), "conv3", rule=rule)
        np.testing.assert_allclose(a.projections, b.projections, rtol=1e-5, atol=1e-8)
        assert set(a.nonlinearities) == set(b.nonlinearities) == {"silu", "gelu"}
        g = cv.deconvnet(_wrap(modules), _images(), "conv3", rule="gradient")
        assert not np.allclose(a.projections, g.projections)


@pytest.mark.parametrize("options, bad", [(dict(rule="deconv"), "rule"), (dict(rule="guided", gates="hold"), "gates"),
                                          (dict(rule="guided", rectifiers="sign"), "rectifiers")])
def test_unknown_options_name_the_valid_ones(options, bad):
    with pytest.raises(ValueError, match=bad) as error:
        cv.deconvnet(_wrap(Mixed()), _images(), "conv3", **options)
    valid = {"rule": rules.RULES, "gates": rules.GATES, "rectifiers": rules.RECTIFIERS}[bad]
    assert all(v in str(error.value) for v in valid)
