"""Activation maximization: batch independence, Lucid's constants, objectives, and that it works."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnvis_widgets as cv
from cnnvis_widgets.optvis import (
    FourierImage,
    Objective,
    activation_maximization,
    channel,
    class_logit,
    deep_dream,
    direction,
    diversity,
    neuron,
    total_variation,
)
from cnnvis_widgets.optvis.objectives import IMAGE, OUTPUT, gram_cosine
from cnnvis_widgets.optvis.parameterizations import (
    COLOR_CORRELATION_NORMALIZED,
    spectrum_scale,
)
from cnnvis_widgets.optvis.regularizers import RedirectedReLU, blur_, clip_small_norm_, tv
from cnnvis_widgets.optvis.transforms import StandardTransforms, crop, scale_rotate


def conv5_means(model, images):
    """Independent computation: conv5's channel means by running the Sequential's layers up to conv5."""
    x = model.normalize(torch.as_tensor(images).reshape(-1, 3, *images.shape[-2:]))
    with torch.no_grad():
        for name, module in model.module.named_children():
            x = module(x)
            if name == "conv5":
                return x.mean((2, 3))


# -- batch independence ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_unit_in_a_batch_of_64_equals_unit_alone(mini):
    # oneDNN picks batch-size-dependent conv kernels whose rounding differs at ~1e-8; Adam turns the
    # gradient entries at that noise level into different steps. With the per-sample native kernels the
    # arithmetic of an image is the same in any batch, which is what this test isolates.
    with torch.backends.mkldnn.flags(enabled=False):
        batch = activation_maximization(mini, "conv5", units=range(64), steps=20, seed=3, progress=False)
        alone = activation_maximization(mini, "conv5", units=[7], steps=20, seed=3, progress=False)
        split = activation_maximization(mini, "conv5", units=[5, 7, 9], steps=20, seed=3, batch_size=2,
                                        progress=False)
    assert batch.images.shape == (64, 3, 64, 64) and batch.history.shape == (20, 64)
    diff = np.abs(batch.images[7] - alone.images[0]).max()
    print(f"\nunit 7 in a batch of 64 vs alone: max |diff| = {diff:.2e}")
    assert torch.allclose(torch.from_numpy(batch.images[7]), torch.from_numpy(alone.images[0]), atol=1e-5)
    np.testing.assert_allclose(batch.history[:, 7], alone.history[:, 0], rtol=1e-5, atol=1e-6)
    assert np.abs(split.images[1] - alone.images[0]).max() < 1e-5  # batch_size=2: units [5] and [7, 9]
    assert np.abs(batch.images[9] - split.images[2]).max() < 1e-5
    # the images differ between units and between seeds
    assert np.abs(batch.images[6] - batch.images[7]).max() > 1e-2
    with torch.backends.mkldnn.flags(enabled=False):
        other = activation_maximization(mini, "conv5", units=[7], steps=20, seed=4, progress=False)
    assert np.abs(other.images[0] - alone.images[0]).max() > 1e-2


def test_transform_draws_depend_on_seed_only():
    t = StandardTransforms()
    a, b = t.draw(11, 50), t.draw(11, 50)
    assert torch.equal(a, b)
    assert set(a[:, 0].long().tolist()) <= set(range(9)) and set(a[:, 4].long().tolist()) <= set(range(5))
    lucid_scales = torch.tensor([1 + (i - 5) / 50 for i in range(11)])
    assert ((a[:, 2, None] - lucid_scales).abs().min(1).values < 1e-6).all()
    assert a[:, 3].abs().max() <= 10
    assert t.angles.count(0.0) == 6 and len(t.angles) == 26  # Lucid: range(-10, 11) + 5 * [0]


def test_crop_and_scale_rotate_per_image():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    out = crop(x, torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]), 2)
    assert torch.equal(out[0], x[0, :, 0:4, 1:5]) and torch.equal(out[1], x[1, :, 2:6, 0:4])
    # identity scale and angle leave the image unchanged; 90 degrees is an exact rotation
    img = torch.rand(2, 3, 8, 8)
    same = scale_rotate(img, torch.ones(2), torch.zeros(2))
    assert torch.allclose(same, img, atol=1e-5)
    rot = scale_rotate(img, torch.ones(2), torch.tensor([90.0, 0.0]))
    assert torch.allclose(rot[1], img[1], atol=1e-5)
    assert any(torch.allclose(rot[0], torch.rot90(img[0], k, (1, 2)), atol=1e-5) for k in (1, 3))


# -- Lucid's constants -----------------------------------------------------------------------------------
def test_color_decorrelation_matrix_matches_lucid():
    raw = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    norms = np.linalg.norm(raw, axis=0)
    np.testing.assert_allclose(COLOR_CORRELATION_NORMALIZED.numpy(), raw / norms.max(), rtol=1e-6)
    col = COLOR_CORRELATION_NORMALIZED.norm(dim=0)
    assert col.max().item() == pytest.approx(1.0, abs=1e-6)
    assert col.numpy() == pytest.approx(norms / norms.max(), abs=1e-6)
    assert norms.max() == pytest.approx(math.sqrt(0.26**2 + 0.27**2 + 0.27**2))


def test_fourier_spectrum_scale_and_output_statistics():
    s = spectrum_scale(64, 64)
    assert s.shape == (64, 33)
    assert s[0, 0].item() == pytest.approx(64.0)  # 1 / max(0, 1/64)
    assert s[0, 32].item() == pytest.approx(2.0)  # Nyquist along x: f = 0.5
    assert s[32, 0].item() == pytest.approx(2.0)
    assert s[32, 32].item() == pytest.approx(1 / math.sqrt(0.5), rel=1e-6)  # corner
    assert s[0, 1].item() == pytest.approx(64.0)  # f = 1/64 sits at the floor
    # one coefficient at a time, by hand: ortho irfft of a single real coefficient c at (0, k) of a 64 x 64
    # image is 2 c cos(2 pi k x / 64) / 64; times scale(f = k/64) = 64/k; divided by 4
    param = FourierImage([0], (64, 64), sd=0.01, decorrelate=False)
    with torch.no_grad():
        param.spectrum.zero_()
        param.spectrum[0, 0, 0, 0, 4] = 1.0
        pre = torch.logit(param()[0, 0].double())
    x = torch.arange(64, dtype=torch.float64)
    assert torch.allclose(pre, (2 * 16 * torch.cos(2 * math.pi * 4 * x / 64) / 64 / 4).expand(64, 64), atol=1e-5)
    with torch.no_grad():
        param.spectrum.zero_()
        param.spectrum[0, 0, 1, 0, 0] = 0.5  # DC: 0.5 * 64 (scale) / 64 (ortho) / 4
        assert torch.allclose(param()[0, 1], torch.sigmoid(torch.tensor(0.125)), atol=1e-6)
    # initial images: grey on average, small spread, decorrelated colours by default
    param = FourierImage(list(range(16)), (64, 64), sd=0.01)
    with torch.no_grad():
        img = param()
    spread = torch.logit(img.double()).std().item()
    print(f"\nFourier init (sd 0.01): image mean {img.mean():.4f}, pre-sigmoid sd {spread:.4f}")
    assert img.shape == (16, 3, 64, 64) and img.mean().item() == pytest.approx(0.5, abs=0.01)
    assert 0.002 < spread < 0.05


def test_total_variation_by_hand_over_height_and_width():
    x = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]]], [[[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]]])  # [2,1,2,3]
    x = torch.cat([x, 2 * x], 1)  # two channels: the second's TV is 4 times the first's (beta = 2)
    # beta=2: at (0,0): dx=1, dy=2 -> 5; at (0,1): dx=2, dy=1 -> 5; channel 0 total 10, channel 1 total 40
    assert tv(x, 2.0).tolist() == pytest.approx([50.0, 0.0])
    # beta=1: sqrt(5) + sqrt(5), times (1 + 2)
    assert tv(x, 1.0).tolist() == pytest.approx([3 * 2 * math.sqrt(5), 0.0])
    # constant along channels but varying in space is not free: TV is not over channel x height
    y = torch.ones(1, 3, 4, 4)
    y[..., 2:] = 0
    assert tv(y).item() == pytest.approx(3 * 3 * 1.0)
    assert total_variation(0.5)({IMAGE: x}).tolist() == pytest.approx([25.0, 0.0])


def test_blur_and_small_norm_clipping():
    raw = torch.zeros(2, 3, 9, 9)
    raw[0, :, 4, 4] = 1.0
    raw[1] = 1.0
    blur_(raw, 1.0)
    assert raw[0].sum().item() == pytest.approx(3.0, rel=1e-5)  # mass kept
    assert raw[0, 0, 4, 4].item() == pytest.approx(0.1592, abs=2e-3)  # 1 / (2 pi sigma^2), sigma=1
    assert torch.allclose(raw[1], torch.ones(3, 9, 9))
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(1, 3, 1, 1)
    clip_small_norm_(x, 25)
    assert (x[0, 0] == 0).sum().item() == 4 and x[0, 0, 1, 0].item() == 5.0


def test_redirected_relu_gradient_by_hand():
    relu = RedirectedReLU()
    relu.active = True
    # image 0: every input negative, so the ReLU gradient is all zero and the redirected one is used;
    # image 1: one input positive, so the ordinary ReLU gradient is used
    x = torch.tensor([[-1.0, -2.0, -3.0], [1.0, -2.0, -3.0]], requires_grad=True)
    grad_out = torch.tensor([[0.5, -0.7, 0.2], [0.5, -0.7, 0.2]])
    y = relu(x)
    y.backward(grad_out)
    assert torch.equal(y, x.detach().clamp_min(0))
    # redirected: keep the gradient that raises x (dL/dx < 0 under minimization), zero the one lowering it
    assert torch.equal(x.grad, torch.tensor([[0.0, -0.7, 0.0], [0.5, 0.0, 0.0]]))
    relu.active = False
    x.grad = None
    relu(x).backward(grad_out)
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]


# -- objectives ------------------------------------------------------------------------------------------
def test_objectives_compose_on_fixed_activations():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 5, 5, generator=g)
    b = torch.randn(3, 6, 3, 3, generator=g)
    c = torch.randn(3, 2, 7, 7, generator=g)
    logits = torch.randn(3, 10, generator=g)
    acts = {"a": a, "b": b, "c": c, OUTPUT: logits}
    units_a = torch.tensor([0, 3, 1])
    obj = (channel("a", units_a) + 2 * neuron("b", 5)) - deep_dream("c")
    expected = [a[i, units_a[i]].mean() + 2 * b[i, 5, 1, 1] - (c[i] ** 2).mean() for i in range(3)]
    assert obj(acts).tolist() == pytest.approx(torch.stack(expected).tolist(), rel=1e-5)
    assert set(obj.layers) == {"a", "b", "c"}
    obj2 = -channel("a", 2) / 4 + class_logit([7, 0, 9]) * 0.5 - 1
    expected2 = [-a[i, 2].mean() / 4 + logits[i, [7, 0, 9][i]] * 0.5 - 1 for i in range(3)]
    assert obj2(acts).tolist() == pytest.approx(torch.stack(expected2).tolist(), rel=1e-5)
    v = torch.randn(6, generator=g)
    d = direction("b", v)(acts)
    assert d.tolist() == pytest.approx([(b[i] * v[:, None, None]).sum(0).mean().item() for i in range(3)], rel=1e-5)
    assert neuron("b", 2, y=0, x=2)(acts).tolist() == pytest.approx(b[:, 2, 0, 2].tolist())


def test_diversity_objective_matches_lucid_formula():
    a = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(1))  # 2 units x 3 images
    values = diversity("l", 10.0, n=3)({"l": a})
    for g in range(2):
        grams = [(x.flatten(1) @ x.flatten(1).T).flatten() for x in a[3 * g:3 * g + 3]]
        grams = [gm / gm.norm() for gm in grams]
        lucid = sum((grams[i] * grams[j]).sum() for i in range(3) for j in range(3) if i != j) / 3
        assert values[3 * g:3 * g + 3].sum().item() == pytest.approx(-10 * lucid.item(), rel=1e-5)


# -- it works --------------------------------------------------------------------------------------------
def test_channel_am_beats_initial_image_and_dataset_mean(mini, world):
    units = [7, 20, 41]
    am = activation_maximization(mini, "conv5", units=units, steps=96, seed=0, snapshot_steps=(0, 48), progress=False)
    data = conv5_means(mini, torch.stack([world[i] for i in range(100)]).numpy())
    initial = conv5_means(mini, am.snapshots[0])[torch.arange(3), units]
    final = conv5_means(mini, am.images)[torch.arange(3), units]
    print(f"\nconv5 units {units}: AM {final.numpy().round(2)}, initial {initial.numpy().round(2)}, "
          f"data mean {data[:, units].mean(0).numpy().round(2)}, data max {data[:, units].max(0).values.numpy().round(2)}")
    np.testing.assert_allclose(am.activations, final.numpy(), rtol=1e-4, atol=1e-5)  # activations: no transforms
    assert (final > initial + 0.5).all()
    assert (final > data[:, units].mean(0) + 1.0).all()
    assert (final > data[:, units].max(0).values).all()
    assert am.snapshots[48].shape == (3, 3, 64, 64) and am.images.min() >= 0 and am.images.max() <= 1
    assert am.history[-8:].mean() > am.history[:8].mean()


def test_class_logit_am_reaches_high_probability(mini):
    classes = [0, 5, 17]
    am = activation_maximization(mini, None, units=classes, objective="logit", steps=64, progress=False)
    with torch.no_grad():
        p = torch.softmax(mini(torch.from_numpy(am.images)), 1)[torch.arange(3), classes]
    print(f"\nclass logit AM (lucid, 64 steps): logits {am.activations.round(1)}, p(target) {p.numpy().round(4)}")
    assert (p > 0.9).all()
    # the same class through fc8 by name, with the Simonyan recipe, raises the logit well above its start
    sim = activation_maximization(mini, "fc8", units=[5], objective="class", preset="simonyan", steps=32,
                                  progress=False)
    print(f"simonyan fc8 unit 5: logit {sim.history[0, 0]:.1f} -> {sim.activations[0]:.1f}")
    assert sim.activations[0] > sim.history[0, 0] + 10


def test_diversity_lowers_similarity_and_keeps_activation(mini):
    units, n = [7, 41], 3

    def run(weight):
        am = activation_maximization(mini, "conv5", units=units, n_per_unit=n, diversity=weight, steps=64,
                                     progress=False)
        x = model_acts(mini, am.images.reshape(-1, 3, 64, 64))
        sim = gram_cosine(x, n)
        mean_sim = (sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))
        return am, mean_sim

    plain, sim0 = run(0.0)
    diverse, sim1 = run(2.0)
    assert plain.images.shape == (2, 3, 3, 64, 64) and plain.activations.shape == (2, 3)
    ratio = diverse.activations / plain.activations.mean(1, keepdims=True)
    print(f"\ndiversity: Gram cosine {sim0.numpy().round(3)} -> {sim1.numpy().round(3)}; "
          f"activations {plain.activations.round(2).tolist()} -> {diverse.activations.round(2).tolist()}")
    assert (sim1 < sim0 - 0.2).all()
    assert (ratio >= 0.5).all()


def model_acts(model, images, layer="conv5"):
    x = model.normalize(torch.as_tensor(images))
    with torch.no_grad():
        for name, module in model.module.named_children():
            x = module(x)
            if name == layer:
                return x


def test_inplace_relu_model_sees_pre_relu_and_is_untouched():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    net.train()
    net.features[3].eval()  # a mixed state, to check it is kept
    model = cv.Model(net, input_size=(3, 96, 96))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [(m.training, getattr(m, "inplace", None)) for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    # minimize the channel mean: only a pre-ReLU value can go below zero
    am = activation_maximization(model, "features.0", units=[0, 1, 2], objective=lambda u: -channel("features.0", u),
                                 steps=40, progress=False)
    conv = F.conv2d(model.normalize(torch.from_numpy(am.images)), net.features[0].weight, net.features[0].bias,
                    stride=4, padding=2)
    pre_relu = conv.mean((2, 3))[torch.arange(3), [0, 1, 2]]
    print(f"\nalexnet features.0 channel means after minimizing: {pre_relu.detach().numpy().round(4)}")
    np.testing.assert_allclose(-am.activations, pre_relu.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert (pre_relu < 0).all()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert [(m.training, getattr(m, "inplace", None)) for m in net.modules()] == flags
    assert [p.requires_grad for p in net.parameters()] == grads
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


# -- errors and options ----------------------------------------------------------------------------------
def test_clear_errors(mini):
    with pytest.raises(cv.LayerNotFoundError, match="Valid layer names: .*conv5"):
        activation_maximization(mini, "conv6", units=[0], steps=1, progress=False)
    with pytest.raises(ValueError, match=r"Unit 64 is out of range: layer 'conv5' has 64 units, numbered 0\.\.63"):
        activation_maximization(mini, "conv5", units=[3, 64], steps=1, progress=False)
    with pytest.raises(ValueError, match="0..31"):
        activation_maximization(mini, None, units=[32], objective="logit", steps=1, progress=False)
    with pytest.raises(TypeError, match="overrides: .*lr"):
        activation_maximization(mini, "conv5", units=[0], steps=1, progres=False)
    with pytest.raises(ValueError, match="Unknown preset"):
        activation_maximization(mini, "conv5", units=[0], preset="lucent", steps=1, progress=False)
    with pytest.raises(ValueError, match="n_per_unit >= 2"):
        activation_maximization(mini, "conv5", units=[0], diversity=1.0, steps=1, progress=False)


def test_pixel_presets_neuron_objective_and_image_size(mini):
    am = activation_maximization(mini, "conv5", units=[7, 20], objective="neuron", preset="yosinski", steps=16,
                                 image_size=48, progress=False)
    assert am.images.shape == (2, 3, 48, 48) and am.history.shape == (16, 2)
    x = F.interpolate(torch.from_numpy(am.images), size=(64, 64), mode="bilinear", align_corners=False)
    centre = model_acts(mini, x)[:, :, 3, 3][torch.arange(2), [7, 20]]  # conv5 is 7x7 at 64 px
    np.testing.assert_allclose(am.activations, centre.numpy(), rtol=1e-4, atol=1e-5)
    assert (am.activations > am.history[0]).all()


def test_out_of_memory_halves_the_batch(mini):
    calls = []

    def objective(units):
        def fn(acts):
            calls.append(acts["conv5"].shape[0])
            if acts["conv5"].shape[0] > 2:
                raise torch.OutOfMemoryError("simulated")
            return channel("conv5", units)(acts)

        return Objective(fn, ["conv5"], "picky")

    am = activation_maximization(mini, "conv5", units=[1, 2, 3, 4, 5], objective=objective, steps=3, progress=False)
    ref = activation_maximization(mini, "conv5", units=[3], steps=3, progress=False, objective="channel")
    assert am.images.shape == (5, 3, 64, 64)
    assert calls[0] == 5 and max(calls[1:]) <= 2
    assert np.abs(am.images[2] - ref.images[0]).max() < 1e-5


def test_snapshots_stream_and_stop_ends_the_run_early():
    import threading

    from cnnvis_widgets.loading import load_model

    model = load_model("mini_alexnet", device="cpu")
    stop = threading.Event()
    seen = []

    def on_snapshot(step, images, history):
        seen.append((step, images.shape, history.shape))
        if step == 10:
            stop.set()

    result = activation_maximization(model, "conv5", units=[1, 2], steps=50, snapshot_steps=range(0, 51, 5),
                                     on_snapshot=on_snapshot, stop=stop, progress=False)
    assert [s for s, _, _ in seen] == [0, 5, 10]
    assert seen[-1][1] == (2, 3, 64, 64) and seen[-1][2] == (10, 2)
    assert result.history.shape == (10, 2) and result.images.shape == (2, 3, 64, 64)
    assert sorted(result.snapshots) == [0, 5, 10]


def test_automatic_batch_size_follows_free_memory(monkeypatch):
    from cnnvis_widgets.loading import load_model
    from cnnvis_widgets.optvis import engine

    model = load_model("mini_alexnet", device="cpu")
    net = engine.working_copy(model.module)
    norm = engine._normalizer(model, model.device, model.dtype)
    monkeypatch.setattr(engine, "free_memory", lambda device: 2**30)
    one_gib = engine.auto_batch_size(net, norm, (64, 64), model.device)
    monkeypatch.setattr(engine, "free_memory", lambda device: 4 * 2**30)
    assert engine.auto_batch_size(net, norm, (64, 64), model.device) == pytest.approx(4 * one_gib, rel=0.01)
    assert 100 < one_gib < 100_000  # MiniAlexNet: well under a megabyte of activations per image
    # a budget of 3 images per batch splits the 4 units into two batches and still returns every unit
    monkeypatch.setattr(engine, "free_memory", lambda device: 3 * (2**30) // one_gib)
    small = activation_maximization(model, "conv5", units=[4, 5, 6, 7], steps=4, progress=False)
    monkeypatch.setattr(engine, "free_memory", lambda device: 2**34)
    whole = activation_maximization(model, "conv5", units=[4, 5, 6, 7], steps=4, progress=False)
    assert small.images.shape == whole.images.shape == (4, 3, 64, 64)


# -- starting from images ------------------------------------------------------------------------------------
@pytest.mark.parametrize("param,decorrelate,sigmoid", [("fourier", True, True), ("fourier", False, False),
                                                       ("pixel", False, True), ("pixel", True, False)])
def test_init_images_are_the_starting_images(mini, world, param, decorrelate, sigmoid):
    start = torch.stack([world[i] for i in range(3)])
    start[0, :, :4, :4] = 0.0  # saturated corners: a sigmoid has no finite pre-image there
    start[0, :, -4:, -4:] = 1.0
    am = activation_maximization(mini, "conv5", units=[4, 9, 30], steps=0, init=start, param=param,
                                 decorrelate=decorrelate, sigmoid=sigmoid, progress=False)
    error = (torch.from_numpy(am.images) - start).abs()
    inside = (start > 1e-3) & (start < 1 - 1e-3)
    assert error[inside].max() < 1e-5
    assert error.max() <= (1e-3 + 1e-6 if sigmoid else 1e-5)  # clamped to [1e-3, 1 - 1e-3] under a sigmoid
    np.testing.assert_allclose(am.activations, conv5_means(mini, start)[torch.arange(3), [4, 9, 30]].numpy(),
                               rtol=1e-3, atol=1e-3)


def test_init_one_per_unit_or_per_image_and_clear_errors(mini, world):
    starts = np.stack([world[i].numpy() for i in range(4)])
    am = activation_maximization(mini, "conv5", units=[1, 2], n_per_unit=2, steps=0, init=starts[:2], progress=False)
    np.testing.assert_allclose(am.images[:, 0], starts[:2], atol=1e-5)  # each unit starts from its own image
    np.testing.assert_allclose(am.images[:, 1], starts[:2], atol=1e-5)
    am = activation_maximization(mini, "conv5", units=[1, 2], n_per_unit=2, steps=0, init=starts, batch_size=2,
                                 progress=False)  # one unit per batch: each batch gets its own slice of init
    np.testing.assert_allclose(am.images.reshape(4, 3, 64, 64), starts, atol=1e-5)
    photo = (starts[3].transpose(1, 2, 0) * 255).round().astype(np.uint8)  # one HWC uint8 image for every unit
    am = activation_maximization(mini, "conv5", units=[1, 2], steps=0, init=photo, image_size=32, progress=False)
    assert am.images.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(am.images[0], am.images[1])
    with pytest.raises(ValueError, match="one per unit"):
        activation_maximization(mini, "conv5", units=[1, 2], steps=0, init=starts[:3], progress=False)
    with pytest.raises(ValueError, match="param='pixel' or 'fourier'"):
        activation_maximization(mini, None, objective="logit", units=[0], preset="dgn", steps=1, init=starts[0],
                                progress=False)


def test_deep_dream_from_a_photo_raises_the_objective_and_keeps_the_photo(mini):
    """DeepDream (Mordvintsev et al. 2015) starts from a photo: the image keeps its layout while conv3's
    energy grows; started from noise, nothing of the photo appears."""
    skimage = pytest.importorskip("skimage")
    photo = F.interpolate(torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255,
                          size=(64, 64), mode="bilinear", antialias=True)[0]
    dream = lambda units: deep_dream("conv3")  # noqa: E731
    am = activation_maximization(mini, "conv3", units=[0], objective=dream, steps=24, lr=0.02, init=photo,
                                 transforms=False, progress=False)
    noise = activation_maximization(mini, "conv3", units=[0], objective=dream, steps=24, lr=0.02,
                                    transforms=False, progress=False)

    def correlation(image):
        a, b = torch.from_numpy(image).flatten(), photo.flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    with torch.no_grad():
        before = model_acts(mini, photo[None], "conv3").pow(2).mean().item()
    print(f"\nconv3 energy {before:.2f} -> {am.activations[0]:.2f}; correlation with the photo "
          f"{correlation(am.images[0]):.2f} (from noise: {correlation(noise.images[0]):.2f})")
    assert am.activations[0] > 2 * before
    assert correlation(am.images[0]) > 0.8 and abs(correlation(noise.images[0])) < 0.3
