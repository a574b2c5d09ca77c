"""Filter diagnostics: planted dead, flat and noisy filters; planted checkerboards; the stride story."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.deconv.diagnostics import checkerboard_index, filter_diagnostics, high_frequency_share


def test_high_frequency_share_on_planted_filters():
    y, x = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    smooth = torch.exp(-((x - 3) ** 2 + (y - 3) ** 2) / 4).expand(3, 7, 7)
    checker = ((x + y) % 2 * 2 - 1).expand(3, 7, 7)
    noise = torch.randn(200, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    shares = high_frequency_share(torch.stack([smooth, checker]))
    assert shares[0] < 0.1 and shares[1] > 0.9
    # white noise spreads evenly over the 48 non-DC bins of a 7x7 DFT; 40 of them lie beyond 0.25 cycles/pixel
    assert abs(float(np.mean(high_frequency_share(noise))) - 40 / 48) < 0.02


def test_checkerboard_index_on_planted_patterns():
    g = torch.Generator().manual_seed(1)
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = torch.exp(-((x - 30) ** 2 + (y - 34) ** 2) / 60)
    grid = ((x % 4 == 0) & (y % 4 == 0)).float()  # a stride-4 sampling grid
    images = torch.stack([blob, blob * (1 + 3 * grid)]).unsqueeze(1).expand(2, 3, 64, 64)
    index = checkerboard_index(images, stride=4)
    assert index[0] < 0.5 and index[1] > 5
    noise = torch.randn(100, 3, 64, 64, generator=g)
    assert abs(float(checkerboard_index(noise, 4).mean()) - 1) < 0.1  # no peaks: about 1
    assert (checkerboard_index(images, stride=1) == 1).all()  # stride 1 has no lattice to alias onto


@pytest.fixture(scope="module")
def planted(mini, world):
    net = copy.deepcopy(mini.module)
    with torch.no_grad():
        net.conv1.bias[3] = -1e3  # never fires: dead
        net.conv1.weight[5] = net.conv1.weight[5].mean((1, 2), keepdim=True)  # constant over space: flat
        y, x = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
        net.conv1.weight[7] = 0.2 * ((x + y) % 2 * 2 - 1).float()  # pure checkerboard: high frequency
    model = cv.Model(net, mean=mini.mean, std=mini.std, input_size=mini.input_size, name="planted")
    subset = torch.utils.data.Subset(world, range(96))
    return model, subset, filter_diagnostics(model, subset, k=4, progress=False)


def test_planted_filters_are_flagged(planted, shown):
    model, subset, diag = planted
    assert (diag.layer, diag.second_layer, diag.stride) == ("conv1", "conv2", 2)
    assert np.flatnonzero(diag.dead).tolist() == [3]
    assert 5 in np.flatnonzero(diag.flat) and diag.spatial_contrast[5] < 1e-6
    assert 7 in np.flatnonzero(diag.noisy) and diag.high_frequency[7] > 0.9
    flags = diag.top_first.meta["flags"]
    assert flags["3"] == ["dead"] and "flat" in flags["5"] and "high-freq" in flags["7"]
    # the largest response over the dataset, computed independently
    x = torch.stack([subset[i][0] if isinstance(subset[i], tuple) else subset[i] for i in range(len(subset))])
    with torch.no_grad():
        conv1 = model.module.conv1(model.normalize(cv.images.ImageSource(x, (64, 64)).images(range(len(x)))))
    np.testing.assert_allclose(diag.max_activation, conv1.amax((0, 2, 3)).numpy(), rtol=1e-5, atol=1e-5)
    gallery = cv.NeuronGallery(diag)
    assert gallery.layers == ["conv1", "conv2"]
    assert gallery.tiles[3]["flags"] == ["dead"]
    assert "32 filters, 1 dead" in repr(diag)
    data = shown(diag)  # displays as that gallery, with the figures as its plain text
    assert "application/vnd.jupyter.widget-view+json" in data and data["text/plain"] == repr(diag)
    assert diag.summary()["dead"] == 1


def test_second_layer_projections_carry_the_first_stride():
    """The same network with a stride-4 and a stride-1 first layer: only the strided one aliases."""
    torch.manual_seed(2)
    images = torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    index = {}
    for stride in (4, 1):
        net = nn.Sequential(nn.Conv2d(3, 16, 7, stride=stride, padding=3), nn.ReLU(),
                            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        model = cv.Model(net, input_size=(3, 64, 64))
        diag = filter_diagnostics(model, images, k=3, progress=False)
        assert diag.stride == stride
        index[stride] = float(np.median(diag.checkerboard))
    assert index[4] > 3 and index[1] == 1.0


def test_errors(mini, world):
    with pytest.raises(ValueError, match="need a Conv2d layer"):
        filter_diagnostics(mini, torch.rand(4, 3, 64, 64), layer="pool1")
    with pytest.raises(ValueError, match="second_layer="):
        filter_diagnostics(mini, torch.rand(4, 3, 64, 64), layer="conv5")
