"""Several processes, one result (torch.distributed, gloo, 2 CPU workers): top activations, dissection, Net2Vec
and AM equal the single process's (bit for bit where the README says so, to a stated tolerance where rounding
may differ); ranks with nothing to do; a killed, hung or unstartable rank ends the job with a clear error in
bounded time; what cannot be sent is named before any worker starts; models defined in ``__main__`` (with
lambdas, in a script without a main guard) reach the workers; torchrun scripts join with one call; a
dissection checkpoint resumes with another number of processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.distributed import Group, worker_pids
from cnnvis_widgets.dissection.concepts import ConceptIndex
from cnnvis_widgets.distributed.cost import dissect_bytes, top_activations_bytes
from cnnvis_widgets.distributed.merge import rank_order

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
TWO = ["cpu", "cpu"]


def test_shards_cover_every_image_once_on_the_batch_grid():
    for n, batch, world in [(301, 32, 2), (1000, 48, 3), (5, 64, 4), (0, 8, 2), (97, 10, 7)]:
        seen = []
        for rank in range(world):
            lo, hi = Group(rank, world).block(n, batch)
            assert lo <= hi and (lo % batch == 0 or lo == n)  # blocks start on the single process's grid
            seen.extend(range(lo, hi))
        assert seen == list(range(n))
    # rounds of 2 batches per rank from image 96: each round's end is a common merge point on the grid
    rounds = [list(Group(r, 2).rounds(301, 32, 96, 2)) for r in range(2)]
    assert [end for _, _, end in rounds[0]] == [end for _, _, end in rounds[1]] == [224, 301]
    assert sorted(i for r in rounds for lo, hi, _ in r for i in range(lo, hi)) == list(range(96, 301))


def test_rank_order_breaks_ties_by_index():
    values = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])
    indices = torch.tensor([[7, 9, 4, 1, 6]])
    assert rank_order(values, indices, 4).tolist() == [[2, 4, 1, 3]]  # 3@4, 3@6, 3@9, 2@1


@pytest.fixture(scope="module")
def val():
    return cv.datasets.shapeworld(split="val")


def test_top_activations_on_two_processes_equal_one(mini, val):
    images = torch.utils.data.Subset(val, range(301))  # odd: the second rank's last batch is short
    one = cv.top_activations(mini, images, "conv5", k=9, batch_size=32, progress=False)
    two = cv.top_activations(mini, images, "conv5", k=9, batch_size=32, devices=TWO, progress=False)
    for field in ("indices", "values", "positions", "boxes", "crops"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    assert cv.distributed.last_run["devices"] == TWO
    assert cv.distributed.last_run["bytes"] == top_activations_bytes(64, 9, 2)  # the README's cost model


def assert_same_dissection(a, b, layers=LAYERS):
    for name in layers:
        x, y = a.layers[name], b.layers[name]
        for field in ("thresholds", "intersection", "unit_pixels", "top_indices", "top_values", "top_maps"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), (name, field)
    assert np.array_equal(a.concept_pixels, b.concept_pixels)
    assert np.array_equal(a.category_images, b.category_images)


@pytest.fixture(scope="module")
def reference(mini, val):
    return cv.dissect(mini, val, LAYERS, batch_size=48, progress=False)  # 21 batches: uneven shards


def test_dissect_on_two_processes_equals_one(mini, val, reference):
    two = cv.dissect(mini, val, LAYERS, batch_size=48, devices=TWO, progress=False)
    assert_same_dissection(reference, two)
    concepts = ConceptIndex(val)
    shapes = {name: (mini.layer(name).units, *mini.layer(name).output_shape[-2:]) for name in LAYERS}
    expected = dissect_bytes(shapes, len(val), len(concepts), len(concepts.categories), world=2)
    assert cv.distributed.last_run["bytes"] == expected["total"]  # the README's cost model
    assert reference.layers["conv5"].top_values.shape[1] == 10
    for name in LAYERS:  # the labels and IoUs that follow from the tallies
        assert reference.table(name).equals(two.table(name))


@contextlib.contextmanager
def torch_threads(count: int):
    """This process computes with ``count`` CPU threads, as each worker does (``last_run["threads"]``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_net2vec_on_two_processes_equals_one(mini, val):
    """Masks, thresholds (merged tails of the training half) and features read in shards; same training."""
    kw = dict(concepts=["red", "tree", "house"], epochs=2, ablation=(4,), feature_batch_size=48, progress=False)
    one = cv.net2vec(mini, val, "conv5", **kw)
    two = cv.net2vec(mini, val, "conv5", devices=TWO, **kw)
    assert one.concepts == two.concepts
    # selected, counted or ordered: the same bits (the README's "exact" list)
    for field in ("thresholds", "single_unit", "single_iou", "train_images", "val_images"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)
    # trained: the same SGD steps on the same features, but this process and a worker use different numbers of
    # CPU threads, and matrix products may sum in another order (Intel's MKL: the 9th digit of a weight). Summing
    # the logits in float64 instead of float32 moves the weights by 6e-9 and the bias by 2e-8 (measured), so 1e-7
    # is a 5-10x margin, while a wrong image or target moves them by more than 1e-5.
    np.testing.assert_allclose(two.weights, one.weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(two.bias, one.bias, rtol=1e-5, atol=1e-7)
    # IoUs of those weights' masks (logit > 0): a pixel whose logit is within rounding of 0 may flip, moving an
    # IoU by 1/union; the concepts' unions here are over 1,000 pixels, so 2e-3 allows two flips per concept
    np.testing.assert_allclose(two.set_iou, one.set_iou, atol=2e-3)
    np.testing.assert_allclose(two.ablation[4], one.ablation[4], atol=2e-3)


def test_activation_maximization_on_two_processes_equals_one(mini):
    kw = dict(units=[4, 0, 7, 2, 9], steps=6, batch_size=2, progress=False)  # 3 batches: 1 on rank 0, 2 on rank 1
    two = cv.activation_maximization(mini, "conv5", devices=TWO, **kw)
    # Every image is optimized in the same batch, from the same seed, as in one process; with the workers'
    # number of CPU threads the arithmetic is the same, bit for bit. With another number, rounding may differ
    # (the objective's history on Intel CPUs), and Adam's normalized steps can turn a rounding difference into
    # a visible one (rounding the convolutions in float64 moves these images by up to 0.1), so there is no
    # tight tolerance across thread counts: compare at the workers' count.
    with torch_threads(cv.distributed.last_run["threads"]):
        one = cv.activation_maximization(mini, "conv5", **kw)
    np.testing.assert_array_equal(one.units, two.units)
    for field in ("images", "activations", "history", "transparency"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)
    with pytest.raises(ValueError, match="on_snapshot"):
        cv.activation_maximization(mini, "conv5", devices=TWO, on_snapshot=lambda *a: None, **kw)


def every_engine(model, tiny, progress):
    """Under the group: the four engines with one batch for two ranks (rank 1 has nothing to do); their results
    and every rank's last progress fraction per engine."""
    from cnnvis_widgets.distributed.merge import gather_objects

    calls = {
        "top": lambda p: cv.top_activations(model, tiny, "conv5", k=4, progress=p),
        "dissect": lambda p: cv.dissect(model, tiny, ["conv3", "conv5"], cache=False, progress=p),
        "net2vec": lambda p: cv.net2vec(model, tiny_both(tiny), "conv5", concepts=["red"], epochs=1, ablation=(),
                                        progress=p),
        "am": lambda p: cv.activation_maximization(model, "conv5", units=[4, 0], steps=3, batch_size=2, progress=p),
    }
    results, last = {}, {}
    for i, (name, call) in enumerate(calls.items()):
        fractions = [None]
        results[name] = call(fractions.append)
        last[name] = fractions[-1]
        progress((i + 1) / len(calls))
    return results, gather_objects(last, cv.distributed.current())


def tiny_both(tiny):
    return cv.datasets.shapeworld(split=None, sizes=TINY, root=tiny.root)


TINY = {"train": 40, "val": 21}


def test_ranks_with_nothing_to_do_take_part(mini, tmp_path):
    """21 images (or 2 units) make one batch: rank 1's shard is empty; it joins every merge and reports 1.0."""
    from cnnvis_widgets.distributed import run_on_devices

    tiny = cv.datasets.shapeworld(split="val", sizes=TINY, root=tmp_path / "tiny")
    fractions = []
    two, last = run_on_devices(every_engine, dict(model=mini, tiny=tiny), TWO, timeout=120, progress=fractions.append)
    assert last == [{"top": 1.0, "dissect": 1.0, "net2vec": 1.0, "am": 1.0}] * 2
    assert fractions[-1] == 1.0
    with torch_threads(cv.distributed.last_run["threads"]):  # rank 0 did all the work: the same arithmetic
        one, _ = every_engine(mini, tiny, lambda fraction: None)
    for field in ("indices", "values", "positions", "crops"):
        np.testing.assert_array_equal(getattr(one["top"], field), getattr(two["top"], field), err_msg=field)
    assert_same_dissection(one["dissect"], two["dissect"], ["conv3", "conv5"])
    for field in ("thresholds", "weights", "bias", "set_iou", "single_iou", "train_images"):
        np.testing.assert_array_equal(getattr(one["net2vec"], field), getattr(two["net2vec"], field), err_msg=field)
    for field in ("units", "images", "activations", "history"):
        np.testing.assert_array_equal(getattr(one["am"], field), getattr(two["am"], field), err_msg=field)


JOINED = """
import sys, torch
import cnnvis_widgets as cv
from cnnvis_widgets.cli import main

group = cv.distributed.join(timeout=60)  # without it, every rank would scan all images (and be warned)
model = cv.load_model("mini_alexnet", device=group.device)
images = torch.utils.data.Subset(cv.datasets.shapeworld(split="val"), range(203))
top = cv.top_activations(model, images, "conv5", batch_size=32, progress=False)
if group.leader:
    top.save(sys.argv[1])
main(["top", "conv5", "--images", "203", "--batch-size", "32", "--out", sys.argv[2]])  # the command, as joined
"""


def test_torchrun_script_that_joins_equals_one_process(mini, val, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    (tmp_path / "joined.py").write_text(JOINED)
    subprocess.run([torchrun, "--nproc-per-node", "2", "joined.py", "script.safetensors", "command.safetensors"],
                   check=True, timeout=240, cwd=tmp_path, capture_output=True)
    one = cv.top_activations(mini, torch.utils.data.Subset(val, range(203)), "conv5", batch_size=32, progress=False)
    for name in ("script", "command"):
        two = cv.TopActivations.load(tmp_path / f"{name}.safetensors")
        np.testing.assert_array_equal(one.indices, two.indices, err_msg=name)
        np.testing.assert_array_equal(one.values, two.values, err_msg=name)


def test_an_engine_under_torchrun_without_a_group_warns_once(mini, val, monkeypatch):
    from cnnvis_widgets.distributed import group

    monkeypatch.setattr(group, "_warned", [False])
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    images = torch.utils.data.Subset(val, range(8))
    with pytest.warns(cv.distributed.TorchrunWithoutGroupWarning, match=r"rank 1 of 2.*cv.distributed.join\(\)"):
        cv.top_activations(mini, images, "conv5", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cv.distributed.TorchrunWithoutGroupWarning)
        cv.top_activations(mini, images, "conv5", progress=False)  # once per process


MAIN_SCRIPT = """
import json, torch, numpy as np
import cnnvis_widgets as cv


class MyNet(torch.nn.Module):  # defined in __main__: the workers get it by value
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 16, 3))
        self.squash = lambda x: torch.tanh(x)  # a lambda: sent too

    def forward(self, x):
        return self.squash(self.features(x)).mean((2, 3))


torch.manual_seed(0)
model = cv.Model(MyNet(), input_size=(3, 64, 64))
images = torch.utils.data.Subset(cv.datasets.shapeworld(split="val"), range(21))  # one batch: rank 1 has none
fractions = []
# no `if __name__ == "__main__":` guard: the workers do not import this script
two = cv.top_activations(model, images, "features.2", k=4, devices=["cpu", "cpu"], progress=fractions.append)
one = cv.top_activations(model, images, "features.2", k=4, progress=False)
print("RESULT", json.dumps({"same": bool(np.array_equal(one.indices, two.indices)
                                         and np.array_equal(one.values, two.values)), "last": fractions[-1]}))
"""


def test_a_script_defining_its_model_in_main_without_a_guard(tmp_path):
    (tmp_path / "mynet.py").write_text(MAIN_SCRIPT)
    done = subprocess.run([sys.executable, "mynet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'RESULT {"same": true, "last": 1.0}' in done.stdout


class Logged(torch.nn.Module):
    """A model holding an open file: it cannot be pickled."""

    def __init__(self, inner, log):
        super().__init__()
        self.inner, self.log = inner, log

    def forward(self, x):
        return self.inner(x)


class Holder(torch.utils.data.Dataset):
    """A dataset holding a generator: it cannot be pickled."""

    def __init__(self, generator):
        self.generator = generator

    def __len__(self):
        return 1


def test_what_cannot_be_sent_is_named_before_any_worker_starts(mini, val, tmp_path, monkeypatch):
    import copy

    from cnnvis_widgets.distributed import launch

    monkeypatch.setattr(launch, "_Worker", None)  # starting a worker would fail with another error
    with open(tmp_path / "log.txt", "w") as log:
        model = cv.Model(Logged(copy.deepcopy(mini.module), log), input_size=mini.input_size)
        with pytest.raises(TypeError, match=r"model\.module\.log \(a _io\.TextIOWrapper\) cannot be sent .*"
                                            r"run without devices="):
            cv.top_activations(model, val, "inner.conv5", devices=TWO, progress=False)
    with pytest.raises(TypeError, match=r"dataset\.generator \(a builtins\.generator\) cannot be sent"):
        cv.top_activations(mini, Holder(i * i for i in range(3)), "conv5", devices=TWO, progress=False)
    monkeypatch.setenv("CNNVIS_WORKER", "1")  # as in a worker whose job imports a module that calls an engine
    with pytest.raises(RuntimeError, match="under `if __name__ == \"__main__\":`"):
        cv.top_activations(mini, val, "conv5", devices=TWO, progress=False)


def refuse(*_):
    raise AttributeError("Can't get attribute 'Gone' on <module '__main__'>: rebuilt in a worker")


def die(*_):
    sys.stderr.write("the worker died here\n")
    sys.stderr.flush()
    os._exit(3)


class Unloadable:
    """Pickles in this process (40 MB: more than a pipe holds) and cannot be rebuilt in a worker."""

    def __init__(self, rebuild):
        self.rebuild, self.weight = rebuild, torch.zeros(10_000_000)

    def __reduce__(self):
        return self.rebuild, (self.weight,)


def test_a_worker_that_cannot_start_names_itself_and_its_error():
    from cnnvis_widgets.distributed import run_on_devices

    start = time.time()
    with pytest.raises(RuntimeError, match=r"(?s)Worker \d of 2 \(cpu\) failed while loading the job.*"
                                           r"AttributeError: Can't get attribute 'Gone'"):
        run_on_devices(cv.top_activations, dict(model=Unloadable(refuse)), TWO, timeout=60, progress=False)
    with pytest.raises(RuntimeError, match=r"(?s)Worker \d of 2 \(cpu\) exited with code 3 while loading the job.*"
                                           r"the worker died here"):
        run_on_devices(cv.top_activations, dict(model=Unloadable(die)), TWO, timeout=60, progress=False)
    assert time.time() - start < 60
    assert not worker_pids()


started: set = set()  # every worker process a test signalled or watched


def signal_rank_when(condition, rank: int, sig: int, timeout: float = 120.0):
    """In the background: once ``condition(pid)`` holds for worker ``rank``, send it ``sig``."""
    def watch():
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = worker_pids().get(rank)
            if pid is not None:
                started.add(pid)
                if condition(pid):
                    os.kill(pid, sig)
                    return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def all_gone() -> bool:
    """No worker of the job is left: none listed, and none of the processes the test saw exists."""
    def exists(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
    return not worker_pids() and not any(exists(pid) for pid in started)


def test_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_one_process(mini, val, reference, tmp_path):
    folder = tmp_path / "checkpoints"
    settings = dict(batch_size=48, checkpoint=folder, checkpoint_every=2, progress=False)
    signal_rank_when(lambda pid: folder.exists() and any(folder.glob("dissection-*.safetensors")), 1, signal.SIGKILL)
    start = time.time()
    with pytest.raises(RuntimeError, match=r"(?s)Worker 1 of 2 \(cpu\) was killed by signal 9 while working.*"
                                           r"the same checkpoint= to resume"):
        cv.dissect(mini, val, LAYERS, devices=TWO, timeout=60, **settings)
    assert time.time() - start < 90
    assert all_gone()
    saved = list(folder.glob("dissection-*.safetensors"))
    assert len(saved) == 1
    resumed = cv.dissect(mini, val, LAYERS, **settings)  # one process takes over
    assert_same_dissection(reference, resumed)
    assert not list(folder.glob("dissection-*.safetensors"))  # removed once finished


def test_interrupted_single_process_resumes_on_two(mini, val, reference, tmp_path):
    folder = tmp_path / "checkpoints"

    def stop_halfway(fraction):
        if fraction > 0.6:  # into pass 2, after a checkpoint of the tallies
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cv.dissect(mini, val, LAYERS, batch_size=48, checkpoint=folder, checkpoint_every=3, progress=stop_halfway)
    assert list(folder.glob("dissection-*.safetensors"))
    resumed = cv.dissect(mini, val, LAYERS, batch_size=48, checkpoint=folder, checkpoint_every=3, devices=TWO,
                         progress=False)
    assert_same_dissection(reference, resumed)


class MarkedImages(torch.utils.data.Dataset):
    """Images that leave a file named by the reading process's pid once it reads (so a test knows a worker is
    past its start), slowly (so the job is still running when the test acts)."""

    def __init__(self, images: torch.Tensor, folder):
        self.images, self.folder = images, folder

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        (self.folder / f"reading-{os.getpid()}").touch()
        time.sleep(0.02)
        return self.images[i]


def test_hung_rank_ends_the_job_within_the_timeout(mini, tmp_path):
    from cnnvis_widgets.datasets.shapeworld import shapeworld_images

    images = MarkedImages(shapeworld_images("val", 400), tmp_path)

    def reading(pid):
        return (tmp_path / f"reading-{pid}").exists()

    stopped = signal_rank_when(reading, 1, signal.SIGSTOP)  # rank 1 freezes mid-scan
    start = time.time()
    with pytest.raises(TimeoutError, match="Worker 1 of 2 .* reported nothing for 5 s while working.*Run "
                                           "top_activations again"):
        cv.top_activations(mini, images, "conv5", batch_size=8, devices=TWO, timeout=5, progress=False)
    stopped.join(1)
    assert time.time() - start < 60
    assert all_gone()
