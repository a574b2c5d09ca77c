"""Input channels other than RGB: a grayscale CNN trained here goes through every engine and the widgets;
a 4-channel model through top activations, DeconvNet and AM; conversions and the errors that refuse the rest."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.images import ImageSource, convert_channels, display_array, png_bytes, to_tensor
from cnnvis_widgets.optvis.parameterizations import FourierImage, PixelImage

SIZE = 28
CLASSES = ["horizontal bar", "vertical bar", "square outline", "disc"]
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def draw_shapes(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grayscale images [count, 1, 28, 28] of one of four shapes at a random place, with noise."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, 1, SIZE, SIZE), np.float32)
    labels = rng.integers(0, len(CLASSES), count)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i, label in enumerate(labels):
        image = np.full((SIZE, SIZE), rng.uniform(0.05, 0.3), np.float32)
        ink = rng.uniform(0.7, 1.0)
        if label < 2:
            length, at, start = rng.integers(10, 20), rng.integers(3, SIZE - 5), rng.integers(2, 6)
            bar = (slice(at, at + 2), slice(start, start + length))
            image[bar if label == 0 else bar[::-1]] = ink
        elif label == 2:
            side = rng.integers(8, 15)
            top, left = rng.integers(2, SIZE - side - 2, 2)
            image[top:top + side, left:left + side] = ink
            image[top + 2:top + side - 2, left + 2:left + side - 2] = image[0, 0]
        else:
            radius = rng.uniform(3, 6)
            cy, cx = rng.uniform(radius + 2, SIZE - radius - 2, 2)
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = ink
        images[i, 0] = np.clip(image + rng.normal(0, 0.04, image.shape), 0, 1)
    return torch.from_numpy(images), torch.from_numpy(labels)


def small_cnn(channels: int) -> nn.Sequential:
    net = nn.Sequential()
    for name, module in [("conv1", nn.Conv2d(channels, 8, 5, padding=2)), ("relu1", nn.ReLU()),
                         ("pool1", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
                         ("pool2", nn.MaxPool2d(2)), ("flat", nn.Flatten()), ("fc", nn.Linear(16 * 7 * 7, 4))]:
        net.add_module(name, module)
    return net


@pytest.fixture(scope="module")
def shapes():
    return draw_shapes(768, seed=0), draw_shapes(256, seed=1)


@pytest.fixture(scope="module")
def gray(shapes):
    """A 1-channel CNN trained on the shapes (a few seconds on the CPU), wrapped with its normalization."""
    (x, y), (x_val, y_val) = shapes
    torch.manual_seed(0)
    net = small_cnn(1)
    model = cv.Model(net, mean=(0.5,), std=(0.5,), input_size=(1, SIZE, SIZE), name="shapes", classes=CLASSES)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(4):
        for index in torch.randperm(len(x), generator=order).split(32):
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        model.accuracy = float((model(x_val).argmax(1) == y_val).float().mean())
    return model


@pytest.fixture(scope="module")
def probe(shapes):
    return shapes[1][0][:48]


def features(model: cv.Model, images: torch.Tensor, upto: str) -> torch.Tensor:
    """The output of module ``upto`` of the Sequential, computed directly (no hooks, no engine)."""
    names = [name for name, _ in model.module.named_children()]
    with torch.no_grad():
        return model.module[:names.index(upto) + 1](model.normalize(images))


def decode(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


# -- the grayscale model through every engine ---------------------------------------------------------------
def test_the_grayscale_model_learned_its_task(gray):
    assert gray.channels == 1 and gray.input_size == (1, SIZE, SIZE)
    assert gray.accuracy > 0.85  # chance is 0.25


def test_top_activations_equal_a_brute_force_loop(gray, probe):
    top = cv.top_activations(gray, probe, "conv2", k=5, batch_size=16, progress=False)
    maxima = torch.stack([features(gray, probe[i:i + 1], "conv2")[0].flatten(1).amax(1) for i in range(len(probe))])
    values, indices = maxima.T.sort(dim=1, descending=True, stable=True)
    np.testing.assert_array_equal(top.indices, indices[:, :5].numpy())
    np.testing.assert_allclose(top.values, values[:, :5].numpy(), rtol=1e-5, atol=1e-6)
    assert top.crops.shape[:3] == (16, 5, 1) and top.crops.dtype == np.uint8
    # each crop is the image under the receptive field, grey where the field leaves the image
    top_, left, bottom, right = top.boxes[2, 0]
    padded = F.pad(probe[top.indices[2, 0]], (SIZE,) * 4, value=0.5)
    expected = (padded[:, top_ + SIZE:bottom + SIZE, left + SIZE:right + SIZE] * 255).round().to(torch.uint8)
    np.testing.assert_array_equal(top.crops[2, 0], expected.numpy())


def manual_projection(model: cv.Model, image: torch.Tensor, unit: int, rule: str):
    """Zeiler & Fergus's projection of conv2's strongest activation of ``unit``, written out layer by layer."""
    net = model.module
    x = model.normalize(image[None])
    a1 = net.conv1(x)
    r1 = a1.clamp_min(0)
    p1, switches = F.max_pool2d(r1, 2, return_indices=True)
    a2 = net.conv2(p1)
    where = a2[0, unit].flatten().argmax()
    g2 = torch.zeros_like(a2).flatten(2)
    g2[0, unit, where] = a2[0, unit].flatten()[where]
    g_p1 = F.conv_transpose2d(g2.view_as(a2), net.conv2.weight, padding=1)
    g_r1 = F.max_unpool2d(g_p1, switches, 2, output_size=r1.shape[-2:])
    g_a1 = {"deconvnet": g_r1.clamp_min(0), "guided": (g_r1 * (a1 > 0)).clamp_min(0),
            "gradient": g_r1 * (a1 > 0)}[rule]
    std = torch.tensor(model.std).view(-1, 1, 1)
    return F.conv_transpose2d(g_a1, net.conv1.weight, padding=2)[0] / std  # d/dx of (x - mean) / std


@pytest.mark.parametrize("rule", cv.deconvnet_rules)
def test_deconvnet_projections_equal_a_written_out_backward_pass(gray, probe, rule):
    proj = cv.deconvnet(gray, probe[:6], "conv2", unit=[3, 3, 7, 7, 11, 11], rule=rule, batch_size=4)
    assert proj.projections.shape == (6, 1, SIZE, SIZE)
    for i, unit in enumerate(proj.units):
        with torch.no_grad():
            expected = manual_projection(gray, probe[i], int(unit), rule)
        np.testing.assert_allclose(proj.projections[i], expected.numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(proj.projections).sum() > 0
    sheet = proj.sheet(probe, scale=1)  # images over their projections, grey on an RGB sheet
    assert sheet.size == (6 * 30 - 2, 2 * 30 - 2)
    np.testing.assert_array_equal(np.asarray(sheet)[:SIZE, :SIZE, 1], (probe[0, 0] * 255).round().numpy())


def channel_objective(model, images, unit_ids):
    acts = features(model, torch.as_tensor(images), "conv2")
    return acts.mean((2, 3))[torch.arange(len(unit_ids)), torch.as_tensor(unit_ids)]


@pytest.mark.parametrize("preset", ["simonyan", "lucid"])  # pixels; Fourier (colour decorrelation skipped)
def test_activation_maximization_raises_the_objective(gray, preset):
    units = [0, 5, 9]
    am = cv.activation_maximization(gray, "conv2", units=units, preset=preset, steps=24, snapshot_steps=[0],
                                    progress=False, **({"lr": 0.05} if preset == "simonyan" else {}))
    assert am.images.shape == (3, 1, SIZE, SIZE) and 0 <= am.images.min() and am.images.max() <= 1
    before = channel_objective(gray, am.snapshots[0], units)
    after = channel_objective(gray, am.images, units)
    np.testing.assert_allclose(am.activations, after.numpy(), rtol=1e-4, atol=1e-5)
    assert (after > before + 0.1).all(), (before, after)


def test_fourier_and_pixel_images_have_the_model_channels_and_no_colour_mixing():
    for channels in (1, 4):
        fourier = FourierImage([0, 1], (16, 16), channels=channels, decorrelate=True)
        plain = FourierImage([0, 1], (16, 16), channels=channels, decorrelate=False)
        assert fourier().shape == (2, channels, 16, 16)
        torch.testing.assert_close(fourier(), plain())  # decorrelation applies to RGB only
        pixels = PixelImage([0], (8, 8), channels=channels)
        assert pixels().shape == (1, channels, 8, 8)
    # RGB keeps the decorrelated colours: the same seed makes another image
    assert not torch.allclose(FourierImage([0], (16, 16), decorrelate=True)(),
                              FourierImage([0], (16, 16), decorrelate=False)())


def test_am_init_from_rgb_images_starts_from_their_luma(gray):
    rgb = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * 0.8 + 0.1
    am = cv.activation_maximization(gray, "conv2", units=[1, 2], preset="simonyan", steps=0, init=rgb, progress=False)
    np.testing.assert_allclose(am.images, (rgb * LUMA).sum(1, keepdim=True).numpy(), atol=1e-4)


def test_dgn_generator_must_make_the_model_channels(gray):
    rgb_generator = cv.UpconvDecoder("fc", "shapes", (SIZE, SIZE), (4,), channels=3)
    with pytest.raises(ValueError, match="makes 3-channel images but the model takes 1.*train_upconv"):
        cv.activation_maximization(gray, "fc", units=[0], preset="dgn", generator=rgb_generator, steps=1,
                                   progress=False)


def test_regularized_inversion_lowers_the_feature_error(gray, probe):
    images = probe[:2]
    inv = cv.invert(gray, images, ["conv1", "conv2"], steps=40, fine_steps=20, progress=False)
    for layer in ("conv1", "conv2"):
        assert inv.images[layer].shape == (2, 1, SIZE, SIZE)
        target = features(gray, images, layer)
        start = features(gray, torch.full_like(images, 0.5), layer)  # the initial image: grey, faint noise
        initial = ((start - target).flatten(1).pow(2).sum(1) / target.flatten(1).pow(2).sum(1)).numpy()
        again = features(gray, torch.from_numpy(inv.images[layer]), layer)
        error = ((again - target).flatten(1).pow(2).sum(1) / target.flatten(1).pow(2).sum(1)).numpy()
        np.testing.assert_allclose(inv.feature_errors[layer], error, rtol=1e-3, atol=1e-6)
        assert (error < 0.5 * initial).all(), (layer, initial, error)


def test_upconv_decoder_makes_grayscale_images(gray, shapes, tmp_path):
    (x, _), (x_val, _) = shapes
    decoder = cv.train_upconv(gray, "conv2", x[:384], epochs=3, batch_size=32, lr=3e-3, val_dataset=x_val[:64],
                              progress=False)
    assert decoder.channels == 1
    log = decoder.training_log
    assert log["val_loss"][-1] < log["val_loss"][0]
    again = cv.UpconvDecoder.load(decoder.save(tmp_path / "decoder.safetensors"))
    assert again.channels == 1
    inv = cv.invert(gray, x_val[:3], ["conv2"], method="upconv", decoders={"conv2": again})
    assert inv.images["conv2"].shape == (3, 1, SIZE, SIZE)
    with torch.no_grad():
        expected = decoder(features(gray, x_val[:3], "conv2")).clamp(0, 1)
    np.testing.assert_allclose(inv.images["conv2"], expected.numpy(), atol=1e-5)


def test_dissection_reads_rgb_shapeworld_in_grayscale(gray, tmp_path):
    world = cv.datasets.shapeworld(split="val", sizes={"train": 0, "val": 12})
    result = cv.dissect(gray, world, ["conv2"], batch_size=6, top_k=3, cache=False, progress=False)
    assert result.channels == 1
    layer = result.layers["conv2"]
    assert layer.thresholds.shape == (16,) and layer.top_maps.shape[:2] == (16, 3)
    rgb = torch.stack([world[i] for i in range(len(world))])
    luma = F.interpolate((rgb * LUMA).sum(1, keepdim=True), size=(SIZE, SIZE), mode="bilinear", antialias=True)
    maxima = features(gray, luma.clamp(0, 1), "conv2").flatten(2).amax(2)  # [images, units]
    np.testing.assert_allclose(layer.top_values[:, 0], maxima.amax(0).numpy(), rtol=1e-4, atol=1e-5)
    images, _, _ = result.unit_images("conv2", 0, k=2)
    assert images.shape[-1] == 1  # the viewer shows what the model saw
    expected = ((rgb[layer.top_indices[0, :2]] * LUMA).sum(1) * 255).round()
    np.testing.assert_allclose(images[..., 0], expected.numpy(), atol=1)
    view = cv.DissectionViewer(result, layer="conv2").panel.view
    pngs = view.tile_images["images"]
    assert len(pngs) == len(view.requested_units) > 0 and all(decode(png).mode == "L" for png in pngs)
    again = cv.DissectionResult.load(result.save(tmp_path / "dissection.safetensors"))
    assert again.channels == 1
    again.dataset = world
    assert "<img src='data:image/png;base64," in again.to_html(tmp_path / "report.html", 1).read_text()


def test_filter_pictures_and_diagnostics(gray, probe):
    filters = cv.filter_images(gray)
    weight = gray.module.conv1.weight.detach()
    scale = weight.abs().flatten(1).amax(1).view(-1, 1, 1, 1)
    assert filters.shape == (8, 1, 5, 5)
    np.testing.assert_array_equal(filters, ((weight / (2 * scale) + 0.5) * 255).round().to(torch.uint8).numpy())
    diagnostics = cv.filter_diagnostics(gray, probe, k=3, progress=False)
    assert diagnostics.layer == "conv1" and diagnostics.second_layer == "conv2"
    maxima = features(gray, probe, "conv1").amax((0, 2, 3))
    np.testing.assert_allclose(diagnostics.max_activation, maxima.numpy(), rtol=1e-5, atol=1e-6)
    assert diagnostics.top_second.projections.shape[:3] == (16, 3, 1)
    assert diagnostics.top_first.filters.shape == (8, 1, 5, 5)


# -- widgets show grayscale as grayscale ----------------------------------------------------------------------
def test_gallery_tiles_are_grayscale_pngs_of_the_crops(gray, probe):
    top = cv.top_activations(gray, probe, "conv1", k=4, progress=False, projections="deconvnet")
    am = cv.activation_maximization(gray, "conv1", units=range(8), preset="simonyan", steps=4, progress=False)
    gallery = cv.NeuronGallery(top, am=am, dataset=probe, page_size=8)
    tile = gallery.tiles[5]
    for k, png in enumerate(tile["images"]):
        image = decode(png)
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), top.crops[5, k, 0])
    assert decode(tile["projections"][0]).mode == "L"
    np.testing.assert_array_equal(np.asarray(decode(tile["filter"])), top.filters[5, 0])
    am_image = decode(tile["am"][0])
    assert am_image.mode == "L"
    np.testing.assert_array_equal(np.asarray(am_image), (np.clip(am.images[5, 0], 0, 1) * 255).round())
    gallery.selected_unit = 5  # the full image with the receptive field outlined in colour
    context = np.asarray(decode(gallery.detail["context"][0]).convert("RGB")).astype(int)
    grey = (context[..., 0] == context[..., 1]) & (context[..., 1] == context[..., 2])
    assert 0.5 < grey.mean() < 1  # the image stays grey, the box is magenta


def test_other_widgets_show_grayscale(gray, probe, tmp_path):
    explorer = cv.AMExplorer(gray, layer="conv2", units=[0, 1], steps=4, snapshot_every=2, preset="simonyan")
    explorer.run(wait=True)
    assert [decode(png).mode for png in explorer.images] == ["L", "L"]
    inv = cv.invert(gray, probe[:2], ["conv1"], steps=2, fine_steps=0, progress=False)
    shown = cv.InversionView(inv).shown_images
    assert decode(shown["originals"][0]).mode == decode(shown["reconstructions"][0][0]).mode == "L"
    monitor = cv.TrainingMonitor(probe[:16], "conv1", [0, 3], tmp_path / "record", model=gray, k=2)
    monitor.record(0, gray)
    record = monitor.result
    assert record.images(0).shape[:3] == (2, 2, 1)
    cell = cv.TrainingTimeline(record).view.cells[0]
    assert decode(cell["images"][0]).mode == "L"
    np.testing.assert_array_equal(np.asarray(decode(cell["images"][0])), record.images(0)[0, 0, 0])


# -- four channels -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rgba():
    torch.manual_seed(4)
    return cv.Model(small_cnn(4).eval(), mean=(0.5,) * 4, std=(0.25,) * 4, input_size=(4, SIZE, SIZE), name="four")


def test_a_four_channel_model_runs_top_activations_deconvnet_and_am(rgba):
    images = torch.rand(12, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    top = cv.top_activations(rgba, images, "conv2", k=3, progress=False, projections="guided")
    maxima = features(rgba, images, "conv2").flatten(2).amax(2)
    np.testing.assert_array_equal(top.indices, maxima.T.sort(dim=1, descending=True, stable=True)[1][:, :3].numpy())
    assert top.crops.shape[2] == top.projections.shape[2] == 4
    proj = cv.deconvnet(rgba, images[:2], "conv2", unit=1, rule="deconvnet")
    assert proj.projections.shape == (2, 4, SIZE, SIZE) and np.abs(proj.projections).sum() > 0
    assert decode(proj._repr_png_()).mode == "RGB"
    for i in range(2):
        with torch.no_grad():
            expected = manual_projection(rgba, images[i], 1, "deconvnet")
        np.testing.assert_allclose(proj.projections[i], expected.numpy(), rtol=1e-4, atol=1e-6)
    am = cv.activation_maximization(rgba, "conv2", units=[0, 1], steps=16, snapshot_steps=[0], progress=False)
    assert am.images.shape == (2, 4, SIZE, SIZE)
    assert (channel_objective(rgba, am.images, [0, 1]) > channel_objective(rgba, am.snapshots[0], [0, 1])).all()
    # shown: the first three channels as RGB (an RGBA image without its alpha)
    assert decode(png_bytes(am.images[0])).mode == "RGB"
    np.testing.assert_array_equal(display_array(top.crops[0, 0]), top.crops[0, 0, :3].transpose(1, 2, 0))


def test_files_and_pil_images_are_read_in_the_model_mode(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    gray = to_tensor(path, channels=1)
    np.testing.assert_array_equal(gray[0].numpy() * 255, np.asarray(Image.fromarray(rgb).convert("L")))
    assert to_tensor(path, channels=3).shape == (3, 6, 5)
    rgba = Image.fromarray(np.concatenate([rgb, rng.integers(0, 256, (6, 5, 1), dtype=np.uint8)], -1))
    np.testing.assert_allclose(to_tensor(rgba, channels=4).numpy(), np.asarray(rgba).transpose(2, 0, 1) / 255)
    sixteen = Image.fromarray(rng.integers(0, 65536, (6, 5)).astype(np.uint16))
    np.testing.assert_allclose(to_tensor(sixteen, channels=1)[0].numpy(), np.asarray(sixteen) / 65535, rtol=1e-6)
    # arrays: 1 -> 3 by repetition, 3 -> 1 by BT.601 luma, within a rounding of PIL's
    gray_batch = torch.rand(4, 1, 8, 8)
    np.testing.assert_array_equal(ImageSource(gray_batch, (8, 8)).images(range(4)), gray_batch.expand(-1, 3, -1, -1))
    luma = ImageSource(rgb.transpose(2, 0, 1)[None], (6, 5), channels=1).images([0])[0, 0].numpy() * 255
    np.testing.assert_allclose(luma, np.asarray(Image.fromarray(rgb).convert("L")), atol=0.51)
    source = ImageSource([path, rgb, torch.from_numpy(rgb).permute(2, 0, 1)], (6, 5), channels=1)
    assert source.images(range(3)).shape == (3, 1, 6, 5)
    assert convert_channels(torch.zeros(2, 3, 4, 4), 3).shape == (2, 3, 4, 4)
    png = decode(png_bytes(gray_batch[0]))
    assert png.mode == "L" and png.size == (8, 8)


# -- errors that say what to do ---------------------------------------------------------------------------------
def test_nan_and_inf_images_are_refused_with_their_index(gray):
    images = torch.rand(300, 1, SIZE, SIZE)
    images[260, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"Image 260 holds NaN or infinite values.*nan_to_num"):
        cv.top_activations(gray, images, "conv1", progress=False)
    listed = [torch.rand(1, SIZE, SIZE) for _ in range(3)]
    listed[2][0, 0, 0] = float("inf")
    source = gray.image_source(listed)
    source.images([0, 1])
    with pytest.raises(ValueError, match=r"Image 2 holds NaN or infinite values.*leave index 2 out"):
        source.images([2])
    with pytest.raises(ValueError, match="Image 0 holds NaN"):
        cv.invert(gray, torch.full((1, 1, SIZE, SIZE), float("-inf")), ["conv1"], progress=False)


def test_channel_mismatch_names_the_shapes_and_what_to_pass(gray, rgba):
    with pytest.raises(ValueError, match=r"takes images with 4 channels \(\[N, 4, H, W\]\), but images have 3 channels"
                                         r".*torch.cat\(\[rgb, extra\], 1\)"):
        cv.top_activations(rgba, torch.rand(2, 3, SIZE, SIZE), "conv1", progress=False)
    with pytest.raises(ValueError, match=r"have 4 channels.*drop it \(images\[:, :3\]\)"):
        ImageSource(torch.rand(2, 4, 8, 8), (8, 8), channels=3)
    with pytest.raises(ValueError, match=r"takes images with 1 channel .*have 2 channels.*Pass images \[N, 1, H, W\]"):
        cv.deconvnet(gray, torch.rand(2, 2, SIZE, SIZE), "conv1")
    with pytest.raises(ValueError, match=r"takes images \[N, 1, H, W\].*got shape \(1, 3, 28, 28\).*image_source"):
        gray(torch.rand(1, 3, SIZE, SIZE))


def test_mean_and_std_must_match_the_channels():
    net = small_cnn(1)
    with pytest.raises(ValueError, match=r"mean has 3 entries \(the default is ImageNet's RGB statistics\).*1 input "
                                         r"channel.*mean=\(0\.5,\), std=\(0\.5,\)"):
        cv.Model(net, input_size=(1, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"std has 2 entries.*pass 4 values.*mean=\(0\.5, 0\.5, 0\.5, 0\.5\)"):
        cv.Model(small_cnn(4), mean=(0.5,), std=(0.2, 0.3), input_size=(4, SIZE, SIZE))
    with pytest.raises(ValueError, match="Pass mean and std together"):
        cv.Model(net, mean=(0.5,), std=None, input_size=(1, SIZE, SIZE))
    model = cv.Model(small_cnn(3), mean=(0.5,), std=(0.25,), input_size=(3, SIZE, SIZE))  # one for all channels
    x = torch.rand(1, 3, SIZE, SIZE)
    torch.testing.assert_close(model.normalize(x), (x - 0.5) / 0.25)


def test_unreadable_modes_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"mode 'F' \(unscaled floats\).*float array scaled to \[0, 1\]"):
        to_tensor(Image.fromarray(np.ones((4, 4), np.float32)), channels=1)
    with pytest.raises(ValueError, match=r"mode 'RGB' \(3 band\(s\) RGB\) for a model that takes 4 channels.*alpha "
                                         r"band reads as RGBA.*tensor or array \[4, H, W\]"):
        to_tensor(Image.new("RGB", (4, 4)), channels=4)
    path = tmp_path / "gray.png"
    Image.new("L", (4, 4)).save(path)
    with pytest.raises(ValueError, match=r"for a model that takes 2 channels.*\[2, H, W\]"):
        ImageSource([path], (4, 4), channels=2).image(0)
