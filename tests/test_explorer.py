"""AMExplorer: live activation maximization in a background thread, with images and objective curves."""

import threading

import bqplot
import numpy as np
import pytest
import torch

from cnnvis_widgets.widgets.am_explorer import AMExplorer

STEPS = 24


def decode(png):
    from PIL import Image
    import io

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_defaults(mini):
    ex = AMExplorer(mini)
    assert ex.layer == "conv5"  # the last conv layer
    assert ex.view.unit_count == 64
    assert ex.children == (ex.view, ex.chart)
    assert "fc8" in ex.view.layers and "conv1" in ex.view.layers
    assert ex.view.objectives == ["channel", "neuron", "logit"]
    assert ex.view.presets == ["lucid", "yosinski", "simonyan", "dgn", "maco"]
    assert ex.steps == 512 and ex.lr == 0.05
    assert {a.label for a in ex.chart.axes} == {"step", "objective"}
    assert ex.view._esm  # the bundle is built
    assert not ex.running and ex.result is None


def test_run_updates_images_and_chart(mini):
    state = {k: v.clone() for k, v in mini.module.state_dict().items()}
    ex = AMExplorer(mini, layer="conv5", units=[3, 9], steps=STEPS, snapshot_every=4)
    seen = []
    ex.view.observe(lambda change: seen.append((ex.step, list(change["new"]))), names="images")
    result = ex.run(wait=True)
    assert result is ex.result and result is not None
    assert not ex.running and ex.step == STEPS
    assert ex.status.startswith("done: objective #3 ")
    assert ex.image_units == [3, 9] and ex.view.image_layer == "conv5"
    snapshot_steps = [s for s, images in seen if images]
    assert snapshot_steps[0] == 0 and snapshot_steps[-1] == STEPS and len(snapshot_steps) >= STEPS // 4
    first = [decode(p) for p in next(images for _, images in seen if images)]
    last = [decode(p) for p in ex.images]
    assert len(last) == 2 and last[0].shape == (64, 64, 3)
    for a, b in zip(first, last):
        assert np.abs(a - b).mean() > 5  # the images formed during the run
    lines = ex.chart.marks
    assert len(lines) == 2 and all(isinstance(m, bqplot.Lines) for m in lines)
    assert [m.labels for m in lines] == [["#3"], ["#9"]]
    assert result.history.shape == (STEPS, 2)
    for i, line in enumerate(lines):
        assert len(line.x) == len(line.y) == STEPS
        np.testing.assert_allclose(line.x, np.arange(1, STEPS + 1))
        np.testing.assert_allclose(line.y, result.history[:, i], rtol=1e-6)
    # the user's module is untouched: no hooks left, same weights
    for module in mini.module.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    for k, v in mini.module.state_dict().items():
        assert torch.equal(v, state[k])


def test_stop_ends_early(mini):
    ex = AMExplorer(mini, layer="conv5", units=[1], steps=200, snapshot_every=4)
    ex.view.observe(lambda change: ex.stop() if change["new"] >= 4 else None, names="step")
    ex.run()
    assert ex.running
    assert ex.wait(60)
    assert not ex.running
    assert 4 <= ex.step < 200
    assert ex.status == f"stopped at step {ex.step}"
    assert ex.result.history.shape[0] == ex.step
    assert len(ex.images) == 1
    assert len(ex.chart.marks[0].y) == ex.step


def test_stop_message_from_the_view(mini):
    ex = AMExplorer(mini, layer="conv5", units=[0], steps=500, snapshot_every=4)
    started = threading.Event()
    ex.view.observe(lambda change: started.set() if change["new"] >= 4 else None, names="step")
    ex._on_msg(ex.view, {"type": "run"}, [])
    assert started.wait(60)
    thread = ex._thread
    ex._on_msg(ex.view, {"type": "run"}, [])  # ignored while running
    assert ex._thread is thread
    ex._on_msg(ex.view, {"type": "stop"}, [])
    assert ex.wait(60) and not ex.running and ex.step < 500


def test_invalid_units_start_nothing(mini):
    ex = AMExplorer(mini, layer="conv5", units=[0], steps=STEPS)
    ex.units = [2, 64]
    assert ex.status.startswith("error: unit 64 is out of range")
    assert ex.run() is None
    assert ex._thread is None and not ex.running
    ex.units = []
    assert ex.status.startswith("error: enter at least one unit")
    ex.units = [2]
    assert ex.status == ""


def test_bad_settings_go_to_status(mini):
    ex = AMExplorer(mini, layer="conv5", units=[0], steps=STEPS, blur_every=4)  # lucid optimizes Fourier
    ex.run()
    assert ex._thread is None
    assert ex.status.startswith("error: blur_every")


def test_errors_in_the_thread_go_to_status(mini, monkeypatch):
    import cnnvis_widgets.widgets.am_explorer as explorer

    def boom(**kwargs):
        raise RuntimeError("out of luck")

    monkeypatch.setattr(explorer, "activation_maximization", boom)
    ex = AMExplorer(mini, layer="conv5", units=[0], steps=STEPS)
    ex.run(wait=True)
    assert not ex.running
    assert ex.status == "error: RuntimeError: out of luck"
    assert isinstance(ex.error, RuntimeError)


def test_preset_logit_and_layers(mini):
    ex = AMExplorer(mini, layer="conv3", units=[0])
    ex.preset = "yosinski"
    assert ex.view.blur_every == 4 and ex.view.pixel_param
    ex.preset = "simonyan"
    assert ex.l2 == 1e-3 and ex.view.blur_every == 0
    ex.objective = "logit"
    assert ex.layer == "fc8" and ex.view.unit_count == 32
    ex.layer = "conv2"
    assert ex.objective == "channel" and ex.view.unit_count == 64
    with pytest.raises(Exception):
        AMExplorer(mini, layer="nope")
    with pytest.raises(TypeError):
        AMExplorer(mini, speed=3)


def test_logit_run(mini):
    ex = AMExplorer(mini, units=[2], objective="logit", preset="simonyan", steps=8, snapshot_every=4)
    assert ex.layer == "fc8"
    result = ex.run(wait=True)
    assert result.layer is None and ex.step == 8
    assert ex.image_labels == [f"fc8 #2 {mini.classes[2]}"]
    assert ex.status.startswith("done")
