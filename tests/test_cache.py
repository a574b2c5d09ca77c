"""The on-disk result cache: a repeated call is served from it (and is much faster), any change of weights,
settings or images misses it, a damaged entry is detected and recomputed, an interrupted scan resumes, the
size limit holds, and results survive the process (a kernel restart)."""

import copy
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnvis_widgets as cv
from cnnvis_widgets.cache import CorruptCacheEntryWarning, ResultCache, dataset_fingerprint, parse_size


@pytest.fixture
def images(world):
    return torch.utils.data.Subset(world, range(200))


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ("indices", "values", "positions", "crops"))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def test_a_repeated_call_is_served_from_the_cache_and_is_10x_faster(mini, images, tmp_path):
    run = lambda: cv.top_activations(mini, images, "conv5", k=6, progress=False, cache=tmp_path)  # noqa: E731
    first, cold = timed(run)
    second, warm = timed(run)
    assert same(first, second) and second.layer == "conv5" and second.num_images == 200
    assert cold >= 10 * warm, (cold, warm)
    assert len(ResultCache(tmp_path).entries()) == 1
    fresh = cv.top_activations(mini, images, "conv5", k=6, progress=False, cache=False)
    assert same(first, fresh)


def test_a_changed_weight_setting_or_dataset_misses(mini, world, tmp_path):
    images = torch.stack([world[i] for i in range(48)])
    base = cv.top_activations(mini, images, "conv3", k=4, progress=False, cache=tmp_path)
    changed = copy.deepcopy(mini)
    with torch.no_grad():
        changed.module.conv3.weight[0] *= -1  # unit 0 of conv3 now responds differently
    other = cv.top_activations(changed, images, "conv3", k=4, progress=False, cache=tmp_path)
    assert not np.array_equal(other.values[0], base.values[0])
    assert len(ResultCache(tmp_path).entries()) == 2
    cv.top_activations(mini, images, "conv3", k=3, progress=False, cache=tmp_path)  # a setting
    assert len(ResultCache(tmp_path).entries()) == 3
    edited = images.clone()
    edited[5, :, 10:20, 10:20] = 1.0  # one image edited
    cv.top_activations(mini, edited, "conv3", k=4, progress=False, cache=tmp_path)
    assert len(ResultCache(tmp_path).entries()) == 4
    again = cv.top_activations(mini, images.clone(), "conv3", k=4, progress=False, cache=tmp_path)  # equal copy
    assert len(ResultCache(tmp_path).entries()) == 4 and same(again, base)


def test_a_damaged_entry_is_detected_and_recomputed(mini, images, tmp_path):
    first = cv.top_activations(mini, images, "conv2", k=4, progress=False, cache=tmp_path)
    (entry,) = ResultCache(tmp_path).entries()
    data = tmp_path / f"{entry.key}.safetensors"
    raw = bytearray(data.read_bytes())
    raw[-100] ^= 0xFF  # one flipped byte inside the crops
    data.write_bytes(bytes(raw))
    with pytest.warns(CorruptCacheEntryWarning, match="damaged"):
        again = cv.top_activations(mini, images, "conv2", k=4, progress=False, cache=tmp_path)
    assert same(first, again)
    (entry,) = ResultCache(tmp_path).entries()  # stored again, sound
    with pytest.warns(CorruptCacheEntryWarning):
        (tmp_path / f"{entry.key}.safetensors").write_bytes(b"not a safetensors file")
        cv.top_activations(mini, images, "conv2", k=4, progress=False, cache=tmp_path)


def test_an_interrupted_scan_keeps_what_it_finished_and_resumes(mini, images, tmp_path):
    calls = []

    def stop_after_three(fraction):
        calls.append(fraction)
        if len(calls) == 3 + 1:  # the first report is the (empty) resumed share
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cv.top_activations(mini, images, "conv4", k=5, batch_size=16, progress=stop_after_three, cache=tmp_path)
    assert list(tmp_path.glob("*.partial.safetensors")) and not ResultCache(tmp_path).entries()
    seen = []
    resumed = cv.top_activations(mini, images, "conv4", k=5, batch_size=16, progress=seen.append, cache=tmp_path)
    assert seen[0] == pytest.approx(48 / 200)  # three batches were kept
    assert len(seen) == 1 + (200 - 48 + 15) // 16  # only the rest was scanned
    assert same(resumed, cv.top_activations(mini, images, "conv4", k=5, progress=False, cache=False))
    assert not list(tmp_path.glob("*.partial.safetensors"))  # complete: the partial result is gone


def test_activation_maximization_is_cached_by_its_settings(mini, tmp_path):
    args = dict(units=[1, 2], steps=6, image_size=32, progress=False, cache=tmp_path)
    first, cold = timed(lambda: cv.activation_maximization(mini, "conv3", **args))
    second, warm = timed(lambda: cv.activation_maximization(mini, "conv3", **args))
    np.testing.assert_array_equal(first.images, second.images)
    assert second.seed == 0 and list(second.units) == [1, 2] and cold >= 10 * warm
    other = cv.activation_maximization(mini, "conv3", seed=1, **args)
    assert not np.array_equal(first.images, other.images) and len(ResultCache(tmp_path).entries()) == 2
    # live runs and callables are never cached
    cv.activation_maximization(mini, "conv3", stop=__import__("threading").Event(), **args)
    cv.activation_maximization(mini, "conv3", objective=lambda u: cv.optvis.objectives.channel("conv3", u), **args)
    assert len(ResultCache(tmp_path).entries()) == 2


def test_an_interrupted_activation_maximization_resumes_after_its_finished_units(mini, tmp_path):
    args = dict(units=[0, 1, 2, 3], steps=8, image_size=32, batch_size=2, cache=tmp_path)

    def interrupt_in_second_batch(fraction):
        if fraction > 0.6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cv.activation_maximization(mini, "conv4", progress=interrupt_in_second_batch, **args)
    seen = []
    resumed = cv.activation_maximization(mini, "conv4", progress=seen.append, **args)
    assert seen[0] == pytest.approx(0.5) and len(seen) == 1 + 8  # units 0, 1 kept; only 2, 3 optimized
    alone = cv.activation_maximization(mini, "conv4", progress=False, **{**args, "cache": False})
    np.testing.assert_array_equal(resumed.images, alone.images)
    np.testing.assert_array_equal(resumed.history, alone.history)


def test_the_size_limit_evicts_the_least_recently_used(mini, images, tmp_path):
    store = ResultCache(tmp_path, max_bytes="1GB")
    for layer in ("conv1", "conv2", "conv3"):
        cv.top_activations(mini, images, layer, k=2, progress=False, cache=store)
        time.sleep(0.01)
    cv.top_activations(mini, images, "conv1", k=2, progress=False, cache=store)  # conv1 is used again
    sizes = {e.layer: e.bytes for e in store.entries()}
    store.max_bytes = sizes["conv1"] + sizes["conv3"]
    assert store.evict() and {e.layer for e in store.entries()} == {"conv1", "conv3"}
    assert store.size() == sizes["conv1"] + sizes["conv3"] + sum(
        p.stat().st_size for p in tmp_path.glob("*.json"))
    assert parse_size("5GB") == 5 << 30 and parse_size("1.5 mb") == int(1.5 * (1 << 20))
    with pytest.raises(ValueError, match="KB, MB, GB"):
        parse_size("lots")


def test_fingerprints_follow_the_images(world, tmp_path):
    assert dataset_fingerprint(world) == dataset_fingerprint(cv.datasets.shapeworld(split="val"))
    assert dataset_fingerprint(world) != dataset_fingerprint(cv.datasets.shapeworld(split="train"))
    sub = torch.utils.data.Subset(world, range(10))
    assert dataset_fingerprint(sub) != dataset_fingerprint(torch.utils.data.Subset(world, range(11)))
    photo = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (10, 20, 30)).save(photo)
    before = dataset_fingerprint([str(photo)])
    os.utime(photo, ns=(0, 123))
    assert dataset_fingerprint([str(photo)]) != before

    class Opaque(torch.utils.data.Dataset):  # nothing says when its images change
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(3, 64, 64)

    assert dataset_fingerprint(Opaque()) is None
    assert cv.cache.slot("top_activations", cv.load_model("mini_alexnet"), Opaque(), {}, tmp_path) is None


def test_switched_off_by_default_in_tests_and_on_with_configure(mini, images, tmp_path, monkeypatch):
    assert cv.cache.default_cache() is None  # conftest switches it off
    monkeypatch.setattr(cv.cache.results, "_settings", {"directory": None, "max_size": None, "enabled": None})
    cache = cv.cache.configure(directory=tmp_path / "results", max_size="2GB", enabled=True)
    assert cache.directory == tmp_path / "results" and cache.max_bytes == 2 << 30
    cv.top_activations(mini, images, "conv1", k=2, progress=False)  # cache=None: the configured cache
    assert len(cache.entries()) == 1


SCRIPT = """
import sys, torch, cnnvis_widgets as cv
from cnnvis_widgets.deconv import top_images
if sys.argv[1] == "forbid":  # the second process must not compute
    top_images._scan = lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed"))
model = cv.load_model("mini_alexnet", device="cpu")
images = torch.utils.data.Subset(cv.datasets.shapeworld(split="val"), range(100))
top = cv.top_activations(model, images, "conv5", k=3, progress=False)
print(top.indices[:4].tolist())
"""


def test_results_survive_a_restart_and_the_cli_manages_them(tmp_path):
    env = {**os.environ, "CNNVIS_RESULT_CACHE": str(tmp_path / "results")}
    run = lambda *args: subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,  # noqa: E731
                                       timeout=300)
    first = run("-c", SCRIPT, "compute")
    second = run("-c", SCRIPT, "forbid")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    listed = run("-m", "cnnvis_widgets.cli", "cache", "list")
    assert listed.returncode == 0 and "top_activations" in listed.stdout and "conv5" in listed.stdout
    assert "1 result" in listed.stdout
    cleared = run("-m", "cnnvis_widgets.cli", "cache", "clear")
    assert cleared.returncode == 0 and "removed 1 result" in cleared.stdout
    assert "no cached results" in run("-m", "cnnvis_widgets.cli", "cache", "list").stdout


def test_a_dissection_is_cached_by_its_settings(mini, world, tmp_path):
    first, cold = timed(lambda: cv.dissect(mini, world, ["conv2"], progress=False, result_cache=tmp_path))
    second, warm = timed(lambda: cv.dissect(mini, world, ["conv2"], progress=False, result_cache=tmp_path))
    a, b = first.layers["conv2"], second.layers["conv2"]
    for name in ("thresholds", "intersection", "unit_pixels", "top_indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert second.dataset is world and cold >= 10 * warm, (cold, warm)
    assert first.detectors("conv2") == second.detectors("conv2")
    cv.dissect(mini, world, ["conv2"], iou_threshold=0.05, progress=False, result_cache=tmp_path)
    assert len(ResultCache(tmp_path).entries()) == 2


NET = """
import torch
import torch.nn.functional as F

SHIFT = 0.0


def squash(x):
    return {squash}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return {forward}
"""


def net_class(forward="squash(self.conv1(x))", squash="x"):
    """``Net``, defined anew (as a notebook cell run again would) with this ``forward`` and helper."""
    namespace = {}
    exec(NET.format(forward=forward, squash=squash), namespace)
    return namespace["Net"]


def wrapped(cls, state):
    module = cls()
    module.load_state_dict(state)
    return cv.Model(module, input_size=(3, 64, 64))


def test_an_edited_forward_misses_the_cache(world, tmp_path):
    images = torch.stack([world[i] for i in range(24)])
    torch.manual_seed(0)
    state = net_class()().state_dict()
    run = lambda model: cv.top_activations(model, images, "conv1", k=3, progress=False, cache=tmp_path)  # noqa: E731
    first = run(wrapped(net_class(), state))
    again = run(wrapped(net_class(), state))  # the same code defined again: served from the cache
    assert same(first, again) and len(ResultCache(tmp_path).entries()) == 1
    edited = wrapped(net_class(forward="squash(self.conv1(-x))"), state)  # same name, weights and repr
    changed = run(edited)
    assert len(ResultCache(tmp_path).entries()) == 2  # a miss, computed and stored anew
    with torch.no_grad():  # independent: the conv of the negated input by hand, spatial maximum per image
        expected = F.conv2d(-edited.normalize(images), state["conv1.weight"], state["conv1.bias"], padding=1
                            ).flatten(2).amax(2).sort(0, descending=True).values[:3].T
    # float32 sums of 27 products, in another order than the engine's: ~1e-6 relative
    np.testing.assert_allclose(changed.values, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(changed.values, first.values)


def test_the_model_fingerprint_follows_forward_helpers_hooks_and_settings():
    torch.manual_seed(0)
    state = net_class()().state_dict()
    key = lambda model: cv.cache.model_fingerprint(model)  # noqa: E731
    base = key(wrapped(net_class(), state))
    assert key(wrapped(net_class(), state)) == base  # stable across definitions of the same code
    assert key(wrapped(net_class(forward="squash(self.conv1(x)).relu()"), state)) != base  # forward edited
    assert key(wrapped(net_class(squash="x * 2"), state)) != base  # a helper it calls, edited
    assert key(wrapped(net_class(forward="squash(self.conv1(x)) + SHIFT"), state)) != base
    model = wrapped(net_class(), state)
    handle = model.module.conv1.register_forward_pre_hook(lambda module, inputs: (inputs[0] * 2,))
    assert key(model) != base
    handle.remove()
    assert key(model) == base
    model.module.temperature = 2.0  # a plain setting forward might read
    assert key(model) != base


def test_normalized_images_have_their_own_fingerprint(world):
    images = torch.stack([world[i] for i in range(4)])
    plain = dataset_fingerprint(images)
    marked = dataset_fingerprint(cv.normalized(images, (0.5,), (0.5,)))
    assert marked not in (None, plain)
    assert dataset_fingerprint(cv.normalized(images, (0.4,), (0.5,))) != marked
    assert dataset_fingerprint(cv.normalized(torch.utils.data.Subset(world, range(4)), (0.5,), (0.5,))) is not None
