"""Tests for cnnvis_widgets.receptive_field.

Analytic receptive fields are checked against an independent empirical
reference: the bounding box of the input pixels that receive a nonzero
gradient from the centre unit of a layer, in a copy of the network whose
max-pools are average-pools and whose convolutions have constant positive
weights (so no path is silenced by ReLU or by the arg-max of a max-pool).
"""

from __future__ import annotations

import copy
import itertools
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from cnnvis_widgets.receptive_field import (
    LayerTrace,
    ReceptiveField,
    receptive_field_of,
    trace_layers,
)

REF_SIZE = 512  # reference image side: the centre unit's field must not touch the border


# ---------------------------------------------------------------------------
# Independent reference: gradient support of the centre unit


class _OnesConv(nn.Module):
    """A convolution with all weights equal to one and no bias.

    With constant weights every output channel carries the same map, so
    summing the input channels and convolving once has exactly the spatial
    support of the original convolution, at a fraction of the cost.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        assert conv.padding_mode == "zeros"
        self.kernel_size = conv.kernel_size
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.ones((1, 1, *self.kernel_size), dtype=x.dtype, device=x.device)
        return F.conv2d(x.sum(1, keepdim=True), weight, None, self.stride, self.padding, self.dilation)


def _avg_instead_of_max(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    assert dilation in (1, (1, 1)) and not return_indices
    return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad=True)


class _Stop(Exception):
    pass


def _reference_copy(model: nn.Module) -> nn.Module:
    # Every layer that runs is replaced, so the weights themselves are not copied.
    memo = {id(t): torch.empty(0) for t in itertools.chain(model.parameters(), model.buffers())}
    ref = copy.deepcopy(model, memo)
    for name, mod in list(ref.named_modules()):
        if isinstance(mod, nn.Conv2d):
            new = _OnesConv(mod)
        elif isinstance(mod, nn.MaxPool2d):
            assert mod.dilation in (1, (1, 1))
            new = nn.AvgPool2d(mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, count_include_pad=True)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            new = nn.Identity()  # BatchNorm with mean 0, variance 1, weight 1, bias 0
        else:
            continue
        parent, _, attr = name.rpartition(".")
        setattr(ref.get_submodule(parent), attr, new)
    return ref.eval()


def gradient_boxes(
    model: nn.Module, names: list[str], size: int = REF_SIZE, stop_before: str | None = None
) -> dict[str, tuple[tuple[int, int], tuple[int, int, int, int]]]:
    """For each layer: (centre grid position, bounding box of nonzero input gradient)."""
    ref = _reference_copy(model)
    captured: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(mod, inputs, output):
            # Clone: later in-place ops (ReLU(inplace), out += identity) must not alter it.
            captured[name] = output.clone()

        return hook

    def stop(mod, inputs):
        raise _Stop

    handles = [ref.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    if stop_before is not None:
        handles.append(ref.get_submodule(stop_before).register_forward_pre_hook(stop))
    x = torch.ones(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    try:
        with mock.patch.object(F, "max_pool2d", _avg_instead_of_max):
            ref(x)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()

    result = {}
    for name in names:
        out = captured[name]
        ci, cj = out.shape[-2] // 2, out.shape[-1] // 2
        (grad,) = torch.autograd.grad(out[0, :, ci, cj].sum(), x, retain_graph=True)
        support = grad[0].abs().sum(0) > 0
        rows = support.any(1).nonzero().flatten()
        cols = support.any(0).nonzero().flatten()
        box = (int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)
        # The field must lie strictly inside the image, otherwise it was clipped.
        assert 0 < box[0] and 0 < box[1] and box[2] < size and box[3] < size, (name, box)
        result[name] = ((ci, cj), box)
    return result


def _check_against_reference(model, names, stop_before=None, input_size=(3, 224, 224)):
    traces = trace_layers(model, input_size)
    reference = gradient_boxes(model, names, stop_before=stop_before)
    for name in names:
        rf = traces[name].receptive_field
        assert rf is not None, name
        (ci, cj), box = reference[name]
        assert rf.box(ci, cj) == box, (name, rf, box)
    return traces


# ---------------------------------------------------------------------------
# Models


@pytest.fixture(scope="module")
def alexnet():
    return torchvision.models.alexnet(weights=None)


@pytest.fixture(scope="module")
def vgg16():
    return torchvision.models.vgg16(weights=None)


@pytest.fixture(scope="module")
def resnet18():
    return torchvision.models.resnet18(weights=None)


@pytest.fixture(scope="module")
def googlenet():
    return torchvision.models.googlenet(weights=None, init_weights=False)


def _feature_layers(model):
    return [
        name
        for name, mod in model.named_modules()
        if name.startswith("features.") and isinstance(mod, (nn.Conv2d, nn.MaxPool2d))
    ]


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=2, dilation=2)
        self.shortcut = nn.Conv2d(c, c, 1, stride=2)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + self.shortcut(x))


class _Custom(nn.Module):
    """Functional relu / max-pool, a strided residual block and a concat of two shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 5, padding=2)
        self.block = _Block(8)
        self.tall = nn.Conv2d(8, 4, (5, 1), padding=(2, 0))
        self.wide = nn.Conv2d(8, 4, (1, 5), padding=(0, 2))
        self.head = nn.Conv2d(8, 2, 3, padding="same")

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 3, stride=2, padding=1)
        x = self.block(x)
        x = torch.cat([self.tall(x), self.wide(x)], dim=1)
        return self.head(x)


class _DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 5, stride=2)

    def forward(self, x):
        x = self.pool(self.conv1(x))
        if x.abs().sum() >= 0:
            x = self.conv2(x)
        return x


# ---------------------------------------------------------------------------
# ReceptiveField


def test_receptive_field_boxes():
    rf = ReceptiveField(size=(11, 7), stride=(4, 2), start=(-2, -3))
    assert rf.box(0, 0) == (-2, -3, 9, 4)
    assert rf.box(3, 5) == (10, 7, 21, 14)
    assert rf.clipped_box(0, 0, 100, 100) == (0, 0, 9, 4)
    assert rf.clipped_box(30, 60, 120, 120) == (118, 117, 120, 120)
    assert rf.center(0, 0) == (3.0, 0.0)
    assert rf.center(1, 1) == (7.0, 2.0)
    with pytest.raises(ValueError):
        ReceptiveField((0, 1), (1, 1), (0, 0))


# ---------------------------------------------------------------------------
# Receptive fields against the gradient reference


def test_alexnet_features(alexnet):
    names = _feature_layers(alexnet)
    traces = _check_against_reference(alexnet, names, stop_before="avgpool")
    conv1, pool5 = traces["features.0"].receptive_field, traces["features.12"].receptive_field
    # Published values (Araujo et al. 2019, table of common networks)
    assert (conv1.size, conv1.stride) == ((11, 11), (4, 4))
    assert (pool5.size, pool5.stride) == ((195, 195), (32, 32))


def test_vgg16_features(vgg16):
    names = _feature_layers(vgg16)
    traces = _check_against_reference(vgg16, names, stop_before="avgpool")
    conv5_3, pool5 = traces["features.28"].receptive_field, traces["features.30"].receptive_field
    assert (conv5_3.size, conv5_3.stride) == ((196, 196), (16, 16))
    assert (pool5.size, pool5.stride) == ((212, 212), (32, 32))


def test_resnet18_blocks_and_branches(resnet18):
    names = [
        "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4",
        "layer1.0", "layer1.0.relu", "layer2.0", "layer2.0.conv2", "layer2.0.bn2",
        "layer2.0.downsample", "layer2.0.downsample.0", "layer2.1", "layer3.0",
        "layer3.1.conv2", "layer4.0", "layer4.1.conv1",
    ]
    traces = _check_against_reference(resnet18, names, stop_before="avgpool")
    layer4 = traces["layer4"].receptive_field
    assert (layer4.size, layer4.stride) == ((435, 435), (32, 32))
    # A block's field is the union of its residual branches, not its last module's.
    assert traces["layer2.0"].receptive_field.size[0] > traces["layer2.0.downsample"].receptive_field.size[0]
    assert traces["layer1.0.relu"].calls == 2
    assert traces["avgpool"].receptive_field is None  # global pooling
    assert traces["fc"].receptive_field is None


def test_googlenet_inception_concat(googlenet):
    names = ["conv3", "maxpool2", "inception3a", "inception3b", "inception4a", "maxpool4", "inception5b"]
    traces = _check_against_reference(googlenet, names, stop_before="avgpool")
    # Auxiliary classifiers do not run in eval mode.
    for name in ("aux1", "aux1.conv", "aux2.fc2"):
        assert traces[name].calls == 0
        assert traces[name].output_shape is None
        assert traces[name].receptive_field is None


def test_custom_functional_residual_and_concat():
    model = _Custom()
    names = ["stem", "block.conv1", "block.conv2", "block.shortcut", "block", "tall", "wide", "head"]
    traces = _check_against_reference(model, names)
    expected = {
        "stem": ((5, 5), (1, 1), (-2, -2)),
        "block.conv1": ((11, 11), (4, 4), (-5, -5)),
        "block.conv2": ((27, 27), (4, 4), (-13, -13)),
        "block.shortcut": ((7, 7), (4, 4), (-3, -3)),
        "block": ((27, 27), (4, 4), (-13, -13)),
        "tall": ((43, 27), (4, 4), (-21, -13)),
        "wide": ((27, 43), (4, 4), (-13, -21)),
        "head": ((51, 51), (4, 4), (-25, -25)),
    }
    for name, (size, stride, start) in expected.items():
        assert traces[name].receptive_field == ReceptiveField(size, stride, start), name
        assert traces[name].receptive_field_exact


def test_untraceable_module_falls_back_to_call_order():
    model = _DataDependent()
    names = ["conv1", "pool", "conv2"]
    traces = _check_against_reference(model, names, input_size=(3, 64, 64))
    assert all(not t.receptive_field_exact for t in traces.values())
    assert traces["conv2"].receptive_field == ReceptiveField((12, 12), (4, 4), (-1, -1))
    assert traces["conv2"].output_shape == (4, 14, 14)


def test_channels_last_crop_and_whole_input_ops():
    class Crop(nn.Module):
        def forward(self, x):
            return x[:, :, 1:, 2::2]

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return x * torch.sigmoid(self.pool(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 8)
            self.crop = Crop()
            self.gate = Gate()
            self.flatten = nn.Flatten()

        def forward(self, x):
            x = self.conv(x)
            x = self.fc(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
            return self.flatten(self.gate(self.crop(x)))

    traces = trace_layers(Net(), (3, 32, 32))
    conv = ReceptiveField((3, 3), (2, 2), (-1, -1))
    assert traces["conv"].receptive_field == conv
    assert traces["fc"].receptive_field == conv  # Linear over channels only
    assert traces["fc"].output_shape == (16, 16, 8)
    assert traces["crop"].receptive_field == ReceptiveField((3, 3), (2, 4), (1, 3))
    assert traces["crop"].output_shape == (8, 15, 7)
    # gated by a global average: the box of the gated features, marked as scaled by global context
    assert traces["gate"].receptive_field == ReceptiveField((3, 3), (2, 4), (1, 3), global_context=True)
    assert not traces["crop"].receptive_field.global_context
    assert traces["gate.pool"].receptive_field is None
    assert traces["flatten"].receptive_field is None


# ---------------------------------------------------------------------------
# trace_layers records and side effects


def _snapshot(model):
    return (
        {k: (id(v), v.detach().clone()) for k, v in itertools.chain(model.named_parameters(), model.named_buffers())},
        {name: m.training for name, m in model.named_modules()},
    )


def _assert_unchanged(model, snapshot):
    tensors, flags = snapshot
    now = dict(itertools.chain(model.named_parameters(), model.named_buffers()))
    assert now.keys() == tensors.keys()
    for key, (ident, value) in tensors.items():
        assert id(now[key]) == ident and torch.equal(now[key], value), key
    assert {name: m.training for name, m in model.named_modules()} == flags


def _assert_no_hooks(model):
    for name, m in model.named_modules():
        for attr in (
            "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
            "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
            "_forward_hooks_always_called",
        ):
            assert not getattr(m, attr, None), (name, attr)


def test_trace_layers_alexnet_records(alexnet):
    alexnet.train()
    alexnet.classifier.eval()  # mixed flags must come back as they were
    snapshot = _snapshot(alexnet)
    traces = trace_layers(alexnet, (3, 224, 224))
    _assert_unchanged(alexnet, snapshot)
    _assert_no_hooks(alexnet)

    assert list(traces) == [name for name, _ in alexnet.named_modules() if name]
    assert all(isinstance(t, LayerTrace) for t in traces.values())
    assert traces["features.0"].output_shape == (64, 55, 55)
    assert traces["features.0"].kind == "Conv2d"
    assert traces["features.12"].output_shape == (256, 6, 6)
    assert traces["features"].output_shape == (256, 6, 6)
    assert traces["features"].receptive_field == traces["features.12"].receptive_field
    assert traces["classifier.6"].output_shape == (1000,)
    assert traces["features.0"].calls == 1
    # 6x6 -> 6x6 adaptive pooling keeps the field
    assert traces["avgpool"].receptive_field == traces["features.12"].receptive_field
    for name in ("classifier", "classifier.1", "classifier.4", "classifier.6"):
        assert traces[name].receptive_field is None, name
    assert receptive_field_of(alexnet, (3, 224, 224), "features.12") == traces["features.12"].receptive_field
    with pytest.raises(KeyError):
        receptive_field_of(alexnet, (3, 224, 224), "features.99")
    alexnet.eval()


def test_trace_layers_keeps_batchnorm_statistics(resnet18):
    resnet18.train()
    snapshot = _snapshot(resnet18)
    traces = trace_layers(resnet18, (3, 64, 64))
    _assert_unchanged(resnet18, snapshot)
    _assert_no_hooks(resnet18)
    assert traces["layer4"].output_shape == (512, 2, 2)
    resnet18.eval()


def test_hooks_removed_when_forward_raises():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            self.bn(self.conv(x))
            raise RuntimeError("broken forward")

    model = Broken().train()
    snapshot = _snapshot(model)
    with pytest.raises(RuntimeError, match="broken forward"):
        trace_layers(model, (3, 16, 16))
    _assert_unchanged(model, snapshot)
    _assert_no_hooks(model)
