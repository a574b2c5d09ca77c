"""Every engine on one model of every torchvision CNN family and on timm CNNs (random weights, small inputs).

Per model: the layer table, top activations against a brute-force loop, each DeconvNet rule against the
plain gradient and against an independent reference (the nonlinearities' Python functions patched with a
hand-written autograd function of the documented rule), a few steps of activation maximization and of
inversion, a one-layer dissection on a few ShapeWorld images, and the module untouched afterwards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from reference_rules import layer_output, reference_projection

TORCHVISION = [  # (name, layer, input size): one model per family
    ("alexnet", "features.6", 64),
    ("vgg11", "features.13", 64),
    ("resnet18", "layer2", 64),
    ("resnext50_32x4d", "layer2", 64),
    ("densenet121", "features.denseblock2", 64),
    ("googlenet", "inception3b", 64),
    ("inception_v3", "Mixed_5b", 96),
    ("squeezenet1_1", "features.6", 64),
    ("shufflenet_v2_x0_5", "stage2", 64),
    ("mobilenet_v2", "features.7", 64),
    ("mobilenet_v3_small", "features.6", 64),
    ("mnasnet0_5", "layers.9", 64),
    ("efficientnet_b0", "features.4", 64),
    ("efficientnet_v2_s", "features.4", 64),
    ("regnet_y_400mf", "trunk_output.block2", 64),
    ("convnext_tiny", "features.3", 64),
]
TIMM = [
    ("timm/resnet18", "layer2", 64),
    ("timm/efficientnet_b0", "blocks.3", 64),
    ("timm/convnext_nano", "stages.1", 64),
    ("timm/regnety_002", "s2", 64),
    ("timm/mobilenetv3_small_050", "blocks.3", 64),
]

# -- the checks ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos():
    world = cv.datasets.shapeworld(split="val")
    return torch.stack([world[i] for i in range(6)])


@pytest.fixture(scope="module")
def few_world():
    return cv.datasets.shapeworld(split="val", sizes={"train": 0, "val": 6})


def snapshot(module: torch.nn.Module):
    return ({k: v.clone() for k, v in module.state_dict().items()}, [m.training for m in module.modules()],
            [p.requires_grad for p in module.parameters()])


def brute_force_top(model: cv.Model, images: torch.Tensor, layer: str) -> torch.Tensor:
    """Every image's per-unit spatial maximum, one image at a time: [N, units]."""
    maxima = []
    with model.inference(), torch.no_grad():
        for image in images:
            maxima.append(layer_output(model, image[None], layer)[0].flatten(1).amax(1))
    return torch.stack(maxima)


def unscale_residuals(module: torch.nn.Module) -> None:
    """ConvNeXt starts its residual branches at 1e-6 (layer scale), so with random weights a block is the
    identity to 1e-6 and every rule projects the same; set the scales to 1 to give the branches weight."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if "layer_scale" in name or name.endswith(".gamma") or name.endswith(".ls1.gamma"):
                parameter.fill_(1.0)


def run_every_engine(model: cv.Model, layer: str, photos: torch.Tensor, few_world):
    torch.manual_seed(0)
    unscale_residuals(model.module)
    before = snapshot(model.module)
    size = model.input_size[1:]
    images = cv.images.ImageSource(photos, size).images(range(len(photos)))

    info = model.layer(layer)
    assert info.spatial and info.output_shape[0] == info.units and info.receptive_field is not None
    assert "receptive field" in repr(model.layers)

    top = cv.top_activations(model, images, layer, k=3, progress=False)
    maxima = brute_force_top(model, images, layer)
    expected = maxima.sort(0, descending=True).values[:3].T  # [units, 3]
    np.testing.assert_allclose(top.values, expected.numpy(), rtol=1e-4, atol=1e-5)
    picked = maxima.T.gather(1, torch.as_tensor(top.indices))  # the returned images do reach those values
    np.testing.assert_allclose(picked.numpy(), top.values, rtol=1e-4, atol=1e-5)

    projections = {rule: cv.deconvnet(model, images[:2], layer, rule=rule) for rule in cv.deconvnet_rules}
    gradient = projections["gradient"]
    for rule in ("deconvnet", "guided", "gradient"):
        p = projections[rule]
        assert (p.units == gradient.units).all() and (p.positions == gradient.positions).all()
        reference = reference_projection(model, images[:2], layer, p.units, p.positions, p.values, rule)
        scale = float(np.abs(reference.numpy()).max()) or 1.0
        np.testing.assert_allclose(p.projections / scale, reference.numpy() / scale, atol=2e-4,
                                   err_msg=f"{model.name} {layer}: rule {rule} differs from the reference")
        if rule != "gradient":
            assert not np.allclose(p.projections, gradient.projections, rtol=1e-3, atol=1e-6 * scale), \
                f"{model.name}: rule {rule} is the plain gradient"

    units = np.argsort(top.values[:, 0])[-2:].tolist()  # two units that fire on the photos
    am = cv.activation_maximization(model, layer, units=units, steps=6, preset="simonyan", l2=0.0, progress=False,
                                    snapshot_steps=[0], seed=0)
    start = torch.as_tensor(am.snapshots[0]).reshape(-1, *am.images.shape[-3:])
    with model.inference(), torch.no_grad():
        initial = layer_output(model, start, layer).mean((2, 3))[torch.arange(2), torch.tensor(units)]
    final = torch.as_tensor(am.activations)  # a unit silent on the start image may stay at 0 (ReLU)
    assert (final >= initial).all() and (final > initial).any(), (final, initial)

    start = cv.invert(model, images[:1], [layer], steps=0, fine_steps=0, progress=False)  # the initial image
    steps = cv.invert(model, images[:1], [layer], steps=0, fine_steps=8, progress=False)
    assert steps.feature_errors[layer][0] < start.feature_errors[layer][0]

    dissection = cv.dissect(model, few_world, [layer], progress=False)
    assert len(dissection.table(layer)) == info.units

    after = snapshot(model.module)
    assert before[0].keys() == after[0].keys() and all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1:] == after[1:]
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.module.modules())


@pytest.mark.parametrize("name, layer, size", TORCHVISION, ids=[t[0] for t in TORCHVISION])
def test_torchvision_family(name, layer, size, photos, few_world):
    model = cv.load_model(name, weights=None, device="cpu", input_size=(3, size, size))
    run_every_engine(model, layer, photos, few_world)


@pytest.mark.parametrize("name, layer, size", TIMM, ids=[t[0] for t in TIMM])
def test_timm_model(name, layer, size, photos, few_world):
    pytest.importorskip("timm")
    model = cv.load_model(name, weights=None, device="cpu", input_size=(3, size, size))
    run_every_engine(model, layer, photos, few_world)
