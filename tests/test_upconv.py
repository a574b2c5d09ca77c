"""UpconvNet decoders (Dosovitskiy & Brox 2016): shipped decoders' held-out errors, perturbations,
persistence, resuming, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.inversion import binarize, dropout, pixel_error
from cnnvis_widgets.datasets.shapeworld import shapeworld_images
from cnnvis_widgets.inversion.upconv import (UpconvDecoder, available_decoders, decoder_errors, layer_features,
                                             load_decoder, train_upconv)


@pytest.fixture(scope="module")
def model():
    return cv.load_model("mini_alexnet", device="cpu")


@pytest.fixture(scope="module")
def val_images():
    return shapeworld_images("val", 64)


@pytest.fixture(scope="module")
def shipped_errors(model, val_images):
    decoders = {layer: load_decoder("mini_alexnet", layer) for layer in ("conv1", "conv2", "conv5", "fc6", "fc8")}
    return decoder_errors(model, decoders, val_images)


def test_conv1_reconstructions_are_the_input(model, val_images, shipped_errors):
    # pixel_error = ||x - x0||^2 / ||x0 - mean(x0)||^2; a flat image at each image's own mean grey scores 1.
    # Trivial baselines: each image's mean colour, and the mean image of the training images.
    colour = val_images.mean(dim=(2, 3), keepdim=True).expand_as(val_images)
    mean_image = shapeworld_images("train", 1000).mean(0, keepdim=True).expand_as(val_images)
    baselines = [pixel_error(b.numpy(), val_images.numpy()).mean() for b in (colour, mean_image)]
    assert min(baselines) > 0.8  # ShapeWorld's colours vary more within an image than between images
    conv1 = shipped_errors["conv1"][None]
    assert conv1 < 0.15 * min(baselines)  # measured 0.065 on these 64 images (baselines 0.93, 1.51)
    reconstruction = load_decoder("mini_alexnet", "conv1").reconstruct(model, val_images[:8])
    assert reconstruction.shape == (8, 3, 64, 64) and 0 <= reconstruction.min() and reconstruction.max() <= 1


def test_errors_grow_with_depth(shipped_errors):
    # Measured on these 64 images: conv1 0.065, conv2 0.56, conv5 0.84, fc6 0.91, fc8 1.42; the mean
    # training image scores 1.51 and each image's own mean colour 0.93.
    clean = {layer: errors[None] for layer, errors in shipped_errors.items()}
    assert clean["conv1"] < clean["conv2"] < clean["conv5"] < clean["fc6"] < clean["fc8"]
    assert clean["conv1"] * 4 < clean["conv2"]
    assert clean["fc6"] + 0.25 < clean["fc8"]
    assert clean["fc6"] < 1.2  # well below the mean training image (1.51): fc6 codes give recognizable scenes


def test_perturbations_cost_information(shipped_errors):
    # Dosovitskiy & Brox §5.2 perturb post-ReLU features; these decoders read the layers' pre-ReLU outputs,
    # so binarization (which maps every negative value to 0) removes what they were trained on.
    for layer, errors in shipped_errors.items():
        assert errors["dropout"] > errors[None] and errors["binarize"] > errors[None], layer
    assert shipped_errors["conv1"]["dropout"] < shipped_errors["conv1"]["binarize"]


@pytest.mark.parametrize("shape", [(5, 256), (4, 32, 7, 7)])
def test_perturbations_keep_the_l2_norm(shape):
    z = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 3
    norms = z.flatten(1).norm(dim=1)
    binary = binarize(z)
    dropped = dropout(z, generator=torch.Generator().manual_seed(2))
    for perturbed in (binary, dropped):
        assert torch.allclose(perturbed.flatten(1).norm(dim=1), norms, rtol=1e-6)
    positive = (z > 0).flatten(1)
    values = binary.flatten(1)
    assert torch.all(values[~positive] == 0)
    for row, mask in zip(values, positive):  # one value on the positive entries
        assert torch.allclose(row[mask], row[mask][0].expand(int(mask.sum())), rtol=1e-6)
    kept = (dropped != 0).float().mean()
    assert 0.4 < kept < 0.6


def test_save_load_round_trip(tmp_path, model, val_images):
    decoder = load_decoder("mini_alexnet", "fc6")
    features = layer_features(model, val_images[:8], "fc6")
    path = decoder.save(tmp_path / "fc6.safetensors")
    loaded = UpconvDecoder.load(path)
    assert torch.equal(loaded(features), decoder(features))
    assert (loaded.layer, loaded.model_name, loaded.image_size, loaded.feature_shape) == \
        ("fc6", decoder.model_name, (64, 64), (256,))
    assert torch.equal(loaded.code_low, decoder.code_low) and torch.equal(loaded.code_high, decoder.code_high)
    assert loaded.training_log["held_out"] == decoder.training_log["held_out"]
    half = UpconvDecoder.load(decoder.save(tmp_path / "half.safetensors", dtype=torch.float16))
    assert torch.equal(half(features), decoder(features))  # the shipped weights are float16 already


def test_code_range_is_per_channel(model):
    conv5, fc6 = load_decoder("mini_alexnet", "conv5"), load_decoder("mini_alexnet", "fc6")
    assert conv5.code_low.shape == (64,) and fc6.code_low.shape == (256,)
    assert torch.all(fc6.code_low < fc6.code_high)
    z = layer_features(model, shapeworld_images("train", 32), "fc6")
    assert torch.all(z >= fc6.code_low) and torch.all(z <= fc6.code_high)  # training images lie inside


def test_wrong_layers_say_what_to_do(model):
    with pytest.raises(FileNotFoundError, match=r"layers conv1, conv2.*fc6.*train_upconv"):
        load_decoder("mini_alexnet", "conv9")
    with pytest.raises(KeyError, match=r"no layer 'fc9'.*Valid layer names: conv1"):
        train_upconv(model, "fc9", torch.rand(4, 3, 64, 64), epochs=1, progress=False)
    decoder = load_decoder("mini_alexnet", "fc6")
    with pytest.raises(ValueError, match=r"inverts MiniAlexNet 'fc6'.*\[N, 256\].*load_decoder"):
        decoder(torch.zeros(2, 32))
    assert set(available_decoders()) >= {"conv1", "conv2", "conv5", "fc6", "fc8"}


def test_resume_equals_one_run(tmp_path, model):
    images = shapeworld_images("train", 96)
    val = shapeworld_images("val", 16)
    kwargs = dict(batch_size=32, seed=3, progress=False, val_dataset=val, lr_decay=0.8, architecture=dict(width=16))
    whole = train_upconv(model, "conv5", images, epochs=2, **kwargs)
    train_upconv(model, "conv5", images, epochs=1, directory=tmp_path, **kwargs)
    resumed = train_upconv(model, "conv5", images, epochs=2, directory=tmp_path, **kwargs)
    assert resumed.training_log["epoch"] == [1, 2]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.training_log["val_loss"] == whole.training_log["val_loss"]


def test_short_training_lowers_the_validation_loss(model):
    images = shapeworld_images("train", 256)
    val = shapeworld_images("val", 64)
    architecture = dict(width=16, convs=1)
    decoder = train_upconv(model, "conv1", images, epochs=1, batch_size=32, lr=3e-3, seed=0, progress=False,
                           val_dataset=val, architecture=architecture)
    torch.manual_seed(0)  # train_upconv's initialization
    untrained = UpconvDecoder("conv1", model.name, (64, 64), (32, 32, 32), **architecture)
    for name in ("feature_mean", "feature_std"):
        getattr(untrained, name).copy_(getattr(decoder, name))
    with torch.no_grad():
        before = float((untrained(layer_features(model, val, "conv1")) - val).pow(2).mean())
    after = decoder.training_log["val_loss"][-1]
    assert np.isfinite(after) and after < 0.7 * before


def test_comparator_loss_is_the_normalized_feature_distance(model):
    """Dosovitskiy & Brox (NIPS 2016) feature loss: ||C(G) - C(x)||^2 / scale, differentiable in G only."""
    from cnnvis_widgets.inversion.upconv import _comparator_loss

    images = shapeworld_images("val", 8)
    reconstruction = torch.rand(8, 3, 64, 64, requires_grad=True)
    loss = _comparator_loss(model, "conv5", reconstruction, layer_features(model, images, "conv5"), scale=2.5)
    upto_conv5 = model.module[:list(dict(model.module.named_children())).index("conv5") + 1]
    with torch.no_grad():
        expected = (upto_conv5(model.normalize(reconstruction)) - upto_conv5(model.normalize(images))).pow(2).mean() / 2.5
    assert abs(loss.item() - expected.item()) < 1e-5 * expected.item()
    (grad,) = torch.autograd.grad(loss, reconstruction)
    assert grad.abs().sum() > 0
    assert all(p.requires_grad and p.grad is None for p in model.module.parameters())  # frozen only while used


def test_comparator_training_matches_features_better(model):
    """The same fc6 decoder, seed and schedule: adding the conv5 feature loss lowers the conv5 feature distance
    of its reconstructions (what DGN-AM's generator needs), at some cost in pixel loss."""
    from cnnvis_widgets.inversion.upconv import _comparator_loss

    images = shapeworld_images("train", 512)
    kwargs = dict(epochs=2, batch_size=32, lr=2e-3, seed=0, progress=False, val_dataset=images[:64],
                  architecture=dict(width=16, hidden=64))
    plain = train_upconv(model, "fc6", images, **kwargs)
    perceptual = train_upconv(model, "fc6", images, comparator="conv5", comparator_weight=4.0, **kwargs)
    assert perceptual.training_log["settings"]["comparator"] == "conv5"
    codes = layer_features(model, images[:256], "fc6")
    scale = float(layer_features(model, images[:256], "conv5").pow(2).mean())
    with torch.no_grad():
        target = layer_features(model, images[:256], "conv5")
        distances = {name: float(_comparator_loss(model, "conv5", decoder(codes), target, scale))
                     for name, decoder in (("plain", plain), ("perceptual", perceptual))}
    print("conv5 feature distance of reconstructions:", distances)
    assert distances["perceptual"] < 0.8 * distances["plain"]
    with pytest.raises(Exception, match="conv9"):
        train_upconv(model, "fc6", images[:8], epochs=1, comparator="conv9", progress=False)
