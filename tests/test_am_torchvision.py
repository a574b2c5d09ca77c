"""Activation maximization on torchvision's architectures (random weights): conv layers, ResNet blocks,
pre-ReLU outputs of in-place ReLU networks, neurons and class logits."""

import pytest
import torch
import torchvision

import cnnvis_widgets as cv
from test_model import assert_unchanged, snapshot

CASES = [
    ("alexnet", "features.3", "channel"),     # conv2, followed by an in-place ReLU: pre-ReLU target
    ("alexnet", "features.10", "neuron"),
    ("alexnet", None, "logit"),
    ("vgg16", "features.28", "channel"),      # conv5_3, pre-ReLU
    ("vgg16", "features.21", "neuron"),
    ("resnet18", "layer3.1", "channel"),      # a residual block's output
    ("resnet18", "layer2.0.bn2", "neuron"),   # inside a block, before the residual add and its ReLU
    ("resnet18", None, "logit"),
    ("googlenet", "inception4c", "channel"),
    ("googlenet", "conv2.conv", "neuron"),    # a conv inside BasicConv2d, before its BN and ReLU
]


@pytest.mark.parametrize("arch,layer,objective", CASES, ids=[f"{a}-{l}-{o}" for a, l, o in CASES])
def test_objective_rises_and_module_is_untouched(arch, layer, objective):
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if arch == "googlenet" else {}
    net = torchvision.models.get_model(arch, weights=None, **kwargs)
    before = snapshot(net)
    model = cv.Model(net, input_size=(3, 96, 96))
    units = [3, 11]
    am = cv.activation_maximization(model, layer, units=units, objective=objective, steps=12, lr=0.1,
                                    progress=False)
    assert am.images.shape == (2, 3, 96, 96)
    assert torch.isfinite(torch.from_numpy(am.history)).all()
    # each unit's objective rose over the run (means of the first and last steps)
    assert (am.history[-3:].mean(0) > am.history[:3].mean(0)).all(), am.history[[0, -1]]
    assert_unchanged(before, net)

