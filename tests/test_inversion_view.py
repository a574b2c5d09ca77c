"""InversionView: strips as PNG bytes in binary buffers, toggles from Python, the chart's highlighted line, errors."""

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

from cnnvis_widgets.images import to_hwc_uint8
from cnnvis_widgets.inversion import InversionResult, pixel_error
from cnnvis_widgets.widgets.inversion_view import InversionView

LAYERS = ["conv1", "conv3", "fc6"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def reconstructions(original: np.ndarray, method: str, perturbation, seed: int) -> InversionResult:
    """Stand-ins for inversions: deeper layers blur more; perturbations and the UpconvNet add their own noise."""
    x0 = torch.from_numpy(original)
    rng = np.random.default_rng(seed)
    images, pixel, feature = {}, {}, {}
    for depth, layer in enumerate(LAYERS, start=1):
        size = original.shape[-1] // 2 ** depth
        blurred = F.interpolate(F.interpolate(x0, size=size, mode="area"), size=original.shape[-2:], mode="bilinear")
        noise = 0.04 * depth * (1 + (perturbation is not None) + (method == "upconv"))
        x = np.clip(blurred.numpy() + rng.normal(0, noise, original.shape), 0, 1).astype(np.float32)
        images[layer] = x
        pixel[layer] = pixel_error(x, original)
        feature[layer] = np.full(len(original), 0.1 * depth, np.float32)
    return InversionResult(original=original, images=images, feature_errors=feature, pixel_errors=pixel,
                           method=method, perturbation=perturbation, model_name="MiniAlexNet")


@pytest.fixture(scope="module")
def original(world):
    return torch.stack([world[i] for i in (0, 5, 9)]).numpy().astype(np.float32)


COMBINATIONS = [("regularized", None), ("regularized", "binarize"), ("upconv", None), ("upconv", "binarize"),
                ("upconv", "dropout")]


@pytest.fixture(scope="module")
def results(original):
    return [reconstructions(original, m, p, seed) for seed, (m, p) in enumerate(COMBINATIONS)]


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def assert_strip_shows(view: InversionView, result: InversionResult):
    shown = view.shown_images
    assert len(shown["originals"]) == len(result.original)
    for i, row in enumerate(shown["reconstructions"]):
        np.testing.assert_array_equal(decode(shown["originals"][i]), to_hwc_uint8(result.original[i]))
        assert len(row) == len(LAYERS)
        for layer, png in zip(LAYERS, row):
            np.testing.assert_array_equal(decode(png), to_hwc_uint8(result.images[layer][i]))


def line_widths(view: InversionView) -> dict:
    return {key: (line.stroke_width, line.opacities[0]) for key, line in view.lines.items()}


def test_traits_hold_every_combination_as_png_bytes(results, original):
    view = InversionView(results)
    inner = view.view
    assert inner.layers == LAYERS and inner.title == "MiniAlexNet"
    assert (inner.image_width, inner.image_height, inner.scale) == (64, 64, 3)
    assert len(inner.originals) == 3 and all(isinstance(b, bytes) and b.startswith(PNG_SIGNATURE)
                                              for b in inner.originals)
    assert [(c["method"], c["perturbation"]) for c in inner.combinations] == [
        ("regularized", "none"), ("regularized", "binarize"), ("upconv", "none"), ("upconv", "binarize"),
        ("upconv", "dropout")]
    for combination, result in zip(inner.combinations, results):
        assert len(combination["images"]) == 3 * len(LAYERS)
        # image-major: image 1's fc6 reconstruction is at 1 * 3 + 2
        np.testing.assert_array_equal(decode(combination["images"][5]), to_hwc_uint8(result.images["fc6"][1]))
        assert combination["pixel_errors"][2] == pytest.approx([float(result.pixel_errors[l][2]) for l in LAYERS])
        assert combination["feature_errors"][0] == pytest.approx([0.1, 0.2, 0.3])
    # the errors grow with depth in this planted data, and the labels carry them
    errors = inner.combinations[0]["pixel_errors"][0]
    assert errors == sorted(errors) and errors[0] > 0
    # images travel as binary buffers; the JSON part holds no base64 PNG
    state, paths, buffers = _remove_buffers(inner.get_state())
    assert len(buffers) == 3 + 5 * 3 * len(LAYERS)
    assert all(bytes(b).startswith(PNG_SIGNATURE) for b in buffers)
    state.pop("_esm")
    text = json.dumps(state)
    assert "iVBORw0KGgo" not in text and len(text) < 5_000


def test_a_front_end_that_styles_the_lines_has_them_to_itself(results):
    view = InversionView(results)
    assert view.view.chart_lines == list(view.lines.values())  # the view finds the lines (also in a static page)
    assert [tuple(k) for k in view.view.chart_keys] == list(view.lines)
    view.view.set_state({"styles_chart": True})
    before = line_widths(view)
    view.perturbation = "binarize"
    assert view.result is results[1] and line_widths(view) == before  # the kernel left them to the front end


def test_switching_from_python_swaps_the_strip_and_the_highlighted_line(results):
    view = InversionView(results)
    assert (view.method, view.perturbation) == ("regularized", None)
    assert_strip_shows(view, results[0])
    assert line_widths(view)[("regularized", "none")] == (4.0, 1.0)
    assert all(w == (1.5, 0.4) for k, w in line_widths(view).items() if k != ("regularized", "none"))

    view.perturbation = "binarize"
    assert view.result is results[1] and view.view.perturbation == "binarize"
    assert_strip_shows(view, results[1])
    assert line_widths(view)[("regularized", "binarize")] == (4.0, 1.0)
    assert line_widths(view)[("regularized", "none")] == (1.5, 0.4)

    view.method = "upconv"  # keeps binarize, which the UpconvNet results have
    assert (view.method, view.perturbation) == ("upconv", "binarize")
    assert_strip_shows(view, results[3])
    view.show("upconv", "dropout")
    assert view.result is results[4]
    assert [k for k, w in line_widths(view).items() if w == (4.0, 1.0)] == [("upconv", "dropout")]
    view.method = "regularized"  # no regularized dropout: falls back to no perturbation
    assert (view.method, view.perturbation) == ("regularized", None)
    assert_strip_shows(view, results[0])

    # what the front end's toggles set; an impossible pair (from an old saved state) falls back too
    view.view.method = "upconv"
    assert view.perturbation is None and view.result is results[2]
    with view.view.hold_trait_notifications():
        view.view.method, view.view.perturbation = "regularized", "dropout"
    assert (view.method, view.perturbation) == ("regularized", None)

    with pytest.raises(ValueError, match=r"There is no regularized · dropout result; the regularized results have perturbation \[None, 'binarize'\]"):
        view.perturbation = "dropout"
    with pytest.raises(ValueError, match=r"There is no 'deconv' result; this view has \['regularized', 'upconv'\]"):
        view.method = "deconv"


def test_chart_plots_the_mean_pixel_error_per_layer(results):
    view = InversionView(results)
    assert set(view.lines) == {("regularized", "none"), ("regularized", "binarize"), ("upconv", "none"),
                               ("upconv", "binarize"), ("upconv", "dropout")}
    line = view.lines[("upconv", "binarize")]
    np.testing.assert_array_equal(line.x, [0, 1, 2])
    np.testing.assert_allclose(line.y, [results[3].pixel_errors[l].mean() for l in LAYERS], rtol=1e-6)
    assert line.labels == ["UpconvNet · binarize"] and line.line_style == "dashed"
    assert view.lines[("upconv", "dropout")].line_style == "dotted"
    x_axis = next(a for a in view.chart.axes if a.label == "layer")
    assert x_axis.tick_labels == {"0": "conv1", "1": "conv3", "2": "fc6"}


def test_one_result_and_many_images(original, world, shown):
    single = reconstructions(original, "upconv", None, 0)
    view = InversionView(single, title="one", scale=2)
    assert view.combinations == [("upconv", None)] and view.method == "upconv" and view.view.title == "one"
    assert view.view.scale == 2
    bundle = shown(single)
    assert "application/vnd.jupyter.widget-view+json" in bundle

    many = torch.stack([world[i] for i in range(6)]).numpy()
    view = InversionView(reconstructions(many, "regularized", None, 0))
    assert len(view.view.originals) == 6 and view.view.max_strips == 4
    view.selected_image = 5
    assert view.view.selected_image == 5
    with pytest.raises(ValueError, match=r"image 6 is out of range; the view holds 6 images, numbered 0..5"):
        view.selected_image = 6


def test_clear_errors_for_bad_input(results, original):
    with pytest.raises(ValueError, match="InversionView got no results. Pass the result of cv.invert"):
        InversionView([])
    with pytest.raises(TypeError, match="InversionView shows InversionResult objects, got ndarray"):
        InversionView(original)
    with pytest.raises(TypeError, match="Item 1 is a dict, not an InversionResult"):
        InversionView([results[0], {}])
    with pytest.raises(ValueError, match=r"Results 0 and 1 are both regularized; pass one result per method"):
        InversionView([results[0], results[0]])
    fewer = InversionResult(original=original, images={l: results[1].images[l] for l in LAYERS[:2]},
                            feature_errors=results[1].feature_errors, pixel_errors=results[1].pixel_errors,
                            method="upconv")
    with pytest.raises(ValueError, match=r"Result 1 \(UpconvNet\) inverts layers \['conv1', 'conv3'\], but result 0 "
                                         r"inverts \['conv1', 'conv3', 'fc6'\]; invert the same layers"):
        InversionView([results[0], fewer])
    other = reconstructions(original[::-1].copy(), "upconv", None, 1)
    with pytest.raises(ValueError, match=r"Result 1 \(UpconvNet\) reconstructs different original images"):
        InversionView([results[0], other])
    odd = reconstructions(original, "upconv", None, 1)
    odd.method = "deconvnet"
    with pytest.raises(ValueError, match=r"Result 0 has method 'deconvnet'; InversionView knows"):
        InversionView(odd)
    with pytest.raises(ValueError, match="scale must be a positive whole number"):
        InversionView(results, scale=0)
