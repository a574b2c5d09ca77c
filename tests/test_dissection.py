"""Network Dissection (Bau et al. 2017): thresholds, IoU tallies against a brute-force loop, planted detectors,
resuming, files."""

import csv
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.datasets import Broden, BrodenWriter
from cnnvis_widgets.datasets.shapeworld import COLORS
from cnnvis_widgets.dissection import DissectionResult, dissect
from cnnvis_widgets.dissection import engine as dissect_module
from cnnvis_widgets.dissection.quantile import TailQuantile
from cnnvis_widgets.dissection.result import upsample_maps


# -- thresholds ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expected", [True, False])
@pytest.mark.parametrize("skip", [True, False])
def test_tail_quantile_is_exact_while_it_fits(expected, skip):
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(5, 3000, generator=g) * (1 + torch.arange(5.0))[:, None] for _ in range(7)]
    sketch = TailQuantile(5, 0.005, expected=7 * 3000 if expected else None)
    sketch.skip_below_tail = skip
    for batch in batches:
        sketch.add(batch)
    reference = torch.quantile(torch.cat(batches, 1).double(), 1 - 0.005, dim=1)
    assert sketch.level == 0
    assert torch.allclose(sketch.result().double(), reference, rtol=0, atol=1e-5)


def test_tail_quantile_streams_in_bounded_memory():
    g = torch.Generator().manual_seed(1)
    sketch = TailQuantile(3, 0.01, capacity=1024, seed=3)
    values = []
    for _ in range(40):
        batch = torch.rand(3, 5000, generator=g) ** 2
        values.append(batch)
        sketch.add(batch)
        assert sketch.buffer.shape[1] <= 1024
    assert sketch.level > 0  # 200,000 values need 2,000 kept: it subsampled
    estimate = sketch.result()
    everything = torch.cat(values, 1)
    rank = (everything > estimate[:, None]).double().mean(1)  # the share above the estimate, ideally q
    assert torch.all((rank - 0.01).abs() < 0.0015), rank


def test_tail_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError, match="between 0 and 1"):
        TailQuantile(2, 1.5)
    with pytest.raises(ValueError, match="empty"):
        TailQuantile(2, 0.1).result()


# -- a small dataset with every kind of label ------------------------------------------------------------------
CATEGORIES = ["color", "object", "part", "scene"]
LABELS = [("red", "color"), ("blue", "color"), ("box", "object"), ("disc", "object"), ("lid", "part"),
          ("rim", "part"), ("beach", "scene"), ("city", "scene")]


def write_every_kind(root, n=12, size=32, seg=16, seed=0):
    """Images with two colour layers, object masks, parts in two overlapping layers (the same label in both
    at some pixels), image-level scenes, some images without parts or scene; label 'disc' is an object in the
    masks but its primary category is 'part' (label.csv lists it in both)."""
    rng = np.random.default_rng(seed)
    with BrodenWriter(root, CATEGORIES, LABELS) as writer:
        for i in range(n):
            image = (rng.integers(0, 256, (size, size, 3))).astype(np.uint8)
            color_a = rng.choice([0, 1, 2], (seg, seg), p=[0.5, 0.3, 0.2])
            color_b = rng.choice([0, 1, 2], (seg, seg), p=[0.7, 0.1, 0.2])
            objects = np.zeros((seg, seg), np.int64)
            top, left = rng.integers(0, seg - 6, 2)
            objects[top:top + 6, left:left + 6] = rng.choice([3, 4])
            part_a = np.where(rng.random((seg, seg)) < 0.2, 5, 0)
            part_b = np.where(rng.random((seg, seg)) < 0.3, rng.choice([5, 6], (seg, seg)), 0)
            pixel = {"color": [color_a, color_b], "object": [objects]}
            if i % 3:
                pixel["part"] = [part_a, part_b]
            scenes = {"scene": [int(rng.choice([7, 8]))]} if i % 4 else {}
            writer.add(image, "val", pixel_masks=pixel, image_labels=scenes)
    label_csv = root / "label.csv"
    text = label_csv.read_text().splitlines()
    text[4] = text[4].replace(",object(", ",part(99);object(")  # label 4, 'disc'
    label_csv.write_text("\n".join(text) + "\n")
    return Broden(root)


class PickPixels(nn.Module):
    """Units that each copy one input channel (times a scale) at stride 4: their values are exact, whatever
    the batch, so a per-image loop must give the same thresholds and masks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, kernel_size=2, stride=4, bias=False)
        weight = torch.zeros(6, 3, 2, 2)
        for unit, (channel, dy, dx, scale) in enumerate([(0, 0, 0, 1.0), (1, 1, 0, 0.5), (2, 0, 1, 2.0),
                                                         (0, 1, 1, -1.0), (1, 0, 0, 1.0), (2, 1, 1, 0.25)]):
            weight[unit, channel, dy, dx] = scale
        self.conv.weight.data = weight

    def forward(self, x):
        return self.conv(x)


def brute_force(broden, model, quantile, layer_size):
    """Counts by a plain loop: image by image, unit by unit, concept by concept."""
    images = torch.stack([broden[i] for i in range(len(broden))])
    with torch.no_grad():
        acts = model.module(images)  # [N, U, h, w]
    units = acts.shape[1]
    thresholds = torch.quantile(acts.transpose(0, 1).reshape(units, -1).double(), 1 - quantile, dim=1).float()
    numbers = [label.number for label in broden.labels]
    primary = [label.category for label in broden.labels]
    inter = np.zeros((units, len(numbers)), np.int64)
    active = np.zeros((units, len(broden.categories)), np.int64)
    truth = np.zeros(len(numbers), np.int64)
    for i in range(len(broden)):
        sh, sw = broden.seg_size(i)
        masks = broden.label_masks(i)
        seg = broden.segmentation(i)
        carries = [bool(seg[c].image_labels) or bool((seg[c].masks != 0).any()) for c in broden.categories]
        for j, number in enumerate(numbers):
            truth[j] += masks[number].sum() if number in masks else 0
        for u in range(units):
            up = F.interpolate(acts[i:i + 1, u:u + 1], size=(sh, sw), mode="bilinear", align_corners=False)[0, 0]
            on = (up > thresholds[u]).numpy()
            for k, carried in enumerate(carries):
                if carried:
                    active[u, k] += on.sum()
            for j, number in enumerate(numbers):
                if number in masks:
                    inter[u, j] += (on & masks[number]).sum()
    cat = [broden.categories.index(p) for p in primary]
    union = active[:, cat] + truth[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return thresholds.numpy(), inter, active, truth, iou


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory):
    return write_every_kind(tmp_path_factory.mktemp("every") / "broden")


@pytest.mark.parametrize("sparse", [True, False])
def test_iou_equals_a_brute_force_loop(every_kind, sparse, monkeypatch, tmp_path):
    monkeypatch.setattr(dissect_module, "_SPARSE", sparse)
    model = cv.Model(PickPixels(), mean=None, std=None, input_size=(3, 32, 32), name="pick")
    quantile = 0.2
    result = dissect(model, every_kind, ["conv"], quantile=quantile, batch_size=5, progress=False,
                     cache=tmp_path / "codes")
    thresholds, inter, active, truth, iou = brute_force(every_kind, model, quantile, 16)
    d = result.layers["conv"]
    assert every_kind.label(4).category == "part"  # the primary category rule is exercised
    assert np.allclose(d.thresholds, thresholds, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result.concept_pixels, truth)
    np.testing.assert_array_equal(d.intersection, inter)
    np.testing.assert_array_equal(d.unit_pixels, active)
    assert np.abs(result.iou("conv") - iou).max() < 1e-6
    assert (inter > 0).mean() > 0.8 and inter.sum() > 1000  # the comparison is not vacuous
    # the second run reads the decoded-mask cache and counts the same
    again = dissect(model, every_kind, ["conv"], quantile=quantile, batch_size=7, progress=False,
                    cache=tmp_path / "codes")
    np.testing.assert_array_equal(again.layers["conv"].intersection, inter)


def test_second_pass_reads_the_spilled_images_exactly(every_kind, monkeypatch, tmp_path):
    """Pass 2 reads back the images pass 1 wrote to a temporary file; decoding them again gives the same
    counts, and the file is gone after the run, finished or interrupted."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = cv.Model(PickPixels(), mean=None, std=None, input_size=(3, 32, 32), name="pick")
    reads = []
    spill_image = dissect_module._ImageSpill.image
    monkeypatch.setattr(dissect_module._ImageSpill, "image", lambda self, i: reads.append(i) or spill_image(self, i))
    spilled = dissect(model, every_kind, ["conv"], quantile=0.2, batch_size=5, progress=False, cache=False)
    assert sorted(reads) == list(range(len(every_kind)))  # pass 2 read every image from the spill
    monkeypatch.setattr(dissect_module, "_IMAGE_SPILL_BYTES", 0)  # too small: decoded twice
    decoded = dissect(model, every_kind, ["conv"], quantile=0.2, batch_size=5, progress=False, cache=False)
    assert len(reads) == len(every_kind)
    for field in ("thresholds", "intersection", "unit_pixels", "top_indices"):
        np.testing.assert_array_equal(getattr(spilled.layers["conv"], field), getattr(decoded.layers["conv"], field))
    monkeypatch.setattr(dissect_module, "_IMAGE_SPILL_BYTES", 1 << 31)

    def stop(fraction):
        if fraction > 0.75:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dissect(model, every_kind, ["conv"], quantile=0.2, batch_size=5, progress=stop, cache=False)
    assert not list(tmp_path.glob("cnnvis-dissect-images-*"))


def test_thresholds_on_upsampled_maps(every_kind):
    model = cv.Model(PickPixels(), mean=None, std=None, input_size=(3, 32, 32), name="pick")
    result = dissect(model, every_kind, "conv", quantile=0.02, threshold_on="upsampled", progress=False,
                     cache=False, batch_size=4)
    images = torch.stack([every_kind[i] for i in range(len(every_kind))])
    with torch.no_grad():
        up = F.interpolate(model.module(images), size=(16, 16), mode="bilinear", align_corners=False)
    reference = torch.quantile(up.transpose(0, 1).reshape(6, -1), 0.98, dim=1)
    assert np.allclose(result.layers["conv"].thresholds, reference.numpy(), atol=1e-6)


def test_receptive_field_upsampling_puts_each_activation_at_its_field_centre():
    # a unit at stride 4 with a 2x2 field starting at 0: activation (i, j) is centred on input pixel
    # (4i + 0.5, 4j + 0.5); on a 32x32 segmentation of a 32x32 input, that pixel gets the value exactly
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 3, 5] = 1.0
    field = ((2, 2), (4, 4), (0, 0))
    up = upsample_maps(maps, (32, 32), "receptive_field", field, (32, 32))[0, 0]
    peak = divmod(int(up.argmax()), 32)
    assert peak in {(12, 20), (12, 21), (13, 20), (13, 21)}
    assert abs(float(up[12:14, 20:22].mean()) - (1 - 0.125) ** 2) < 1e-6  # half a pixel from the centre, both ways
    assert float(up[0, 0]) == 0.0


# -- planted detectors ------------------------------------------------------------------------------------------
class ColourUnits(nn.Module):
    """Unit 0: red - green - blue (ShapeWorld's red is the only colour where it exceeds 0.4); unit 1:
    green - red - blue (only green is above 0.2); unit 2: brightness. Stride 2 samples the pixels the
    masks (taken at every other pixel) keep."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1, stride=2)
        self.conv.weight.data = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [1 / 3, 1 / 3, 1 / 3]])[:, :, None, None]
        self.conv.bias.data.zero_()

    def forward(self, x):
        return self.conv(x)


def test_planted_colour_units_are_labelled_with_their_colour(world):
    model = cv.Model(ColourUnits(), mean=None, std=None, input_size=(3, 64, 64), name="colours")
    probe = dissect(model, world, ["conv"], progress=False)
    pixels = world.seg_size(0)[0] * world.seg_size(0)[1] * len(world)
    for unit, colour in [(0, "red"), (1, "green")]:
        concept = probe.concept_names.index(colour)
        fraction = probe.concept_pixels[concept] / pixels
        result = dissect(model, world, ["conv"], quantile=float(fraction), exact_quantile=True, progress=False)
        labels = result.labels("conv")
        assert result.concept_names[labels["concept"][unit]] == colour
        assert labels["iou"][unit] > 0.8, (colour, labels["iou"][unit])
        assert labels["detector"][unit]


def test_planted_object_unit(tmp_path):
    # squares in a colour nothing else has, on a background of other colours: a unit for that colour
    # segments the squares, so it is a 'square' detector
    rng = np.random.default_rng(0)
    palette = np.array([c for name, c in COLORS.items() if name != "blue"], np.uint8)
    with BrodenWriter(tmp_path / "squares", ["object"], [("square", "object"), ("sky", "object")]) as writer:
        for _ in range(30):
            image = palette[rng.integers(0, len(palette), (16, 16))].repeat(4, 0).repeat(4, 1)
            mask = np.full((32, 32), 2, np.int64)
            top, left = rng.integers(0, 20, 2)
            side = rng.integers(6, 12)
            mask[top:top + side, left:left + side] = 1
            image[np.kron(mask == 1, np.ones((2, 2), bool))] = COLORS["blue"]
            writer.add(image, "val", pixel_masks={"object": [mask]})
    squares = Broden(tmp_path / "squares")

    class Blue(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, kernel_size=1, stride=2, bias=False)
            self.conv.weight.data = torch.tensor([[-1.0, -1, 1], [1.0, 1, 1]])[:, :, None, None]

        def forward(self, x):
            return self.conv(x)

    model = cv.Model(Blue(), mean=None, std=None, input_size=(3, 64, 64), name="blue")
    probe = dissect(model, squares, "conv", progress=False, cache=False)
    fraction = probe.concept_pixels[0] / (32 * 32 * len(squares))
    result = dissect(model, squares, "conv", quantile=float(fraction), progress=False, cache=False)
    labels = result.labels("conv")
    assert result.concept_names[labels["concept"][0]] == "square"
    assert labels["iou"][0] > 0.8


# -- MiniAlexNet, resuming, files ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mini_result(mini, world):
    return dissect(mini, world, ["conv1", "conv5"], progress=False)


def test_mini_alexnet_dissection(mini_result, mini):
    assert mini_result.layers["conv1"].units == 32 and mini_result.layers["conv5"].units == 64
    summary = mini_result.summary()
    assert list(summary.index) == ["conv1", "conv5"]
    assert summary.loc["conv5", "unique concepts"] >= 5  # a trained network has detectors
    top = mini_result.layers["conv5"]
    # the top images are ordered and their stored maps peak at the stored values
    assert np.all(np.diff(top.top_values, axis=1) <= 0)
    assert np.allclose(top.top_maps.reshape(64, 10, -1).max(-1), top.top_values, atol=1e-5)
    images, unit_masks, concept_masks = mini_result.unit_images("conv5", 3, k=4)
    assert images.shape == (4, 64, 64, 3) and unit_masks.shape == (4, 32, 32) and concept_masks.shape == (4, 32, 32)
    assert unit_masks[0].any()  # the best image has the unit on somewhere


def test_model_untouched_and_hooks_removed(mini, world):
    before = {k: v.clone() for k, v in mini.module.state_dict().items()}
    mini.module.train()
    with pytest.raises(ValueError, match="no spatial output"):
        dissect(mini, world, ["conv1", "fc6"], progress=False)
    small = cv.datasets.shapeworld(split="val")
    calls = [0]

    def stop(fraction):
        calls[0] += 1
        if fraction > 0.3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dissect(mini, small, ["conv2"], progress=stop)
    assert mini.module.training
    mini.module.eval()
    assert all(not m._forward_hooks for m in mini.module.modules())
    after = mini.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_interrupted_run_resumes_to_the_same_result(mini, world, tmp_path):
    layers = ["conv2", "conv4"]
    whole = dissect(mini, world, layers, progress=False, checkpoint=tmp_path, checkpoint_every=2)
    assert not list(tmp_path.glob("dissection-*"))  # a finished run leaves no checkpoint
    for stop_at in (0.25, 0.75):  # in the thresholds pass, then in the tallies pass
        def stop(fraction, stop_at=stop_at):
            if fraction > stop_at:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            dissect(mini, world, layers, progress=stop, checkpoint=tmp_path, checkpoint_every=2)
        assert list(tmp_path.glob("dissection-*"))
        done = []
        resumed = dissect(mini, world, layers, progress=done.append, checkpoint=tmp_path, checkpoint_every=2)
        assert done[0] > stop_at - 0.1  # it started where the checkpoint left off
        for layer in layers:
            a, b = whole.layers[layer], resumed.layers[layer]
            np.testing.assert_array_equal(a.thresholds, b.thresholds)
            np.testing.assert_array_equal(a.intersection, b.intersection)
            np.testing.assert_array_equal(a.unit_pixels, b.unit_pixels)
            np.testing.assert_array_equal(a.top_indices, b.top_indices)


def test_table_csv_html_and_round_trip(mini_result, tmp_path):
    table = mini_result.table("conv5")
    labels = mini_result.labels("conv5")
    iou = mini_result.iou("conv5")
    assert len(table) == 64
    assert np.allclose(table["iou"], iou.max(1))
    assert list(table["label"]) == [mini_result.concept_names[c] for c in iou.argmax(1)]
    for category in mini_result.categories:
        assert f"{category}-label" in table and f"{category}-iou" in table
    files = mini_result.to_csv(tmp_path / "csv")
    assert [f.name for f in files] == ["conv1.csv", "conv5.csv"]
    with open(files[1]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["unit", "category", "label", "score"]
    assert "color-truth" in rows[0] and "part-intersect" in rows[0]
    best = int(np.argmax(labels["iou"]))
    assert int(rows[0]["unit"]) == best + 1 and abs(float(rows[0]["score"]) - labels["iou"][best]) < 1e-6
    c = mini_result.concept_names.index(rows[0]["part-label"])
    assert int(rows[0]["part-intersect"]) == mini_result.layers["conv5"].intersection[best, c]
    report = mini_result.to_html(tmp_path / "report.html", images_per_unit=2)
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 2 * (32 + 64)
    assert "Unique concepts detected per category" in text
    loaded = DissectionResult.load(mini_result.save(tmp_path / "dissection.safetensors"))
    np.testing.assert_array_equal(loaded.iou("conv5"), iou)
    assert loaded.concept_names == mini_result.concept_names and loaded.options == mini_result.options
    np.testing.assert_array_equal(loaded.unit_masks("conv5", 7), mini_result.unit_masks("conv5", 7))


def test_errors_say_what_to_do(mini, world):
    with pytest.raises(TypeError, match="shapeworld"):
        dissect(mini, torch.rand(4, 3, 64, 64), ["conv1"])
    with pytest.raises(ValueError, match="0.005"):
        dissect(mini, world, ["conv1"], quantile=0)
    with pytest.raises(KeyError, match="conv1"):
        dissect(mini, world, ["conv9"])


def test_torchvision_model_with_in_place_relus_is_dissected_before_the_relu():
    # alexnet's features.10 (conv5) is followed by ReLU(inplace=True): thresholds must come from the
    # conv's own output, as a hook that copies it sees it
    model = cv.load_model("alexnet", weights=None, device="cpu")
    torch.manual_seed(0)
    small = cv.datasets.shapeworld(split="val", sizes={"train": 0, "val": 12})
    # a low threshold (90% of values above it) is negative before the ReLU and 0 after it
    result = dissect(model, small, ["features.10"], quantile=0.9, batch_size=6, progress=False)
    copies = []
    handle = model.module.features[10].register_forward_hook(lambda m, i, o: copies.append(o.detach().clone()))
    try:
        with torch.no_grad():
            model(cv.images.ImageSource(small, (224, 224)).images(range(len(small))))
    finally:
        handle.remove()
    acts = copies[0]
    reference = torch.quantile(acts.transpose(0, 1).reshape(acts.shape[1], -1), 0.1, dim=1)
    assert (reference < 0).float().mean() > 0.5  # so reading after the ReLU would give 0 instead
    assert np.allclose(result.layers["features.10"].thresholds, reference.numpy(), atol=1e-5)
    assert all(not m._forward_hooks for m in model.module.modules())
