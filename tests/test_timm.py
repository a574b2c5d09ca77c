"""timm models by name: preprocessing from ``pretrained_cfg`` (checked against timm's own eval transform), layers
with receptive fields, local weight files, and the messages for no network, a wrong name and no timm."""

import subprocess
import sys

import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.images import ImageSource



@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")  # in the test extra; the last two tests need no timm


@pytest.fixture(scope="module")
def resnet18(timm):
    return cv.load_model("timm/resnet18", weights=None, device="cpu")


def test_preprocessing_comes_from_pretrained_cfg(resnet18):
    cfg = resnet18.module.pretrained_cfg
    assert resnet18.name == "timm/resnet18"
    assert resnet18.mean == pytest.approx(cfg["mean"]) and resnet18.std == pytest.approx(cfg["std"])
    assert resnet18.input_size == tuple(cfg["input_size"]) == (3, 224, 224)
    assert resnet18.fit == cv.ResizePolicy("crop", crop_fraction=cfg["crop_pct"], interpolation=cfg["interpolation"])
    assert resnet18.classes[:2] == ["tench", "goldfish"] and len(resnet18.classes) == 1000
    # the image the model sees is what timm's own eval transform makes of it (Resize(235, bicubic) + CenterCrop(224))
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config({}, model=resnet18.module))
    photo = torch.rand(3, 200, 300)
    expected = transform.transforms[1](transform.transforms[0](photo)).clamp(0, 1)  # before ToTensor / Normalize
    torch.testing.assert_close(ImageSource(photo, (224, 224), fit=resnet18.fit).image(0), expected, atol=1e-6, rtol=0)
    small = cv.load_model("timm/efficientnet_b0", weights=None, device="cpu")
    assert small.fit.crop_fraction == pytest.approx(small.module.pretrained_cfg["crop_pct"])


def test_layers_with_receptive_fields_and_engines_run(resnet18):
    conv1 = resnet18.layers["conv1"]
    assert conv1.output_shape == (64, 112, 112) and conv1.receptive_field.size == (7, 7)
    assert resnet18.layers["layer4"].output_shape == (512, 7, 7)
    assert resnet18.layers["layer2"].receptive_field.stride == (8, 8)
    assert resnet18.layers["fc"].output_shape == (1000,)
    top = cv.top_activations(resnet18, [torch.rand(3, 160, 240), torch.rand(3, 240, 160)], "layer1", k=1,
                             progress=False)
    assert top.indices.shape == (64, 1) and top.fit == resnet18.fit


def test_a_local_weight_file_loads(timm, tmp_path):
    from safetensors.torch import save_file

    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), str(tmp_path / "model.safetensors"))
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    for name in ("model.safetensors", "resnet18.pth"):
        model = cv.load_model("timm/resnet18", weights=str(tmp_path / name), device="cpu")
        for key, value in reference.state_dict().items():
            assert torch.equal(model.module.state_dict()[key], value), key
    with pytest.raises(ValueError, match="do not fit"):
        cv.load_model("timm/resnet34", weights=str(tmp_path / "model.safetensors"))


def test_pretrained_without_network_says_what_to_do(timm, monkeypatch):
    import timm.models._builder as builder

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    for name in ("load_state_dict_from_hf", "load_state_dict_from_url", "download_cached_file"):
        if hasattr(builder, name):
            monkeypatch.setattr(builder, name, offline)
    with pytest.raises(RuntimeError) as err:
        cv.load_model("timm/resnet18", device="cpu")
    message = str(err.value)
    assert "huggingface-cli download timm/resnet18.a1_in1k" in message
    assert "models--timm--resnet18.a1_in1k" in message and "weights='path/to/model.safetensors'" in message
    assert "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors" in message
    assert "weights=None" in message


def test_unknown_names_list_close_matches(timm):
    with pytest.raises(ValueError, match="timm has no model 'resnt18'. Close matches: resnet18"):
        cv.load_model("timm/resnt18", weights=None)
    with pytest.raises(ValueError, match="no pretrained tag 'zzz'.*a1_in1k"):
        cv.load_model("timm/resnet18.zzz", weights=None)
    with pytest.raises(ValueError, match="by tag in the name"):
        cv.load_model("timm/resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="'timm/<name>' for a timm model"):
        cv.load_model("resnet18_timm", weights=None)


def test_without_timm_the_message_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` raise ImportError
    with pytest.raises(ImportError, match="pip install timm"):
        cv.load_model("timm/resnet18", weights=None)


def test_importing_the_package_does_not_import_timm():
    code = "import sys, cnnvis_widgets; assert 'timm' not in sys.modules, 'timm imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
