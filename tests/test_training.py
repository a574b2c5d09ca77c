import torch

from cnnvis_widgets.zoo.mini_alexnet_training import TrainingConfig, held_out_accuracy, train_mini_alexnet
from cnnvis_widgets.loading import load_model


def test_training_is_deterministic(tmp_path):
    config = TrainingConfig(train_images=192, val_images=32, epochs=2, checkpoint_epochs=(0, 2))
    _, log_a = train_mini_alexnet(tmp_path / "a", config, progress=False)
    _, log_b = train_mini_alexnet(tmp_path / "b", config, progress=False)
    for name in ("mini_alexnet.safetensors", "mini_alexnet_epoch00.safetensors", "mini_alexnet_epoch02.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert log_a.train_loss[1:] == log_b.train_loss[1:]
    assert log_a.epoch == [0, 1, 2]
    other = TrainingConfig(**{**config.__dict__, "seed": 1})
    net, _ = train_mini_alexnet(None, other, progress=False)
    assert not torch.equal(net.conv1.weight, load_model("mini_alexnet", weights=str(tmp_path / "a" / "mini_alexnet.safetensors")).module.conv1.weight)


def test_shipped_weights_are_accurate_on_held_out_images():
    model = load_model("mini_alexnet", device="cpu")
    assert held_out_accuracy(model.module) >= 0.9
    assert held_out_accuracy(load_model("mini_alexnet", epoch=0, device="cpu").module) < 0.2
