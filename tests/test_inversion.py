"""Regularized inversion (Mahendran & Vedaldi) and the norm-keeping perturbations (Dosovitskiy & Brox)."""

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.inversion import InversionResult, binarize, dropout
from cnnvis_widgets.inversion.reconstruct import invert
from cnnvis_widgets.inversion.regularized import alpha_norm, capture_layers, total_variation


@pytest.fixture(scope="module")
def shapes(world):
    return cv.images.ImageSource(world, (64, 64)).images([3, 17, 42])


def test_regularizers_equal_their_definitions():
    x = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    alpha, tv = alpha_norm(x, 6.0), total_variation(x, 2.0)
    for b in range(2):
        expected_alpha = sum(float(x[b, :, i, j].norm()) ** 6 for i in range(5) for j in range(4))
        expected_tv = sum(float(((x[b, :, i + 1, j] - x[b, :, i, j]) ** 2).sum()
                                + ((x[b, :, i, j + 1] - x[b, :, i, j]) ** 2).sum())
                          for i in range(4) for j in range(3))  # along height and width, not channels
        assert alpha[b].item() == pytest.approx(expected_alpha, rel=1e-5)
        assert tv[b].item() == pytest.approx(expected_tv, rel=1e-5)


@pytest.mark.parametrize("make", [binarize, lambda z: dropout(z, generator=torch.Generator().manual_seed(1))],
                         ids=["binarize", "dropout"])
def test_perturbations_keep_each_samples_l2_norm(make):
    z = torch.randn(4, 16, 5, 5, generator=torch.Generator().manual_seed(2))
    out = make(z)
    torch.testing.assert_close(out.flatten(1).norm(dim=1), z.flatten(1).norm(dim=1), rtol=1e-6, atol=0)


def test_binarize_keeps_the_pattern_and_dropout_zeroes_half():
    z = torch.randn(3, 1000, generator=torch.Generator().manual_seed(3))
    b = binarize(z)
    assert torch.equal(b > 0, z > 0) and (b[b > 0].unique().numel() == 3)  # one magnitude per sample
    d = dropout(z, generator=torch.Generator().manual_seed(4))
    zeroed = (d == 0).float().mean().item()
    assert 0.45 < zeroed < 0.55
    for row in range(3):  # the kept entries are the originals, all scaled by one factor per sample
        kept = d[row] != 0
        ratio = d[row][kept] / z[row][kept]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)


def test_conv1_is_matched_closely(mini, shapes):
    # ShapeWorld's 64-px, pixel-sharp, saturated textures need a larger C at conv1 than the paper's range
    # (1-300, tuned on photos): at the default C = 300 the errors are 0.09 / 0.20 / 0.05 and do not fall with
    # more iterations. The C is per layer, as in the paper (its C per layer), given explicitly here.
    result = invert(mini, shapes, ["conv1"], progress=False, data_weight={"conv1": 1e4})
    assert (result.feature_errors["conv1"] < 0.05).all(), result.feature_errors
    assert (result.pixel_errors["conv1"] < 0.3).all()  # the pixels come back too, not just the features
    assert result.images["conv1"].shape == shapes.shape and result.images["conv1"].min() >= 0


def test_detail_is_lost_with_depth(mini, shapes):
    layers = ["conv1", "conv3", "fc8"]
    result = invert(mini, shapes[:2], layers, progress=False, steps=150, fine_steps=150)
    pixel = [result.errors[layer]["pixel"] for layer in layers]
    assert pixel[0] < pixel[1] < pixel[2]
    table = result.table()
    assert all(layer in table for layer in layers)
    assert "regularized" in repr(result)


def test_perturbed_targets_and_round_trip(mini, shapes, tmp_path):
    result = invert(mini, shapes[:1], ["conv2"], perturbation="binarize", progress=False, steps=20, fine_steps=10)
    assert result.perturbation == "binarize" and result.meta["config"]["steps"] == 20
    loaded = InversionResult.load(result.save(tmp_path / "inv.safetensors"))
    np.testing.assert_array_equal(loaded.images["conv2"], result.images["conv2"])
    assert loaded.errors == result.errors and loaded.perturbation == "binarize"


def test_capture_reads_pre_relu_outputs_under_in_place_relus():
    torch.manual_seed(5)
    alexnet = cv.load_model("alexnet", weights=None, device="cpu")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad(), alexnet.inference():
        out = capture_layers(alexnet, x, ["features.0", "features.3"])
        direct = alexnet.module.features[0](alexnet.normalize(x))
    torch.testing.assert_close(out["features.0"], direct)
    assert (out["features.0"] < 0).any()  # the in-place ReLU after it did not reach the captured copy


def test_errors_tell_what_to_do(mini, shapes):
    with pytest.raises(ValueError, match="method must be one of"):
        invert(mini, shapes, ["conv1"], method="deepdream")
    with pytest.raises(ValueError, match="perturbation must be None or one of"):
        invert(mini, shapes, ["conv1"], perturbation="noise")
    with pytest.raises(cv.LayerNotFoundError):
        invert(mini, shapes, ["conv9"])
    with pytest.raises(TypeError, match="Unknown setting"):
        invert(mini, shapes, ["conv1"], stepz=3)
    with pytest.raises(ValueError, match="at least one layer"):
        invert(mini, shapes, [])
