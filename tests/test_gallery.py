import io

import numpy as np
import pytest
import torch
from PIL import Image

import cnnvis_widgets as cv


def decode(png) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).transpose(2, 0, 1)


@pytest.fixture(scope="module")
def results(mini, world):
    subset = torch.utils.data.Subset(world, range(60))
    return {layer: cv.top_activations(mini, subset, layer, k=4, progress=False) for layer in ("conv1", "conv3")}


def test_tiles_carry_png_bytes_of_the_crops(results):
    g = cv.NeuronGallery(results["conv1"], page_size=10)
    assert g.layers == ["conv1"] and g.unit_count == 32 and len(g.tiles) == 10
    tile = g.tiles[3]
    assert tile["unit"] == 3
    assert all(isinstance(b, bytes) for b in tile["images"])
    np.testing.assert_array_equal(decode(tile["images"][1]), results["conv1"].crops[3, 1])
    np.testing.assert_array_equal(decode(tile["filter"]), results["conv1"].filters[3])
    assert tile["values"] == pytest.approx(results["conv1"].values[3].tolist())
    assert tile["image_indices"] == results["conv1"].indices[3].tolist()
    # bytes travel as binary buffers, not inside the JSON
    from ipywidgets.widgets.widget import _remove_buffers

    state, paths, buffers = _remove_buffers(g.get_state())
    assert ["tiles", 3, "images", 1] in paths and len(buffers) >= 10 * 5
    assert "iVBOR" not in str(state)  # no base64 PNG anywhere in the JSON part


def test_paging_and_layer_switch(results):
    g = cv.NeuronGallery(results, page_size=10)
    assert g.layer == "conv1"
    g.page = 3
    assert [t["unit"] for t in g.tiles] == [30, 31]
    g.page = 99
    assert g.page == 3
    g.layer = "conv3"
    assert g.page == 0 and g.unit_count == 96 and g.tiles[0]["filter"] is None


def test_model_source_computes_on_pick_with_progress(mini, world):
    subset = torch.utils.data.Subset(world, range(30))
    g = cv.NeuronGallery(mini, dataset=subset, layers=["conv1", "conv2"], k=3, page_size=8)
    assert g.layer == "conv2" and g.unit_count == 64
    seen = []
    g.observe(lambda c: seen.append(c["new"]), names="progress")
    g.layer = "conv1"
    assert g.unit_count == 32 and seen[-1] == -1.0 and 0 < max(seen) <= 1.0
    g.selected_unit = 2
    assert g.detail["unit"] == 2 and len(g.detail["context"]) == 3
    context = decode(g.detail["context"][0])
    assert context.shape[1] == 64 * 3  # upscaled full image with the field outlined
    g.selected_unit = -1
    assert g.detail == {}
    with pytest.raises(cv.LayerNotFoundError):
        cv.NeuronGallery(mini, dataset=subset, layers=["conv9"])
    with pytest.raises(ValueError, match="dataset="):
        cv.NeuronGallery(mini)


def test_output_layer_tiles_are_labelled_with_class_names(mini, world):
    subset = torch.utils.data.Subset(world, range(30))
    g = cv.NeuronGallery(mini, dataset=subset, layers=["fc8"], k=2)
    assert g.tiles[0]["label"] == mini.classes[0]


def test_class_am_tiles_are_labelled_with_class_names(mini, tmp_path):
    am = cv.activation_maximization(mini, None, objective="logit", units=[3, 1], steps=2, progress=False)
    assert am.labels == [mini.classes[3], mini.classes[1]]
    g = cv.NeuronGallery(am)
    assert [t["label"] for t in g.tiles] == [mini.classes[3], mini.classes[1]]
    assert cv.AMResult.load(am.save(tmp_path / "am.safetensors")).labels == am.labels
    channels = cv.activation_maximization(mini, "conv5", units=[0], steps=2, progress=False)
    assert channels.labels is None and cv.NeuronGallery(channels).tiles[0]["label"] == ""


def test_result_displays_as_gallery(results, shown):
    data = shown(results["conv3"])
    assert "application/vnd.jupyter.widget-view+json" in data


def test_am_images_beside_top_images_and_am_alone(mini, results, tmp_path):
    am = cv.activation_maximization(mini, "conv3", units=[1, 4], steps=8, n_per_unit=2, progress=False)
    g = cv.NeuronGallery(results, am=am, page_size=5)
    g.layer = "conv3"
    tiles = {t["unit"]: t for t in g.tiles}
    assert len(tiles[1]["am"]) == 2 and tiles[0]["am"] == [] and len(tiles[1]["images"]) == 4
    np.testing.assert_array_equal(decode(tiles[4]["am"][1]), (am.images[1, 1] * 255).round().astype(np.uint8))
    assert tiles[4]["am_values"] == pytest.approx(am.activations[1].tolist())
    loaded = cv.AMResult.load(am.save(tmp_path / "am.safetensors"))
    np.testing.assert_array_equal(loaded.images, am.images)
    assert loaded.config == am.config and loaded.layer == "conv3"
    alone = cv.NeuronGallery(loaded)
    assert alone.layers == ["conv3"] and alone.unit_count == 2 and [t["unit"] for t in alone.tiles] == [1, 4]
    assert alone.tiles[0]["images"] == [] and len(alone.tiles[0]["am"]) == 2


def test_projections_ride_beside_the_crops(mini, world, results):
    subset = torch.utils.data.Subset(world, range(48))
    gallery = cv.NeuronGallery(mini, dataset=subset, layers=["conv3"], k=4, page_size=2, projections="deconvnet")
    top = gallery.result
    assert top.projections is not None and top.meta["projection_rule"] == "deconvnet"
    tile = gallery.tiles[1]
    assert len(tile["projections"]) == len(tile["images"]) == 4
    np.testing.assert_array_equal(decode(tile["projections"][2]), top.projections[1, 2])
    assert cv.NeuronGallery(results["conv3"]).tiles[0]["projections"] == []  # computed without projections


class CountingImages(torch.utils.data.Dataset):
    """ShapeWorld images that count their reads and can be held back, to watch a background computation."""

    def __init__(self, world, n):
        import threading

        self.world, self.n, self.reads, self.gate = world, n, 0, threading.Event()
        self.gate.set()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.gate.wait(30)
        self.reads += 1
        return self.world[i]


def pick_in_view(gallery, layer):
    """The comm message a layer picked in the view delivers (ipywidgets' set_state)."""
    gallery.set_state({"layer": layer})


def test_a_layer_picked_in_the_view_computes_in_the_background(mini, world):
    images = CountingImages(world, 64)
    g = cv.NeuronGallery(mini, dataset=images, layers=["conv1", "conv2"], layer="conv1", k=2, page_size=4)
    shown = [t["unit"] for t in g.tiles]
    images.gate.clear()  # hold the images: the computation cannot finish yet
    pick_in_view(g, "conv2")
    assert g.computing and g.status.startswith("computing top activations of conv2")  # returned at once
    assert g.unit_count == 32 and [t["unit"] for t in g.tiles] == shown  # still showing conv1
    images.gate.set()
    g.wait(60)
    assert not g.computing and g.layer == "conv2" and g.unit_count == 64 and g.status == ""
    direct = cv.top_activations(mini, images, "conv2", k=2, progress=False)
    assert g.tiles[1]["image_indices"] == direct.indices[1].tolist()


def test_cancel_stops_within_one_batch_and_returns_to_the_shown_layer(mini, world):
    images = CountingImages(world, 640)
    g = cv.NeuronGallery(mini, dataset=images, layers=["conv1", "conv3"], layer="conv1", k=2, page_size=4)
    reads_before = images.reads
    g.observe(lambda change: change["new"] > 0.1 and g.cancel(), names="progress")  # Cancel at the 2nd batch
    pick_in_view(g, "conv3")
    g.wait(60)
    scanned = images.reads - reads_before
    assert 64 < scanned <= 3 * 64, scanned  # stopped after the batch that was running, far from all 640
    assert g.layer == "conv1" and g.unit_count == 32 and not g.computing
    assert g.status.startswith("Cancelled conv3 at ")
    assert g._results.keys() == {"conv1"}


def test_a_failing_background_computation_is_reported(mini, world):
    class Broken(CountingImages):
        broken = False

        def __getitem__(self, i):
            if self.broken and i >= 40:
                raise OSError(f"image {i} cannot be read")
            return super().__getitem__(i)

    images = Broken(world, 64)
    g = cv.NeuronGallery(mini, dataset=images, layers=["conv1", "conv2"], layer="conv1", k=2)
    images.broken = True
    pick_in_view(g, "conv2")
    with pytest.raises(OSError, match="image 40 cannot be read"):
        g.wait(60)
    assert "Could not compute conv2" in g.status and g.layer == "conv1" and not g.computing
