"""Resize policies (crop, squash, pad) against torchvision's transforms, the seen region mapped back onto the
original, the policies of models loaded by name, the gallery's detail view of a photo, and the errors for layers
and models that visualization cannot read."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import nn

import cnnvis_widgets as cv
from cnnvis_widgets.images import ImageSource, framed_picture, resize
from cnnvis_widgets.widgets.neuron_gallery import RECEPTIVE_FIELD_COLOUR, SEEN_COLOUR

SQUARE = (40, 200, 60, 220)  # (top, left, bottom, right) of the red square planted in the 200 x 300 image


def planted(height=200, width=300) -> torch.Tensor:
    """A smooth blue-green gradient with a pure red square at SQUARE."""
    rows = torch.linspace(0, 1, height)[:, None].expand(height, width)
    cols = torch.linspace(0, 1, width)[None, :].expand(height, width)
    image = torch.stack([torch.zeros_like(rows), 0.3 + 0.4 * rows, 0.3 + 0.4 * cols])
    top, left, bottom, right = SQUARE
    image[:, top:bottom, left:right] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    return image


def red_centre(image: torch.Tensor) -> tuple[float, float]:
    mask = (image[0] > 0.5) & (image[1] < 0.5)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    return rows.float().mean().item(), cols.float().mean().item()


@pytest.mark.parametrize("resize_size,crop_size", [(256, 224), (232, 224), (73, 64)])
def test_crop_is_torchvisions_resize_and_center_crop(resize_size, crop_size):
    image = planted()
    expected = T.CenterCrop(crop_size)(T.Resize(resize_size, antialias=True)(image)).clamp(0, 1)
    policy = cv.ResizePolicy("crop", crop_fraction=crop_size / resize_size)
    seen = ImageSource(image, (crop_size, crop_size), fit=policy).image(0)
    torch.testing.assert_close(seen, expected, atol=1e-6, rtol=0)
    tall = image.transpose(1, 2)  # portrait: the other side is the shorter one
    expected = T.CenterCrop(crop_size)(T.Resize(resize_size, antialias=True)(tall)).clamp(0, 1)
    torch.testing.assert_close(resize(tall[None], (crop_size, crop_size), policy)[0], expected, atol=1e-6, rtol=0)


def test_bicubic_crop_and_the_default_fraction():
    image = planted()
    policy = cv.ResizePolicy("crop", interpolation="bicubic")
    assert policy.crop_fraction == 0.875  # 224 / 256
    expected = T.CenterCrop(224)(T.Resize(256, T.InterpolationMode.BICUBIC, antialias=True)(image)).clamp(0, 1)
    torch.testing.assert_close(resize(image[None], (224, 224), policy)[0], expected, atol=1e-6, rtol=0)


def test_squash_is_the_plain_resize():
    images = torch.stack([planted(), planted().flip(-1)])
    before = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    assert torch.equal(resize(images, (64, 64)), before)
    assert torch.equal(ImageSource(images, (64, 64), fit="squash").images([0, 1]), before)


def test_pad_keeps_the_aspect_ratio_and_fills():
    image = planted()
    fill = (0.25, 0.5, 0.75)
    out = ImageSource(image, (224, 224), fit=cv.ResizePolicy("pad", fill=fill)).image(0)
    content = int(224 * 200 / 300)  # 149 rows: the width fills 224 columns, the height keeps 2:3
    top = (224 - content) // 2
    filled = torch.tensor(fill)[:, None, None]
    assert torch.equal(out[:, :top], filled.expand(3, top, 224))
    assert torch.equal(out[:, top + content:], filled.expand(3, 224 - top - content, 224))
    expected = TF.resize(image, [content, 224], antialias=True).clamp(0, 1)
    torch.testing.assert_close(out[:, top:top + content], expected, atol=1e-6, rtol=0)
    # a Model given fit="pad" fills with its mean, which normalizes to zero
    model = cv.Model(nn.Conv2d(3, 2, 3), input_size=(3, 224, 224), fit="pad")
    padded = ImageSource(image, (224, 224), fit=model.fit).image(0)
    assert model.normalize(padded[None])[0, :, 0, 0].abs().max() < 1e-6


@pytest.mark.parametrize("fit", ["crop", "squash", "pad"])
def test_an_image_at_the_input_size_is_unchanged(fit):
    image = torch.rand(2, 3, 64, 64)
    for policy in (fit, cv.ResizePolicy(fit, crop_fraction=0.5, interpolation="bicubic")):
        assert torch.equal(ImageSource(image, (64, 64), fit=policy).images([0, 1]), image)
        source = ImageSource(list(image), (64, 64), fit=policy)
        assert torch.equal(source.image(1), image[1])
        assert source.seen_box(1).box == (0.0, 0.0, 64.0, 64.0) and source.seen_box(1).whole


@pytest.mark.parametrize("fit", ["crop", "squash", "pad"])
def test_seen_box_maps_seen_pixels_back_to_the_original(fit):
    image = planted()
    source = ImageSource([image], (64, 64), fit=fit)
    seen = source.seen_box(0)
    row, col = red_centre(source.image(0))
    original = seen.pixel(round(row), round(col))
    assert abs(original[0] - 49.5) <= 2.5 and abs(original[1] - 209.5) <= 2.5  # the square's centre
    assert seen.to_original((0, 0, 64, 64)) == pytest.approx(seen.box)
    if fit == "crop":  # shorter side 200 -> 73, width 300 -> 109; cut 4 rows, 22 columns (torchvision's round)
        assert seen.scale == pytest.approx((73 / 200, 109 / 300))
        sy, sx = seen.scale
        assert seen.box == pytest.approx((4 / sy, 22 / sx, 68 / sy, 86 / sx))
        assert not seen.whole
    elif fit == "pad":
        assert seen.top < 0 and seen.bottom > 200 and seen.left == 0 and seen.right == pytest.approx(300) and seen.whole
    else:
        assert seen.box == pytest.approx((0, 0, 200, 300)) and seen.whole


def test_models_by_name_crop_with_their_own_ratio(mini):
    resnet18 = cv.load_model("resnet18", weights=None, device="cpu")
    assert resnet18.fit.fit == "crop" and resnet18.fit.crop_fraction == pytest.approx(224 / 256)
    assert resnet18.fit == cv.ResizePolicy("crop", crop_fraction=224 / 256, interpolation="bilinear")
    assert cv.load_model("resnet50", weights=None, device="cpu").fit.crop_fraction == pytest.approx(224 / 232)
    assert cv.load_model("resnet18", weights=None, device="cpu", fit="squash").fit.fit == "squash"
    assert mini.fit == cv.ResizePolicy("squash") and mini.fit.crop_fraction == 1.0
    assert cv.Model(nn.Conv2d(3, 2, 3)).fit.fit == "squash"
    with pytest.raises(ValueError, match="'crop', 'squash', 'pad'"):
        cv.Model(nn.Conv2d(3, 2, 3), fit="letterbox")


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=2)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def test_top_activations_see_the_centre_crop():
    torch.manual_seed(0)
    model = cv.Model(Small(), input_size=(3, 32, 32), fit="crop")
    photos = [torch.rand(3, 48, 80), torch.rand(3, 90, 60), torch.rand(3, 40, 40)]
    top = cv.top_activations(model, photos, "conv", k=3, progress=False)
    assert top.fit == model.fit
    seen = torch.stack([T.CenterCrop(32)(T.Resize(36, antialias=True)(p)).clamp(0, 1) for p in photos])
    with torch.no_grad():
        expected = torch.relu(model.module.conv(model.normalize(seen))).flatten(2).amax(2).T  # [units, images]
    np.testing.assert_allclose(top.values, np.take_along_axis(expected.numpy(), top.indices, 1), rtol=1e-5)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_gallery_detail_shows_the_original_with_the_seen_region():
    from skimage.data import chelsea

    photo = chelsea()  # 300 x 451
    torch.manual_seed(0)
    model = cv.Model(Small(), input_size=(3, 64, 64), fit="crop")
    gallery = cv.NeuronGallery(model, dataset=[photo, photo[:, ::-1].copy()], layers=["conv"], k=2)
    gallery.selected_unit = 1
    pictures = [decode(png) for png in gallery.detail["context"]]
    assert len(pictures) == 2 and all(len(png) < 120_000 for png in gallery.detail["context"])
    assert "Blue: the part the model saw (fit='crop')" in gallery.detail["legend"]
    source = ImageSource([photo, photo[:, ::-1].copy()], (64, 64), fit=model.fit)
    index = int(gallery.result.indices[1, 0])
    seen = source.seen_box(index)
    factor = 192 / 451
    assert pictures[0].shape == (round(300 * factor), 192, 3)  # the whole original, not the 64-pixel crop
    top, left, bottom, right = (round(v * factor) for v in seen.box)
    assert 0 < left < right < 191 and 0 <= top < bottom <= 128
    edge = pictures[0][top + 2:bottom - 2, left]
    assert (edge == SEEN_COLOUR).all(axis=1).mean() > 0.8  # the seen region is outlined...
    plain = framed_picture(photo if index == 0 else photo[:, ::-1].copy(), [], side=192)
    np.testing.assert_array_equal(pictures[0][:, :left - 1], plain[:, :left - 1] // 2)  # ...and the rest dimmed
    rf_top, rf_left, rf_bottom, rf_right = (round(v * factor) for v in seen.to_original(gallery.result.boxes[1, 0]))
    assert (pictures[0][max(rf_top, 0), max(rf_left, 0) + 1:min(rf_right, 191) - 1] == RECEPTIVE_FIELD_COLOUR).all()


# -- layers and models that visualization cannot read ----------------------------------------------------------
class ToTokens(nn.Module):
    def forward(self, x):
        return x.flatten(2).transpose(1, 2)  # [N, C, H, W] -> [N, H * W, C]


class TokenNet(nn.Module):
    """A patch embedding, then a token mixer on [N, L, D], then a head: a ViT in miniature."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.tokens = ToTokens()
        self.mixer = nn.Linear(8, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(self.mixer(self.tokens(self.embed(x))).mean(1))


def test_token_layers_say_what_to_do(world):
    model = cv.Model(TokenNet(), input_size=(3, 16, 16))
    images = torch.rand(4, 3, 16, 16)
    calls = {
        "top_activations": lambda: cv.top_activations(model, images, "mixer", progress=False),
        "deconvnet": lambda: cv.deconvnet(model, images, "mixer"),
        "activation_maximization": lambda: cv.activation_maximization(model, "mixer", units=[0], steps=1,
                                                                      progress=False),
        "dissect": lambda: cv.dissect(model, world, layers=["mixer"], progress=False),
    }
    for purpose, call in calls.items():
        with pytest.raises(ValueError) as err:
            call()
        message = str(err.value)
        assert "[N, 16, 8]" in message and "token sequence" in message and purpose in message
        assert "'embed' (8x4x4)" in message and "reshape(N, 8, 4, 4)" in message
    cv.top_activations(model, images, "embed", k=2, progress=False)  # the suggested layer works


class PairOut(nn.Module):
    def forward(self, x):
        return x, x.mean()


def test_tuple_outputs_say_what_to_do():
    model = cv.Model(nn.Sequential(nn.Conv2d(3, 4, 3), PairOut()), input_size=(3, 16, 16))
    with pytest.raises(ValueError, match=r"'1' outputs a tuple \(its first tensor \[N, 4, 14, 14\]\).*'0' \(4x14x14\)"
                                         r".*returns one tensor"):
        cv.top_activations(model, torch.rand(2, 3, 16, 16), "1", progress=False)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, image, mask):
        return self.conv(image * mask)


class PassesAlong(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = TwoInputs()

    def forward(self, *inputs):
        return self.net(*inputs)


def test_a_forward_with_two_inputs_says_to_wrap_it():
    with pytest.raises(TypeError) as err:
        cv.Model(TwoInputs(), input_size=(3, 16, 16))
    message = str(err.value)
    assert "forward(image, mask)" in message and "one image batch" in message and "def forward(self, images)" in message
    model = cv.Model(PassesAlong(), input_size=(3, 16, 16))  # its signature hides it: the traced forward tells
    with pytest.raises(TypeError, match="more than one input.*missing.*mask.*Wrap it"):
        model.layers


# -- images far outside [0, 1]: normalized twice, or 0-255 ----------------------------------------------------
def write_folder(root, count=6, size=40, seed=0):
    """An ImageFolder layout of random-noise PNGs (two classes)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def read_back_equals(model, normalized, plain, layer):
    """Top activations of ``cv.normalized(normalized, ...)`` equal those of the images in [0, 1], ``plain``."""
    expected = cv.top_activations(model, plain, layer, k=3, progress=False)
    marked = cv.top_activations(model, cv.normalized(normalized, model.mean, model.std), layer, k=3, progress=False)
    # (x - m) / s * s + m is x up to float32 rounding (~1e-7 relative); the activations then differ by ~1e-6
    np.testing.assert_allclose(marked.values, expected.values, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(marked.indices, expected.indices)
    return marked, expected


def test_an_image_folder_with_normalize_is_refused_and_cv_normalized_reads_it_back(mini, tmp_path):
    import torchvision.datasets

    root = write_folder(tmp_path / "folder")
    normalize = T.Normalize(mini.mean, mini.std)
    plain = torchvision.datasets.ImageFolder(root, transform=T.ToTensor())
    training = torchvision.datasets.ImageFolder(root, transform=T.Compose([T.ToTensor(), normalize]))
    for dataset in (training, torch.utils.data.Subset(training, range(4))):
        with pytest.raises(ValueError, match=r"normalizes its images \(Normalize.*Drop the Normalize.*"
                                             r"cv\.normalized\(dataset, mean=\(0\.485, 0\.456, 0\.406\)"):
            cv.top_activations(mini, dataset, "conv2", k=2, progress=False)
    marked, expected = read_back_equals(mini, training, plain, "conv2")
    assert np.abs(marked.crops.astype(int) - expected.crops.astype(int)).max() <= 1  # crops shown in [0, 1]


def test_normalized_images_without_a_transform_are_refused_by_their_values(mini, world):
    images = torch.stack([world[i] for i in range(8)])
    normalized = mini.normalize(images)  # what a training pipeline hands on
    assert normalized.min() < -1.5 and normalized.max() > 2

    class Normalized(torch.utils.data.Dataset):  # no transform to inspect: only the values tell
        def __len__(self):
            return len(normalized)

        def __getitem__(self, i):
            return normalized[i], 0

    for given in (normalized, Normalized()):
        with pytest.raises(ValueError, match=r"Image 0 holds values from -[\d.]+ to [\d.]+, far outside \[0, 1\].*"
                                             r"If they are normalized already.*cv\.normalized"):
            cv.top_activations(mini, given, "conv1", k=2, progress=False)
    read_back_equals(mini, normalized, images, "conv3")
    with pytest.raises(ValueError, match="far outside"):  # the wrong statistics show too
        cv.top_activations(mini, cv.normalized(normalized, (0.5,), (0.5,)), "conv1", progress=False)


def test_0_255_floats_are_refused_and_uint8_is_divided(mini, world):
    images = torch.stack([world[i] for i in range(8)])
    for scaled in (images * 255, (images * 255).round().long()):
        with pytest.raises(ValueError, match=r"far outside \[0, 1\].*If they are 0-255 values, divide them by 255"):
            cv.top_activations(mini, scaled, "conv1", k=2, progress=False)
    as_uint8 = (images * 255).round().to(torch.uint8)
    from_uint8 = cv.top_activations(mini, as_uint8, "conv3", k=3, progress=False)
    from_float = cv.top_activations(mini, as_uint8.float() / 255, "conv3", k=3, progress=False)
    np.testing.assert_array_equal(from_uint8.values, from_float.values)


def test_bicubic_resized_photos_and_its_worst_overshoot_pass(mini):
    photos = [torch.from_numpy(np.array(cv.datasets.photo(name).convert("RGB"))).permute(2, 0, 1).float() / 255
              for name in ("astronaut", "coffee", "chelsea")]
    resized = [F.interpolate(p[None], size=size, mode="bicubic", antialias=True, align_corners=False)
               for p in photos for size in ((64, 64), (700, 700))]
    assert min(float(r.min()) for r in resized) < -0.02 and max(float(r.max()) for r in resized) > 1.05  # real edges
    dot = torch.zeros(1, 3, 12, 12)
    dot[..., 5:7, 5:7] = 1.0  # a bright 2x2 dot: the largest overshoot bicubic can make
    upscaled = F.interpolate(dot, scale_factor=8, mode="bicubic", align_corners=False)
    assert upscaled.max() > 1.4
    for images in (*resized, [r[0] for r in resized], upscaled):
        source = mini.image_source(images)  # accepted: a tensor, and a list read one image at a time
        assert source.images(range(len(source))).shape == (len(source), 3, 64, 64)
    assert torch.equal(mini.image_source(resized[0]).images([0]), resized[0])  # at the input size: as given


@pytest.mark.parametrize("engine", ["top_activations", "deconvnet", "invert", "am_init", "filter_diagnostics",
                                    "gallery", "monitor", "train_upconv", "accentuation"])
def test_every_engine_refuses_images_far_outside_0_1(mini, world, engine, tmp_path):
    images = torch.stack([world[i] for i in range(4)]) * 255
    calls = {
        "top_activations": lambda: cv.top_activations(mini, images, "conv1", progress=False),
        "deconvnet": lambda: cv.deconvnet(mini, images, "conv1"),
        "invert": lambda: cv.invert(mini, images, ["conv1"], progress=False),
        "am_init": lambda: cv.activation_maximization(mini, "conv1", units=[0], init=images[:1], progress=False),
        "filter_diagnostics": lambda: cv.filter_diagnostics(mini, images),
        "gallery": lambda: cv.NeuronGallery(mini, dataset=images, layers=["conv1"]),
        "monitor": lambda: cv.TrainingMonitor(images, "conv1", [0], tmp_path, model=mini).record(0, mini),
        "train_upconv": lambda: cv.train_upconv(mini, "conv1", images, epochs=1, progress=False),
        "accentuation": lambda: cv.feature_accentuation(mini, images[0], "conv1", 0, steps=1),
    }
    with pytest.raises(ValueError, match=r"Image 0 holds values from [\d.]+ to [\d.]+, far outside \[0, 1\].*divide them by"):
        calls[engine]()
