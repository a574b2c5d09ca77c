import pytest
import torch
import torchvision
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.loading import load_model


def snapshot(module: nn.Module) -> dict:
    """Everything about a module that visualization must leave as it was."""
    return {
        "state": {k: v.clone() for k, v in module.state_dict().items()},
        "training": [m.training for m in module.modules()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
        "inplace": [getattr(m, "inplace", None) for m in module.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                   len(getattr(m, "_backward_pre_hooks", {}))) for m in module.modules()],
        "types": [type(m) for m in module.modules()],
    }


def assert_unchanged(before: dict, module: nn.Module) -> None:
    after = snapshot(module)
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k
    for key in ("training", "requires_grad", "inplace", "hooks", "types"):
        assert before[key] == after[key], key
    assert all(h == (0, 0, 0, 0) for h in after["hooks"])


def test_mini_alexnet_layers():
    model = load_model("mini_alexnet", device="cpu")
    names = model.layers.names
    for name in ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]:
        assert name in names
    assert names.index("conv1") < names.index("conv5") < names.index("fc8")
    conv1, pool1, conv5, fc6 = (model.layers[n] for n in ("conv1", "pool1", "conv5", "fc6"))
    assert conv1.output_shape == (32, 32, 32) and conv1.kind == "Conv2d"
    assert (conv1.receptive_field.size, conv1.receptive_field.stride, conv1.receptive_field.start) == ((7, 7), (2, 2), (-3, -3))
    # pool1: 3x3 stride 2 on a stride-2 grid adds 2 * 2 pixels
    assert pool1.receptive_field.size == (11, 11) and pool1.receptive_field.stride == (4, 4)
    assert conv5.output_shape == (64, 7, 7)
    assert fc6.output_shape == (256,) and fc6.receptive_field is None
    assert model.layers["fc8"].output_shape == (32,)
    text = repr(model.layers)
    assert "conv5" in text and "whole input" in text


def test_wrong_layer_name_lists_valid_names(mini):
    with pytest.raises(cv.LayerNotFoundError) as err:
        mini.layer("conv6")
    message = str(err.value)
    assert "'conv6'" in message and "conv5" in message and "fc8" in message and "Did you mean" in message
    with pytest.raises(cv.LayerNotFoundError, match="Valid layer names"):
        cv.top_activations(mini, torch.rand(2, 3, 64, 64), "features.3")


class Boom(Exception):
    pass


class NotATensor:
    pass


class ExplodingImages(torch.utils.data.Dataset):
    """Images that raise ``error`` when item ``at`` is read."""

    def __init__(self, n, at, error):
        self.n, self.at, self.error = n, at, error

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.at:
            raise self.error
        return torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i))


def _user_module():
    """A torchvision AlexNet as a user might hold it: training mode, some frozen parameters, in-place ReLUs."""
    net = torchvision.models.alexnet(weights=None)
    net.train()
    net.features[0].weight.requires_grad_(False)
    net.classifier.eval()
    return net


@pytest.mark.parametrize("error", [None, Boom("bad image"), KeyboardInterrupt()])
def test_module_unchanged_and_hook_free(error):
    module = _user_module()
    before = snapshot(module)
    model = cv.Model(module, input_size=(3, 64, 64))
    images = ExplodingImages(20, at=13 if error else -1, error=error)
    if error is None:
        cv.top_activations(model, images, "features.3", k=3, batch_size=4, progress=False)
        model.layers  # the layer table's traced forward
    else:
        with pytest.raises(type(error)):
            cv.top_activations(model, images, "features.3", k=3, batch_size=4, progress=False)
    assert_unchanged(before, module)


def test_layer_table_forward_leaves_module_unchanged():
    module = _user_module()
    before = snapshot(module)
    assert cv.Model(module).layers["features.0"].output_shape == (64, 55, 55)
    assert_unchanged(before, module)


def test_any_module_with_functional_relu():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 5, 3, stride=2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x))).mean((2, 3))

    model = cv.Model(Net(), mean=None, std=None, input_size=(3, 16, 16))
    assert model.layers["b"].output_shape == (5, 7, 7)
    assert model.layers["b"].receptive_field.size == (5, 5)


def test_torchvision_by_name_without_weights():
    model = load_model("resnet18", weights=None, device="cpu")
    assert model.input_size == (3, 224, 224)
    assert model.mean == pytest.approx((0.485, 0.456, 0.406))
    assert model.classes is not None and len(model.classes) == 1000  # metadata, no download
    assert model.layers["layer4"].output_shape == (512, 7, 7)
    with pytest.raises(ValueError, match="Unknown model 'alexnett'.*alexnet"):
        load_model("alexnett", weights=None)


def test_pretrained_download_path_with_a_local_file(tmp_path, monkeypatch):
    """torchvision's real download code, served from its cache: the file a download would have written."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.squeezenet1_1(weights=None)
    url = torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1])
    model = load_model("squeezenet1_1", device="cpu")
    by_enum = load_model("squeezenet1_1", weights=torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1, device="cpu")
    for k, v in reference.state_dict().items():
        assert torch.equal(by_enum.module.state_dict()[k], v)
        assert torch.equal(model.module.state_dict()[k], v)
    assert model.classes[0] == "tench"


def test_pretrained_unavailable_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as err:
        load_model("squeezenet1_1", device="cpu")
    message = str(err.value)
    assert "weights=None" in message and "checkpoints" in message and "http" in message


def test_local_checkpoints_are_loaded_safely(tmp_path):
    from safetensors.torch import save_file

    reference = torchvision.models.alexnet(weights=None)
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "alexnet.pth")
    save_file(reference.state_dict(), str(tmp_path / "alexnet.safetensors"))
    for name in ("alexnet.pth", "alexnet.safetensors"):
        model = load_model("alexnet", weights=str(tmp_path / name), device="cpu")
        assert torch.equal(model.module.features[0].weight, reference.features[0].weight)

    torch.save({"payload": NotATensor()}, tmp_path / "evil.pth", _use_new_zipfile_serialization=True)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_model("alexnet", weights=str(tmp_path / "evil.pth"))
    with pytest.raises(ValueError, match="do not fit"):
        load_model("mini_alexnet", weights=str(tmp_path / "alexnet.safetensors"))


def test_mini_alexnet_checkpoints_differ_and_load():
    final = load_model("mini_alexnet", device="cpu")
    early = load_model("mini_alexnet", epoch=0, device="cpu")
    assert early.name == "MiniAlexNet (epoch 0)"
    assert not torch.allclose(final.module.conv1.weight, early.module.conv1.weight)
    with pytest.raises(FileNotFoundError, match="train-mini-alexnet"):
        load_model("mini_alexnet", epoch=7)


def test_hooks_context_removes_hooks_on_error(mini):
    module = mini.module
    with pytest.raises(Boom):
        with mini.hooks() as hooks:
            hooks.forward("conv2", lambda m, i, o: None)
            assert len(module.conv2._forward_hooks) == 1
            raise Boom()
    assert len(module.conv2._forward_hooks) == 0


def test_at_input_size_shares_the_module_and_retraces_the_layers(mini):
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 5))
    small = cv.Model(net, (0.5,) * 3, (0.25,) * 3, (3, 64, 64), name="fcn", classes=list("abcde"))
    large = small.at_input_size(96, 128)
    assert large.module is small.module and large.classes == small.classes and large.name == "fcn"
    assert large.input_size == (3, 96, 128) and small.input_size == (3, 64, 64)
    assert large.layer("0").output_shape == (8, 48, 64) and small.layer("0").output_shape == (8, 32, 32)
    assert small.at_input_size(80).input_size == (3, 80, 80)
    with pytest.raises(ValueError, match="positive"):
        small.at_input_size(0)
    with pytest.raises(ValueError, match="fixed-size layers.*resize the images"):
        mini.at_input_size(96)  # MiniAlexNet's fc6 takes 64 px only


class SamePaddingConv(nn.Conv2d):
    """A Conv2d subclass, as EfficientNet's static same-padding convolutions are."""


def test_conv_subclasses_count_as_conv_layers_everywhere():
    net = nn.Sequential(SamePaddingConv(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), SamePaddingConv(4, 6, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    model = cv.Model(net, input_size=(3, 32, 32))
    assert [layer.name for layer in model.layers_of(nn.Conv2d)] == ["0", "3"]
    assert [layer.name for layer in model.layers_of(nn.Conv2d, nn.MaxPool2d)] == ["0", "2", "3"]
    assert cv.AMExplorer(model).view.layer == "3"  # the last conv layer, not the logits
    gallery = cv.NeuronGallery(model, dataset=torch.rand(6, 3, 32, 32), k=2)
    assert gallery.layers == ["0", "2", "3"] and gallery.layer == "3"
