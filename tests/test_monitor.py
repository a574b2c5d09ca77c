"""TrainingMonitor / TrainingRecord: Zeiler & Fergus 2014 §4.2 feature evolution, recorded to disk as it goes."""

import json
import math

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.zoo import mini_alexnet as mini
from cnnvis_widgets.deconv.evolution import TrainingMonitor, TrainingRecord
from cnnvis_widgets.deconv.record_format import INDEX_NAME
from cnnvis_widgets.zoo.mini_alexnet_training import TrainingConfig, train_mini_alexnet

UNITS = [0, 5, 9]
TINY = TrainingConfig(train_images=256, val_images=64, epochs=2)


@pytest.fixture(scope="module")
def probe(world):
    return torch.utils.data.Subset(world, range(48))


@pytest.fixture(scope="module")
def probe_images(probe):
    return torch.stack([probe[i] for i in range(len(probe))])


@pytest.fixture(scope="module")
def monitored_run(probe, tmp_path_factory):
    """A tiny MiniAlexNet training with the monitor's callback, recording epochs 0 and 2 of conv2."""
    directory = tmp_path_factory.mktemp("run")
    monitor = TrainingMonitor(probe, "conv2", UNITS, directory, epochs=[0, 2])
    net, log = train_mini_alexnet(config=TINY, on_epoch=monitor.callback, progress=False)
    return monitor, net, log, directory


def files_in(directory):
    return sorted(p.name for p in directory.iterdir())


def conv2_maxima(net, images):
    """Every unit's spatial maximum of conv2 per image, by running the Sequential's first layers by hand."""
    names = [name for name, _ in net.named_children()]
    x = (images - torch.tensor(mini.MEAN).view(1, 3, 1, 1)) / torch.tensor(mini.STD).view(1, 3, 1, 1)
    with torch.no_grad():
        acts = net.eval()[: names.index("conv2") + 1](x)
    return acts.flatten(2).max(2).values  # [N, C]


def test_training_run_is_recorded_with_aligned_metrics(monitored_run):
    monitor, net, log, directory = monitored_run
    record = TrainingRecord.load(directory)
    assert record.layer == "conv2" and record.units == UNITS and record.k == 1
    assert record.epochs == [0, 2]  # epoch 1 skipped: metrics only
    assert record.metric_epochs == [0, 1, 2]
    assert math.isnan(record.metrics["train_loss"][0])  # the untrained network has no loss
    assert record.metrics["train_loss"][1:] == log.train_loss[1:]
    assert record.metrics["val_accuracy"] == log.val_accuracy
    assert record.metrics_at(1) == {"train_loss": log.train_loss[1], "val_accuracy": log.val_accuracy[1]}
    index = json.loads((directory / INDEX_NAME).read_text())
    assert index["metrics"][0]["train_loss"] is None  # NaN is stored as JSON null
    assert index["version"] == 1 and index["num_images"] == 48
    # only the finished files: no temporary files left behind
    assert files_in(directory) == ["epoch_00000.safetensors", "epoch_00002.safetensors", INDEX_NAME]

    rf = 27  # conv1 7 + pool1 2*2 + conv2 4*4
    for epoch in record.epochs:
        images, projections = record.images(epoch), record.projections(epoch)
        assert images.shape == projections.shape == (3, 1, 3, rf, rf)
        assert images.dtype == projections.dtype == np.uint8
        assert record.values(epoch).shape == (3, 1) and record.values(epoch).dtype == np.float32
        assert record.indices(epoch).dtype == np.int64
        assert record.am(epoch) is None
    with pytest.raises(KeyError, match=r"Epoch 1 was not recorded; recorded epochs: \[0, 2\]"):
        record.images(1)


def test_recorded_top_image_matches_an_independent_computation(monitored_run, probe_images):
    monitor, net, log, directory = monitored_run
    record = TrainingRecord.load(directory)
    # the last callback saw the final weights: recompute the strongest probe image per unit by hand
    maxima = conv2_maxima(net, probe_images)[:, UNITS]  # [N, units]
    np.testing.assert_array_equal(record.indices(2)[:, 0], maxima.argmax(0).numpy())
    np.testing.assert_allclose(record.values(2)[:, 0], maxima.max(0).values.numpy(), rtol=1e-5)
    # the crop is the probe image under the receptive-field box (grey outside the image)
    from safetensors.numpy import load_file

    boxes = load_file(str(directory / "epoch_00002.safetensors"))["boxes"]
    for row in range(len(UNITS)):
        top, left, bottom, right = boxes[row, 0]
        image = probe_images[record.indices(2)[row, 0]]
        padded = torch.nn.functional.pad(image, (32, 32, 32, 32), value=0.5)
        expected = (padded[:, top + 32:bottom + 32, left + 32:right + 32] * 255).round().to(torch.uint8).numpy()
        np.testing.assert_array_equal(record.images(2)[row, 0], expected)
    # and the projection is the one top_activations gives for that model
    model = cv.Model(net, mean=mini.MEAN, std=mini.STD, input_size=mini.INPUT_SIZE)
    top = cv.top_activations(model, probe_images, "conv2", k=1, projections="deconvnet", progress=False)
    np.testing.assert_array_equal(record.projections(2), top.projections[UNITS])
    assert (record.projections(2) != 128).any()  # not a blank grey


def test_monitoring_does_not_change_the_training(monitored_run):
    monitor, net, log, directory = monitored_run
    plain, plain_log = train_mini_alexnet(config=TINY, progress=False)
    assert plain_log.train_loss[1:] == log.train_loss[1:]
    for (name, a), (_, b) in zip(net.state_dict().items(), plain.state_dict().items()):
        assert torch.equal(a, b), name


def test_record_leaves_the_module_as_it_was(probe, tmp_path):
    net = mini.mini_alexnet(batch_norm=True)
    net.train()
    net.conv3.eval()
    net.conv1.weight.requires_grad_(False)
    modes = {name: m.training for name, m in net.named_modules()}
    grads = {name: p.requires_grad for name, p in net.named_parameters()}
    state = {k: v.clone() for k, v in net.state_dict().items()}  # includes batch-norm running statistics
    torch.manual_seed(123)
    expected_random = torch.rand(3)
    torch.manual_seed(123)
    monitor = TrainingMonitor(probe, "conv3", [1, 2], tmp_path, am_steps=2, am_options={"preset": "simonyan"})
    assert monitor.record(4, net, loss=torch.tensor(0.5)) is True
    assert torch.equal(torch.rand(3), expected_random)  # the global random stream was not consumed
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert {name: p.requires_grad for name, p in net.named_parameters()} == grads
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    record = monitor.result
    assert record.metrics == {"loss": [0.5]}
    assert record.am(4).shape == (2, 3, 64, 64) and record.am(4).dtype == np.uint8
    assert record.am_values(4).shape == (2,)
    assert record.model_name == "Sequential"


def test_skipped_epochs_keep_metrics_and_resume_after_a_crash(probe, tmp_path):
    first = TrainingMonitor(probe, "conv1", [0, 3], tmp_path, epochs=[0, 2], name="MiniAlexNet")
    assert first.record(0, cv.load_model("mini_alexnet", epoch=0, device="cpu"), loss=float("nan")) is True
    assert first.record(1, cv.load_model("mini_alexnet", epoch=1, device="cpu"), loss=3.0) is False
    assert files_in(tmp_path) == ["epoch_00000.safetensors", INDEX_NAME]
    before = TrainingRecord.load(tmp_path).images(0).copy()
    del first  # the kernel "dies" here; a new monitor continues the same folder
    second = TrainingMonitor(probe, "conv1", [0, 3], tmp_path, epochs=[0, 2])
    second.record(2, cv.load_model("mini_alexnet", epoch=2, device="cpu"), loss=2.5)
    record = TrainingRecord.load(tmp_path)
    assert record.epochs == [0, 2] and record.metric_epochs == [0, 1, 2]
    assert np.isnan(record.metrics["loss"][0]) and record.metrics["loss"][1:] == [3.0, 2.5]
    np.testing.assert_array_equal(record.images(0), before)
    assert record.model_name == "MiniAlexNet"
    with pytest.raises(ValueError, match=r"already holds a record of layer 'conv1', units \[0, 3\].*new directory"):
        TrainingMonitor(probe, "conv2", [0, 3], tmp_path)


def test_a_failed_write_leaves_the_record_intact(probe, tmp_path, monkeypatch):
    import safetensors.numpy

    monitor = TrainingMonitor(probe, "conv1", [1], tmp_path)
    monitor.record(0, cv.load_model("mini_alexnet", epoch=0, device="cpu"), acc=0.1)
    index_before = (tmp_path / INDEX_NAME).read_text()

    def crash(arrays, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        monitor.record(1, cv.load_model("mini_alexnet", epoch=1, device="cpu"), acc=0.2)
    assert files_in(tmp_path) == ["epoch_00000.safetensors", INDEX_NAME]
    assert (tmp_path / INDEX_NAME).read_text() == index_before
    assert TrainingRecord.load(tmp_path).epochs == [0]


def test_from_checkpoints_with_weight_files(probe, probe_images, tmp_path):
    checkpoints = [(0, mini.weights_path(0)), (5, mini.weights_path(5))]
    metrics = {0: {"val_accuracy": 0.03}, 3: {"val_accuracy": 0.17}, 5: {"val_accuracy": 0.24}}
    record = TrainingMonitor.from_checkpoints(checkpoints, probe, "conv5", [2, 7], tmp_path, metrics=metrics)
    assert record.epochs == [0, 5] and record.metric_epochs == [0, 3, 5]
    assert record.metrics == {"val_accuracy": [0.03, 0.17, 0.24]}
    expected = cv.top_activations(cv.load_model("mini_alexnet", epoch=5, device="cpu"), probe_images, "conv5", k=1,
                                  progress=False, projections="deconvnet")
    np.testing.assert_array_equal(record.images(5), expected.crops[[2, 7]])
    np.testing.assert_array_equal(record.indices(5), expected.indices[[2, 7]])
    np.testing.assert_array_equal(record.projections(5), expected.projections[[2, 7]])
    # metrics alone (no checkpoint yet) are a record too
    only_metrics = TrainingMonitor.from_checkpoints([], probe, "conv5", [2], tmp_path / "metrics", metrics=metrics)
    assert only_metrics.epochs == [] and only_metrics.metrics == {"val_accuracy": [0.03, 0.17, 0.24]}


def test_from_the_shipped_mini_alexnet_run(probe, tmp_path):
    record = TrainingRecord.from_mini_alexnet(probe, "conv1", [0, 1, 2, 3], tmp_path)
    log = json.loads((mini.WEIGHTS_DIR / "mini_alexnet.json").read_text())["log"]
    assert record.epochs == [*mini.CHECKPOINT_EPOCHS, 12]
    assert record.metric_epochs == log["epoch"]
    assert record.metrics["val_accuracy"] == log["val_accuracy"]
    assert record.model_name == "MiniAlexNet"
    assert record.images(0).shape == (4, 1, 3, 7, 7)
    # the units change over training: their top activations differ between the first and last epoch
    assert not np.allclose(record.values(0), record.values(12))
    assert repr(record).startswith("TrainingRecord(") and "epochs=[0, 1, 2, 5, 10, 12]" in repr(record)


def test_errors_say_what_to_do(probe, tmp_path):
    model = cv.load_model("mini_alexnet", epoch=0, device="cpu")
    with pytest.raises(ValueError, match=r"unit 40 is out of range: conv1 has 32 units, numbered 0\.\.31"):
        TrainingMonitor(probe, "conv1", [1, 40], tmp_path / "a", model=model)
    with pytest.raises(cv.LayerNotFoundError, match="conv1"):
        TrainingMonitor(probe, "conv9", [1], tmp_path / "b").record(0, model)
    with pytest.raises(ValueError, match="repeats"):
        TrainingMonitor(probe, "conv1", [1, 1], tmp_path / "c")
    with pytest.raises(ValueError, match="projections must be None or one of"):
        TrainingMonitor(probe, "conv1", [1], tmp_path / "d", projections="magic")
    with pytest.raises(TypeError, match="Metrics must be numbers"):
        TrainingMonitor(probe, "conv1", [1], tmp_path / "e").log(0, loss="low")
    with pytest.raises(TypeError, match="record\\(\\) takes a cv.Model or an nn.Module"):
        TrainingMonitor(probe, "conv1", [1], tmp_path / "f").record(0, "model.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no record.json.*cv.TrainingMonitor"):
        TrainingRecord.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist.*TrainingMonitor"):
        TrainingRecord.load(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / INDEX_NAME).write_text("{\"layer\": 1}")
    with pytest.raises(ValueError, match="not a cnnvis training record index"):
        TrainingRecord.load(tmp_path / "bad")


def small_net(channels: int) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU())


def test_another_net_is_recorded_with_its_own_preprocessing(tmp_path):
    net = small_net(1)
    gray = cv.Model(net, mean=(0.5,), std=(0.5,), input_size=(1, 32, 32))
    probe = torch.rand(20, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # independent: the net by hand on (x - 0.5) / 0.5, each unit's strongest image
        maxima = net.eval()[:4]((probe - 0.5) / 0.5).flatten(2).amax(2)  # [images, units] of layer "3"
    expected_values, expected_indices = maxima.max(0)
    monitor = TrainingMonitor(probe, "3", [0, 5, 7], tmp_path, model=gray, projections=None)
    monitor.record(0, net)  # a bare module: wrapped with the template's settings
    monitor.record(1, gray)
    record = monitor.result
    for epoch in (0, 1):
        # float32 convolutions summed in another order than the engine's batch: relative error ~1e-6
        np.testing.assert_allclose(record.values(epoch)[:, 0], expected_values[[0, 5, 7]].numpy(), rtol=1e-5)
        np.testing.assert_array_equal(record.indices(epoch)[:, 0], expected_indices[[0, 5, 7]].numpy())
        assert record.images(epoch).shape[2] == 1  # grayscale crops


def test_a_bare_module_of_unknown_preprocessing_is_refused(tmp_path):
    probe = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for net in (small_net(3), small_net(1)):
        monitor = TrainingMonitor(probe, "0", [0], tmp_path / f"c{net[0].in_channels}")
        with pytest.raises(ValueError, match=r"record\(\) got a bare Sequential, and the monitor does not know how it "
                                             r"preprocesses its input \(mean, std, input_size not given\)\. .*"
                                             r"model=cv\.Model\(net, mean=\.\.\., std=\.\.\., input_size="):
            monitor.record(0, net)
        assert monitor.recorded_epochs == []
    partial = TrainingMonitor(probe, "0", [0], tmp_path / "partial", mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ValueError, match=r"\(input_size not given\)"):
        partial.record(0, small_net(3))
    given = TrainingMonitor(probe, "0", [0], tmp_path / "given", mean=(0.5,) * 3, std=(0.5,) * 3,
                            input_size=(3, 32, 32), projections=None)
    assert given.record(0, small_net(3)) and given.result.images(0).shape[-1] <= 32
