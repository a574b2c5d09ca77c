"""TrainingTimeline: the grid's traits, images as binary buffers, scrubber -> chart marker, detail, live updates."""

import io
import json
import math

import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

import cnnvis_widgets as cv
from cnnvis_widgets.deconv.evolution import TrainingMonitor, TrainingRecord

UNITS = [0, 4, 9]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def probe(world):
    return torch.utils.data.Subset(world, range(32))


@pytest.fixture(scope="module")
def record(probe, tmp_path_factory):
    return TrainingRecord.from_mini_alexnet(probe, "conv1", UNITS, tmp_path_factory.mktemp("record"))


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png))).transpose(2, 0, 1)


def test_cells_hold_every_unit_and_epoch_as_png_bytes(record):
    tl = cv.TrainingTimeline(record)
    view = tl.view
    assert view.epochs == [0, 1, 2, 5, 10, 12] and view.units == UNITS and view.layer == "conv1"
    assert view.title == "MiniAlexNet · layer conv1"
    assert [(c["unit"], c["epoch"]) for c in view.cells] == [(u, e) for u in UNITS for e in view.epochs]
    for cell in view.cells:
        row = UNITS.index(cell["unit"])
        assert all(isinstance(b, bytes) and b.startswith(PNG_SIGNATURE) for b in cell["images"] + cell["projections"])
        np.testing.assert_array_equal(decode(cell["images"][0]), record.images(cell["epoch"])[row, 0])
        np.testing.assert_array_equal(decode(cell["projections"][0]), record.projections(cell["epoch"])[row, 0])
        assert cell["values"] == [float(record.values(cell["epoch"])[row, 0])]
        assert cell["indices"] == [int(record.indices(cell["epoch"])[row, 0])]
        assert cell["am"] is None
    # images leave as binary buffers; the JSON part is small and holds no base64 PNG
    state, paths, buffers = _remove_buffers(view.get_state())
    assert len(buffers) == 2 * len(view.cells)
    assert all(bytes(b).startswith(PNG_SIGNATURE) for b in buffers)
    text = json.dumps(state)
    assert "iVBORw0KGgo" not in text and len(text) < len(view._esm) + 8_000


def test_metrics_go_to_the_view_and_the_chart(record):
    tl = cv.TrainingTimeline(record)
    metrics = tl.view.metrics
    assert metrics["epochs"] == list(range(13))
    assert metrics["series"]["train_loss"][0] is None  # NaN travels as null
    assert metrics["series"]["val_accuracy"] == record.metrics["val_accuracy"]
    lines = {m.labels[0]: m for m in tl.chart.marks if m is not tl.marker}
    assert set(lines) == {"train_loss", "val_accuracy"}
    # the untrained network's NaN loss is left out of the curve, not drawn as a gap to nowhere
    np.testing.assert_array_equal(lines["train_loss"].x, np.arange(1, 13))
    np.testing.assert_allclose(lines["train_loss"].y, record.metrics["train_loss"][1:])
    # loss on the left scale, accuracy on the right one (0..1)
    assert lines["val_accuracy"].scales["y"] is tl.marker.scales["y"]
    assert lines["train_loss"].scales["y"] is not tl.marker.scales["y"]
    assert {a.label: a.side for a in tl.chart.axes} == {"epoch": "bottom", "loss": "left", "accuracy": "right"}


def test_a_front_end_that_moves_the_marker_has_it_to_itself(record):
    tl = cv.TrainingTimeline(record)
    assert tl.view.chart_marker is tl.marker  # the view finds the marker (also in an exported page)
    tl.view.set_state({"moves_marker": True})
    tl.view.epoch_index = 3
    assert tl.epoch == 5 and list(tl.marker.x) == [0, 0]  # the kernel left it to the front end
    tl.view.epoch_index = 99
    assert tl.epoch_index == 5  # still clamped


def test_scrubber_moves_the_chart_marker(record):
    tl = cv.TrainingTimeline(record)
    assert tl.epoch_index == 0 and list(tl.marker.x) == [0, 0]
    tl.view.epoch_index = 3  # what the front end's scrubber sets
    assert tl.epoch == 5 and list(tl.marker.x) == [5, 5]
    tl.epoch = 12
    assert tl.epoch_index == 5 and list(tl.marker.x) == [12, 12]
    tl.view.epoch_index = 99  # clamped to the last epoch
    assert tl.epoch_index == 5
    with pytest.raises(ValueError, match=r"Epoch 3 was not recorded; recorded epochs: \[0, 1, 2, 5, 10, 12\]"):
        tl.epoch = 3
    tl.play()
    assert tl.playing and tl.view.playing
    tl.pause()
    assert not tl.playing


def test_detail_of_the_selected_unit_at_the_current_epoch(record):
    tl = cv.TrainingTimeline(record)
    assert tl.detail is None
    tl.selected_unit = 4
    tl.epoch = 10
    detail = tl.detail
    assert (detail["unit"], detail["epoch"]) == (4, 10)
    np.testing.assert_array_equal(decode(detail["images"][0]), record.images(10)[1, 0])
    assert detail["metrics"] == {"train_loss": pytest.approx(record.metrics_at(10)["train_loss"]),
                                 "val_accuracy": record.metrics_at(10)["val_accuracy"]}
    tl.epoch = 0
    assert tl.detail["metrics"]["train_loss"] is None
    with pytest.raises(ValueError, match=r"unit 5 is not shown; the timeline's units are \[0, 4, 9\]"):
        tl.selected_unit = 5


def test_a_subset_of_units_in_a_chosen_order(record):
    tl = cv.TrainingTimeline(record, units=[9, 0])
    assert tl.view.units == [9, 0]
    assert [c["unit"] for c in tl.view.cells[:6]] == [9] * 6
    with pytest.raises(ValueError, match=r"unit 3 is not in the record; it follows units \[0, 4, 9\]"):
        cv.TrainingTimeline(record, units=[3])


def test_sources_and_errors(record, tmp_path, shown):
    assert cv.TrainingTimeline(str(record.directory)).view.epochs == record.epochs
    assert cv.TrainingTimeline(record.directory).view.units == UNITS
    bundle = shown(record)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    with pytest.raises(TypeError, match="TrainingTimeline shows a TrainingRecord.*TrainingMonitor"):
        cv.TrainingTimeline(42)
    with pytest.raises(FileNotFoundError, match="holds no record.json"):
        cv.TrainingTimeline(tmp_path)
    with pytest.raises(ValueError, match="tile_size"):
        cv.TrainingTimeline(record, tile_size=2)


def test_follows_a_monitor_while_it_records(probe, tmp_path):
    monitor = TrainingMonitor(probe, "conv1", [1, 2], tmp_path)
    tl = cv.TrainingTimeline(monitor)
    assert tl.view.epochs == [] and tl.view.status == "No epochs recorded yet."
    monitor.record(0, cv.load_model("mini_alexnet", epoch=0, device="cpu"), val_accuracy=0.1)
    assert tl.view.epochs == [0] and len(tl.view.cells) == 2 and tl.view.status == ""
    monitor.record(1, cv.load_model("mini_alexnet", epoch=1, device="cpu"), val_accuracy=0.2)
    assert tl.view.epochs == [0, 1] and tl.epoch == 1  # on the last epoch, it follows the newest
    tl.epoch = 0
    monitor.log(2, val_accuracy=0.3)
    assert tl.epoch == 0 and tl.view.metrics["series"]["val_accuracy"] == [0.1, 0.2, 0.3]
    assert [m for m in tl.chart.marks if m is not tl.marker][0].y.tolist() == [0.1, 0.2, 0.3]
    # a closed timeline is no longer updated
    view = tl.view
    tl.close()
    assert monitor._listeners == [] and view.comm is None
    monitor.record(2, cv.load_model("mini_alexnet", epoch=2, device="cpu"))
    assert view.epochs == [0, 1]
    assert math.isclose(monitor.result.metrics["val_accuracy"][2], 0.3)


def test_activation_maximization_images_reach_the_cells(probe, tmp_path):
    monitor = TrainingMonitor(probe, "conv3", [2, 5], tmp_path, am_steps=2, am_options={"preset": "simonyan"})
    monitor.record(1, cv.load_model("mini_alexnet", epoch=1, device="cpu"))
    record = monitor.result
    cells = cv.TrainingTimeline(record).view.cells
    for row, cell in enumerate(cells):
        np.testing.assert_array_equal(decode(cell["am"]), record.am(1)[row])
        assert cell["am_value"] == pytest.approx(float(record.am_values(1)[row]))
