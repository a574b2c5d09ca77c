"""DeconvNet projections against Captum, against an explicitly built deconvnet, and against autograd."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.deconv.projection import deconvnet, display_projection
from cnnvis_widgets.deconv.rules import rectifier_rule


def _relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _captum(model, layer, x, result, rule):
    """Captum's neuron attribution for each row of ``result``, as a projection on the [0, 1] image."""
    from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop

    method = {"deconvnet": NeuronDeconvolution, "guided": NeuronGuidedBackprop}[rule]
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    out = []
    for i in range(len(result)):
        xn = model.normalize(x[i:i + 1]).clone().requires_grad_(True)
        r, c = (int(v) for v in result.positions[i])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attr = method(model.module, model.submodule(layer)).attribute(
                xn, neuron_selector=(int(result.units[i]), r, c))
        out.append((attr / std * float(result.values[i])).detach().numpy()[0])  # chain rule through (x-m)/s
    return np.stack(out)


CASES = [("mini_alexnet", "conv2"), ("mini_alexnet", "conv5"), ("alexnet", "features.3"), ("alexnet", "features.10"),
         ("vgg16", "features.28")]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"mini_alexnet": cv.load_model("mini_alexnet", device="cpu"),
            "alexnet": cv.load_model("alexnet", weights=None, device="cpu"),
            "vgg16": cv.load_model("vgg16", weights=None, device="cpu")}


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
@pytest.mark.parametrize("name,layer", CASES, ids=[f"{n}-{l}" for n, l in CASES])
def test_matches_captum(models, name, layer, rule):
    model = models[name]
    x = torch.rand(2, *model.input_size, generator=torch.Generator().manual_seed(1))
    result = deconvnet(model, x, layer, rule=rule)  # each image's strongest unit, at its strongest position
    assert (result.values > 0).all()
    reference = _captum(model, layer, x, result, rule)
    assert np.abs(reference).max() > 0
    for ours, theirs in zip(result.projections, reference):
        assert _relative_error(ours, theirs) < 1e-5


def test_gradient_rule_is_plain_autograd(models):
    model = models["mini_alexnet"]
    x = torch.rand(3, *model.input_size, generator=torch.Generator().manual_seed(2))
    result = deconvnet(model, x, "conv4", unit=[1, 7, 30], rule="gradient")
    head = model.module[:model.layers.names.index("conv4") + 1]  # Sequential up to conv4
    for i in range(3):
        xi = x[i:i + 1].clone().requires_grad_(True)
        act = head(model.normalize(xi))[0, result.units[i]]
        r, c = result.positions[i]
        assert act.detach().flatten().argmax() == r * act.shape[-1] + c  # the strongest position by default
        (grad,) = torch.autograd.grad(act[r, c], xi)
        np.testing.assert_allclose(result.projections[i], (grad[0] * act[r, c]).detach().numpy(), rtol=0,
                                   atol=1e-6 * float(grad.abs().max() * act[r, c].detach().abs()))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv2(self.pool1(self.relu(self.conv1(x)))))


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_equals_an_explicit_deconvnet(rule):
    """Zeiler & Fergus's deconvnet built by hand: transposed conv2, max-unpooling with the switches,
    rectification, transposed conv1 (non-overlapping pooling, where unpooling is well defined)."""
    torch.manual_seed(3)
    net = SmallCNN().eval()
    model = cv.Model(net, input_size=(3, 32, 32))
    x = torch.rand(4, 3, 32, 32)
    result = deconvnet(model, x, "conv2", unit=[0, 1, 2, 3], rule=rule)

    with torch.no_grad():
        xn = model.normalize(x)
        h1 = net.conv1(xn)
        r1 = F.relu(h1)
        p1, switches = F.max_pool2d(r1, 2, 2, return_indices=True)
        h2 = net.conv2(p1)
        seed = torch.zeros_like(h2)
        for i in range(4):
            r, c = result.positions[i]
            seed[i, result.units[i], r, c] = h2[i, result.units[i], r, c]
        g = F.conv_transpose2d(seed, net.conv2.weight, padding=1)  # transposed filtering, tied weights
        g = F.max_unpool2d(g, switches, 2, 2, output_size=r1.shape[-2:])  # unpooling with the switches
        g = F.relu(g) if rule == "deconvnet" else F.relu(g) * (h1 > 0)  # rectification
        g = F.conv_transpose2d(g, net.conv1.weight, stride=2, padding=2, output_padding=1)
        g = g / torch.tensor(model.std).view(1, 3, 1, 1)
    np.testing.assert_allclose(result.values, h2.amax((2, 3))[torch.arange(4), torch.tensor(result.units)], rtol=1e-6)
    for ours, theirs in zip(result.projections, g.numpy()):
        assert _relative_error(ours, theirs) < 1e-5


class FunctionalReLU(nn.Module):
    """The same network as ``ModuleReLU``, with its rectifiers called as functions inside forward."""

    def __init__(self, relu6: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.relu6 = relu6

    def forward(self, x):
        h = self.conv1(x)
        h = F.relu6(h) if self.relu6 else F.relu(h)
        return self.conv2(h).relu()


class ModuleReLU(nn.Sequential):
    def __init__(self, source: FunctionalReLU, relu6: bool = False):
        super().__init__(source.conv1, nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True), source.conv2,
                         nn.ReLU())


def _manual(net, model, x, result, rule, upper=None):
    """The rectifier rule applied by hand between conv2's transposed filtering and conv1's."""
    with torch.no_grad():
        h1 = net.conv1(model.normalize(x))
        h2 = net.conv2(h1.clamp(0, upper))
        seed = torch.zeros_like(h2)
        for i in range(len(x)):
            r, c = result.positions[i]
            seed[i, result.units[i], r, c] = h2[i, result.units[i], r, c]
        g = F.conv_transpose2d(seed, net.conv2.weight, padding=1)
        passes = (h1 > 0) & (h1 < upper) if upper is not None else h1 > 0
        g = {"deconvnet": F.relu(g), "guided": F.relu(g) * passes, "gradient": g * passes}[rule]
        g = F.conv_transpose2d(g, net.conv1.weight, padding=1)
        return (g / torch.tensor(model.std).view(1, 3, 1, 1)).numpy()


@pytest.mark.parametrize("relu6", [False, True], ids=["relu", "relu6"])
@pytest.mark.parametrize("rule", ["deconvnet", "guided", "gradient"])
def test_functional_and_relu6_rectifiers_follow_the_rule(rule, relu6):
    torch.manual_seed(4)
    net = FunctionalReLU(relu6).eval()
    with torch.no_grad():
        net.conv1.weight.mul_(8)  # so that some conv1 outputs exceed 6 and ReLU6's upper bound matters
    x = torch.rand(3, 3, 16, 16)
    functional = cv.Model(net, input_size=(3, 16, 16))
    modules = cv.Model(ModuleReLU(net, relu6), input_size=(3, 16, 16))
    if relu6:
        assert (net.conv1(functional.normalize(x)) > 6).float().mean() > 0.05
    ours = deconvnet(functional, x, "conv2", unit=[0, 1, 2], rule=rule)
    via_modules = deconvnet(modules, x, "2", unit=[0, 1, 2], rule=rule)
    expected = _manual(net, functional, x, ours, rule, 6.0 if relu6 else None)
    for a, b, c in zip(ours.projections, via_modules.projections, expected):
        assert _relative_error(a, c) < 1e-5
        assert _relative_error(b, c) < 1e-5
    if rule != "gradient":  # the rule really changed the backward pass
        plain = deconvnet(functional, x, "conv2", unit=[0, 1, 2], rule="gradient")
        assert _relative_error(ours.projections, plain.projections) > 0.05


def test_forward_unchanged_and_module_untouched(models):
    model = models["alexnet"]
    net = model.module
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    x = torch.rand(2, *model.input_size, generator=torch.Generator().manual_seed(5))
    net.eval()
    with torch.no_grad():
        expected = model(x)
        with rectifier_rule("deconvnet"):
            under_rule = model(x)  # in-place ReLUs stay in place: the same forward
    torch.testing.assert_close(under_rule, expected, rtol=0, atol=0)
    net.train()
    deconvnet(model, x, "features.8", unit=3, rule="guided")
    assert [m.training for m in net.modules()] == flags
    assert [p.requires_grad for p in net.parameters()] == grads
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert all(not m._forward_hooks and not m._backward_hooks for m in net.modules())
    net.eval()


def test_batched_rows_equal_one_at_a_time(models):
    model = models["mini_alexnet"]
    image = torch.rand(1, *model.input_size, generator=torch.Generator().manual_seed(6))
    units = [0, 5, 9, 20, 41, 63]
    together = deconvnet(model, image, "conv5", unit=units, image_indices=[0] * len(units), batch_size=64)
    for i, u in enumerate(units):
        alone = deconvnet(model, image, "conv5", unit=u)
        np.testing.assert_array_equal(together.positions[i], alone.positions[0])
        assert _relative_error(together.projections[i], alone.projections[0]) < 1e-5


def test_given_position_and_fully_connected_layers(models):
    model = models["mini_alexnet"]
    x = torch.rand(2, *model.input_size, generator=torch.Generator().manual_seed(7))
    at = deconvnet(model, x, "conv3", unit=4, position=(2, 3))
    assert (at.positions == [[2, 3], [2, 3]]).all()
    fc = deconvnet(model, x, "fc8", unit=[0, 31])
    assert (fc.positions == -1).all() and np.abs(fc.projections).max() > 0


@pytest.mark.parametrize("name,layer", [("resnet18", "layer3.1"), ("resnet18", "layer2.0.conv1"),
                                        ("googlenet", "inception4a")])
def test_residual_and_inception_models(name, layer):
    torch.manual_seed(8)
    model = cv.load_model(name, weights=None, device="cpu")
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(8))
    result = deconvnet(model, x, layer)
    rf = model.layer(layer).receptive_field
    r, c = result.positions[0]
    top, left, bottom, right = rf.clipped_box(int(r), int(c), 224, 224)
    energy = np.abs(result.projections[0]).sum((0))
    inside = energy[top:bottom, left:right].sum()
    assert inside > 0 and np.isclose(inside, energy.sum())  # all of it inside the receptive field


def test_display_projection_centres_zero():
    p = np.zeros((2, 3, 4, 4), np.float32)
    p[0, 0, 0, 0], p[1, 1, 2, 2] = 3.0, -5.0
    shown = display_projection(p, percentile=100)
    assert shown[0, 0, 0, 0] == 1.0 and shown[1, 1, 2, 2] == 0.0 and shown[0, 1, 1, 1] == 0.5


def test_errors_tell_what_to_do(models):
    model = models["mini_alexnet"]
    x = torch.rand(1, *model.input_size)
    with pytest.raises(ValueError, match="rule must be one of"):
        deconvnet(model, x, "conv5", rule="backprop")
    with pytest.raises(ValueError, match="numbered 0..63"):
        deconvnet(model, x, "conv5", unit=64)
    with pytest.raises(ValueError, match="inside conv5's"):
        deconvnet(model, x, "conv5", unit=0, position=(99, 0))
    with pytest.raises(cv.LayerNotFoundError, match="Did you mean"):
        deconvnet(model, x, "conv6")
