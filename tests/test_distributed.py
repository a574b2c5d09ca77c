"""Several processes, one result (torch.distributed, gloo, 2 CPU workers): top activations, dissection and AM
equal the single process's bit for bit; uneven shards; a killed or hung rank ends the job with a clear error
in bounded time; a dissection checkpoint resumes with another number of processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import cnnvis_widgets as cv
from cnnvis_widgets.distributed import Group
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


def assert_same_dissection(a, b):
    for name in LAYERS:
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


def test_net2vec_on_two_processes_equals_one(mini, val):
    """Masks, thresholds (merged tails of the training half) and features read in shards; same training."""
    kw = dict(concepts=["red", "tree", "house"], epochs=2, ablation=(4,), feature_batch_size=48, progress=False)
    one = cv.net2vec(mini, val, "conv5", **kw)
    two = cv.net2vec(mini, val, "conv5", devices=TWO, **kw)
    assert one.concepts == two.concepts
    for field in ("thresholds", "weights", "bias", "set_iou", "single_unit", "single_iou", "train_images"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    assert np.array_equal(one.ablation[4], two.ablation[4])


def test_activation_maximization_on_two_processes_equals_one(mini):
    kw = dict(units=[4, 0, 7, 2, 9], steps=6, batch_size=2, progress=False)  # 3 batches: 2 on rank 0, 1 on rank 1
    one = cv.activation_maximization(mini, "conv5", **kw)
    two = cv.activation_maximization(mini, "conv5", devices=TWO, **kw)
    assert np.array_equal(one.units, two.units)
    for field in ("images", "activations", "history", "transparency"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    with pytest.raises(ValueError, match="on_snapshot"):
        cv.activation_maximization(mini, "conv5", devices=TWO, on_snapshot=lambda *a: None, **kw)


def test_torchrun_command_equals_one_process(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    common = ["top", "conv5", "--images", "203", "--batch-size", "32"]
    subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "cnnvis_widgets.cli", *common, "--timeout", "60",
                    "--out", str(tmp_path / "two.safetensors")], check=True, timeout=240, cwd=tmp_path,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "cnnvis_widgets.cli", *common, "--out", str(tmp_path / "one.safetensors")],
                   check=True, timeout=240, capture_output=True)
    one = cv.TopActivations.load(tmp_path / "one.safetensors")
    two = cv.TopActivations.load(tmp_path / "two.safetensors")
    assert np.array_equal(one.indices, two.indices) and np.array_equal(one.values, two.values)


def workers():
    return {p.name: p for p in multiprocessing.active_children() if p.name.startswith("cnnvis-rank")}


def signal_rank_when(condition, rank: int, sig: int, timeout: float = 120.0):
    """In the background: once ``condition()`` holds, send ``sig`` to worker ``rank``."""
    def watch():
        deadline = time.time() + timeout
        while time.time() < deadline:
            worker = workers().get(f"cnnvis-rank{rank}")
            if worker is not None and condition():
                os.kill(worker.pid, sig)
                return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_one_process(mini, val, reference, tmp_path):
    folder = tmp_path / "checkpoints"
    settings = dict(batch_size=48, checkpoint=folder, checkpoint_every=2, progress=False)
    signal_rank_when(lambda: folder.exists() and any(folder.glob("dissection-*.safetensors")), 1, signal.SIGKILL)
    start = time.time()
    with pytest.raises(RuntimeError, match=r"Worker 1 of 2 \(cpu\) was killed by signal 9.*resumes"):
        cv.dissect(mini, val, LAYERS, devices=TWO, timeout=60, **settings)
    assert time.time() - start < 90
    assert not workers()  # every worker is gone
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

    def reading():
        worker = workers().get("cnnvis-rank1")
        return worker is not None and (tmp_path / f"reading-{worker.pid}").exists()

    stopped = signal_rank_when(reading, 1, signal.SIGSTOP)  # rank 1 freezes mid-scan
    start = time.time()
    with pytest.raises(TimeoutError, match="Worker 1 of 2 .* reported nothing for 5 s"):
        cv.top_activations(mini, images, "conv5", batch_size=8, devices=TWO, timeout=5, progress=False)
    stopped.join(1)
    assert time.time() - start < 60
    assert not workers()
