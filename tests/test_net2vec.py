"""Net2Vec (Fong & Vedaldi 2018): a concept that no single unit covers is segmented by a learned combination."""

import numpy as np
import pytest
import torch
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.datasets import Broden, BrodenWriter
from cnnvis_widgets.dissection import net2vec
from cnnvis_widgets.dissection.concept_embeddings import upsampling_matrix
from cnnvis_widgets.dissection.result import upsample_maps

RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def write_patches(root, n_train=40, n_val=20, seed=0):
    """Black images with red, green and blue squares; concept 'redgreen' covers the red and green squares,
    'blue' the blue ones. Masks at half size (every other pixel), as Broden."""
    rng = np.random.default_rng(seed)
    with BrodenWriter(root, ["object"], [("redgreen", "object"), ("blue", "object")]) as writer:
        for split, count in (("train", n_train), ("val", n_val)):
            for _ in range(count):
                image = np.zeros((32, 32, 3), np.uint8)
                mask = np.zeros((16, 16), np.int64)
                for colour in ("red", "green", "blue"):
                    top, left = rng.integers(0, 12, 2) * 2
                    side = int(rng.integers(3, 6)) * 2
                    image[top:top + side, left:left + side] = RGB[colour]
                    mask[top // 2:(top + side) // 2, left // 2:(left + side) // 2] = 2 if colour == "blue" else 1
                writer.add(image, split, pixel_masks={"object": [mask]})
    return Broden(root)


class Channels(nn.Module):
    """Unit k copies colour channel k at stride 2: unit 0 fires on red, 1 on green, 2 on blue."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1, stride=2, bias=False)
        self.conv.weight.data = torch.eye(3)[:, :, None, None]

    def forward(self, x):
        return self.conv(x)


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    return write_patches(tmp_path_factory.mktemp("patches") / "broden")


def test_learned_combination_beats_the_best_single_unit(patches):
    model = cv.Model(Channels(), mean=None, std=None, input_size=(3, 32, 32), name="channels")
    result = net2vec(model, patches, "conv", concepts=["redgreen", "blue"], thresholds=np.full(3, 0.5),
                     ablation=(1, 2), progress=False)
    redgreen, blue = 0, 1
    assert list(result.train_images) == [40, 40] and list(result.val_images) == [20, 20]
    # no single unit covers red and green squares; together they do
    assert 0.25 < result.single_iou[redgreen] < 0.75
    assert result.set_iou[redgreen] > 0.95, result.table()
    assert result.weights[redgreen, 0] > 0 and result.weights[redgreen, 1] > 0
    assert result.weights[redgreen, 2] < min(result.weights[redgreen, :2])
    # the blue unit alone is already the concept: both reach it
    assert result.single_unit[blue] == 2 and result.single_iou[blue] > 0.95 and result.set_iou[blue] > 0.95
    # ablation: one unit is not enough for 'redgreen', two are
    assert result.ablation[1][redgreen] < 0.75 and result.ablation[2][redgreen] > 0.95
    assert result.wins == 1.0
    table = result.table()
    assert list(table["concept"]) == ["redgreen", "blue"] and "top-2 IoU" in table


def test_upsampling_matrix_equals_interpolation():
    maps = torch.randn(5, 1, 7, 7)
    matrix = upsampling_matrix((7, 7), (32, 32), None, (64, 64))
    direct = upsample_maps(maps, (32, 32), "bilinear")
    assert torch.allclose(maps.view(5, 49) @ matrix, direct.view(5, -1), atol=1e-6)


def test_mini_alexnet_net2vec_and_errors(mini):
    world = cv.datasets.shapeworld(split="val")
    dissection = cv.dissect(mini, world, ["conv5"], progress=False)
    result = net2vec(mini, world, "conv5", concepts=["red", "tree"], thresholds=dissection, epochs=2,
                     ablation=(4,), progress=False)
    np.testing.assert_array_equal(result.thresholds, dissection.layers["conv5"].thresholds)
    assert result.weights.shape == (2, 64) and result.concepts == ["red", "tree"]
    assert result.train_images.sum() > 100 and np.all(result.set_iou > 0)  # held-out half of val
    with pytest.raises(KeyError, match="No concept named 'unicorn'"):
        net2vec(mini, world, "conv5", concepts=["unicorn"], progress=False)
    with pytest.raises(ValueError, match="conv layer"):
        net2vec(mini, world, "fc6", progress=False)
