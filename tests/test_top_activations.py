import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import cnnvis_widgets as cv


def images(n=40, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def brute_force(model, x, layer, k):
    """Every activation of every image, by running the Sequential up to the layer, then a full sort."""
    module = model.module
    names = [name for name, _ in module.named_children()]
    with torch.no_grad():
        acts = module[: names.index(layer) + 1](model.normalize(x))
    flat = acts.flatten(2) if acts.ndim == 4 else acts.unsqueeze(2)
    per_image, where = flat.max(2)  # [N, C]
    order = torch.argsort(per_image.T, dim=1, descending=True, stable=True)[:, :k]
    values = per_image.T.gather(1, order)
    positions = where.T.gather(1, order)
    return order.numpy(), values.numpy(), positions.numpy(), acts


@pytest.mark.parametrize("layer", ["conv1", "conv2", "pool2", "conv5", "fc7", "fc8"])
def test_equals_brute_force(mini, layer):
    x = images()
    result = cv.top_activations(mini, x, layer, k=5, batch_size=7, progress=False)
    idx, values, positions, acts = brute_force(mini, x, layer, 5)
    np.testing.assert_array_equal(result.indices, idx)
    np.testing.assert_allclose(result.values, values, rtol=1e-5, atol=1e-6)
    if acts.ndim == 4:
        width = acts.shape[-1]
        np.testing.assert_array_equal(result.positions[..., 0] * width + result.positions[..., 1], positions)
        # the stored value is the activation at the stored position
        n, r, c = result.indices[3, 0], result.positions[3, 0, 0], result.positions[3, 0, 1]
        assert acts[n, 3, r, c].item() == pytest.approx(result.values[3, 0], rel=1e-5)
    else:
        assert (result.positions == -1).all() and result.receptive_field is None
    assert result.indices.shape == (acts.shape[1], 5)


def test_batch_size_does_not_matter(mini):
    x = images(30)
    a = cv.top_activations(mini, x, "conv3", k=4, batch_size=1, progress=False)
    b = cv.top_activations(mini, x, "conv3", k=4, batch_size=64, progress=False)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5)


def test_crops_are_the_receptive_field(mini):
    x = images(12)
    result = cv.top_activations(mini, x, "conv2", k=3, progress=False)
    rf = result.receptive_field
    assert rf == mini.layers["conv2"].receptive_field
    size = rf.size[0]
    padded = torch.nn.functional.pad(x, (size, size, size, size), value=0.5)
    for unit in (0, 17, 63):
        for rank in range(3):
            i, j = result.positions[unit, rank]
            top, left, bottom, right = rf.box(int(i), int(j))
            assert tuple(result.boxes[unit, rank]) == (top, left, bottom, right)
            expected = padded[result.indices[unit, rank], :, top + size:bottom + size, left + size:right + size]
            expected = (expected * 255).round().to(torch.uint8).numpy()
            np.testing.assert_array_equal(result.crops[unit, rank], expected)


def test_large_fields_crop_the_whole_image_and_fc_layers_too(mini):
    x = images(10)
    conv5 = cv.top_activations(mini, x, "conv5", k=2, progress=False)
    assert conv5.receptive_field.size[0] > 64
    assert conv5.crops.shape[-2:] == (64, 64)
    fc = cv.top_activations(mini, x, "fc6", k=2, progress=False)
    np.testing.assert_array_equal(fc.crops[5, 0], (x[fc.indices[5, 0]] * 255).round().to(torch.uint8).numpy())


def test_every_kind_of_image_source_agrees(mini, world, tmp_path):
    n = 24
    tensor = torch.stack([world[i] for i in range(n)])
    pil = [Image.open(world.image_path(i)) for i in range(n)]
    paths = [str(world.image_path(i)) for i in range(n)]
    subset = torch.utils.data.Subset(world, range(n))
    reference = cv.top_activations(mini, tensor, "conv4", k=3, progress=False)
    for source in (pil, paths, subset, tensor.numpy()):
        other = cv.top_activations(mini, source, "conv4", k=3, progress=False)
        np.testing.assert_array_equal(other.indices, reference.indices)
        np.testing.assert_allclose(other.values, reference.values, rtol=1e-5)


def test_resizes_to_the_model_input_and_works_on_torchvision():
    net = torchvision.models.resnet18(weights=None)
    model = cv.Model(net, input_size=(3, 96, 96))
    x = images(6, size=80)
    result = cv.top_activations(model, x, "layer2.1", k=2, progress=False)
    assert result.indices.shape == (128, 2)
    assert result.receptive_field == model.layers["layer2.1"].receptive_field
    with torch.no_grad():
        resized = torch.nn.functional.interpolate(x, size=(96, 96), mode="bilinear", antialias=True).clamp(0, 1)
        feats = {}
        h = net.layer2[1].register_forward_hook(lambda m, i, o: feats.setdefault("out", o))
        net.eval()(model.normalize(resized))
        h.remove()
    expected = feats["out"].flatten(2).amax(2)[result.indices[7, 0], 7]
    assert result.values[7, 0] == pytest.approx(expected.item(), rel=1e-4)


def test_first_layer_filters_ride_along(mini):
    result = cv.top_activations(mini, images(8), "conv1", k=2, progress=False)
    w = mini.module.conv1.weight.detach()
    assert result.filters.shape == (32, 3, 7, 7) and result.filters.dtype == np.uint8
    # zero weight is mid-grey; each filter's largest |weight| hits 0 or 255
    unit = 4
    scaled = w[unit] / (2 * w[unit].abs().max()) + 0.5
    np.testing.assert_array_equal(result.filters[unit], (scaled * 255).round().clamp(0, 255).to(torch.uint8).numpy())
    assert cv.top_activations(mini, images(8), "conv2", k=2, progress=False).filters is None


def test_save_and_load_round_trip(mini, tmp_path):
    result = cv.top_activations(mini, images(10), "conv1", k=3, progress=False)
    loaded = cv.TopActivations.load(result.save(tmp_path / "conv1.safetensors"))
    assert loaded.layer == "conv1" and loaded.receptive_field == result.receptive_field
    for name in ("indices", "values", "positions", "boxes", "crops", "filters"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))


def test_k_larger_than_dataset_and_progress_callback(mini):
    seen = []
    result = cv.top_activations(mini, images(3), "conv3", k=9, progress=seen.append)
    assert result.k == 3
    assert seen[-1] == 1.0


def test_a_module_called_twice_is_read_at_its_last_call():
    """ResNet's blocks apply one ReLU module twice; its output is the block's output."""
    net = torchvision.models.resnet18(weights=None)
    model = cv.Model(net, input_size=(3, 64, 64))
    assert model.layers["layer1.0.relu"].calls == 2
    x = images(5)
    relu = cv.top_activations(model, x, "layer1.0.relu", k=2, progress=False)
    block = cv.top_activations(model, x, "layer1.0", k=2, progress=False)
    np.testing.assert_array_equal(relu.indices, block.indices)
    np.testing.assert_allclose(relu.values, block.values, rtol=1e-6)


def test_projections_are_the_deconvnet_of_each_top_activation_cut_like_the_crops(mini, tmp_path):
    from cnnvis_widgets.deconv.projection import deconvnet, display_projection

    x = images(24)
    result = cv.top_activations(mini, x, "conv2", k=3, progress=False, projections="guided")
    assert result.projections.shape == result.crops.shape and result.projections.dtype == np.uint8
    assert result.meta["projection_rule"] == "guided"
    unit, j = 11, 1
    alone = deconvnet(mini, x[result.indices[unit, j]:result.indices[unit, j] + 1], "conv2", unit=unit,
                      position=result.positions[unit, j], rule="guided")
    top, left, bottom, right = result.boxes[unit, j]
    full = np.zeros((3, 64 + 2 * 64, 64 + 2 * 64), np.float32)  # the projection on a zero canvas
    full[:, 64:128, 64:128] = alone.projections[0]
    cut = full[:, top + 64:bottom + 64, left + 64:right + 64]
    expected = np.round(display_projection(cut) * 255)
    assert np.abs(result.projections[unit, j].astype(int) - expected).max() <= 1
    assert np.abs(alone.projections[0]).sum() > 0 and len(np.unique(result.projections[unit, j])) > 10
    loaded = cv.TopActivations.load(result.save(tmp_path / "top.safetensors"))
    np.testing.assert_array_equal(loaded.projections, result.projections)
    with pytest.raises(ValueError, match="projections must be None or one of"):
        cv.top_activations(mini, x, "conv2", projections="lrp", progress=False)
