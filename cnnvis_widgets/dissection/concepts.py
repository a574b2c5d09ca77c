"""Batches of images with their concept labels in tensor form, for the dissection tallies.

A Broden image's labels (Bau et al. 2017) come as several mask layers per category (pixel-level) and as
image-level label numbers (scene, texture). For counting they become, per image:

- ``codes`` int64 [layers, sh, sw]: concept index + 1 at each pixel (0 = none), every mask layer of every
  category; a concept already present at a pixel in an earlier layer, or as an image-level label of the
  image, is cleared, so a pixel counts at most once per concept (the union of its layers);
- ``image_concepts``: concept index + 1 of each image-level label;
- ``carries`` bool [categories]: the image has at least one label of the category.

:class:`ConceptBatches` pads them into batches so one DataLoader (with worker processes if asked) feeds
both the model and the counting. Decoding the mask PNGs costs more than the forward pass of a small
network, so the first pass over a dataset also writes the decoded codes to a memory-mapped cache
(:class:`CodeCache`, when it fits ``max_bytes``) that later dissections and Net2Vec read instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class ConceptIndex:
    """The concepts of a Broden dataset: label number ↔ concept index, primary categories."""

    def __init__(self, broden):
        self.categories: list[str] = list(broden.categories)
        labels = [label for label in broden.labels]
        self.numbers = np.array([label.number for label in labels], dtype=np.int64)
        self.names = [label.name for label in labels]
        self.primary = [label.category for label in labels]
        for label in labels:
            if label.category not in self.categories:
                raise ValueError(f"Label {label.number} ({label.name!r}) has primary category {label.category!r}, "
                                 f"which is not a column of {broden.root / 'index.csv'}; fix label.csv.")
        # number → index + 1 (0 for unlabelled and unused numbers)
        self.lookup = np.zeros(int(self.numbers.max(initial=0)) + 1, dtype=np.int64)
        self.lookup[self.numbers] = np.arange(1, len(labels) + 1)

    def __len__(self) -> int:
        return len(self.names)


CACHE_VERSION = 1


class CodeCache:
    """Decoded concept codes of a Broden dataset in three ``.npy`` files, memory-mapped.

    ``codes`` uint16 [N, layers, sh, sw], ``image_concepts`` uint16 [N, labels] (0-padded) and ``carries``
    bool [N, categories], as :func:`image_codes` gives them. The folder is named by a hash of the
    dataset's CSV files, split and segmentation size, so an edited dataset gets a new cache; it is
    written by :meth:`writer` into a temporary folder and renamed when complete.
    """

    def __init__(self, broden, concepts: ConceptIndex, seg_size: tuple[int, int], folder: str | os.PathLike | None = None,
                 max_bytes: int = 2 << 30):
        from ..datasets.shapeworld import default_cache_dir

        self.broden, self.concepts, self.seg_size = broden, concepts, tuple(seg_size)
        rows = [broden._row(i) for i in range(len(broden))]
        self.layers = max([sum(len(row.pngs[c]) for c in concepts.categories) for row in rows] + [1])
        self.labels = max([sum(len(row.numbers[c]) for c in concepts.categories) for row in rows] + [1])
        h = hashlib.sha256(f"{CACHE_VERSION} {broden.split} {self.seg_size}".encode())
        for name in ["index.csv", "label.csv", "category.csv"]:
            h.update((broden.root / name).read_bytes())
        base = Path(folder) if folder is not None else default_cache_dir() / "concept-codes"
        self.path = base / h.hexdigest()[:20]
        self.fits = len(broden) * self.layers * self.seg_size[0] * self.seg_size[1] * 2 <= max_bytes
        self._arrays = None

    def __getstate__(self):  # worker processes map the files themselves
        return {**self.__dict__, "_arrays": None}

    @property
    def ready(self) -> bool:
        return (self.path / "carries.npy").is_file()

    def arrays(self):
        if self._arrays is None:
            self._arrays = tuple(np.load(self.path / f"{name}.npy", mmap_mode="r")
                                 for name in ("codes", "image_concepts", "carries"))
        return self._arrays

    def get(self, i: int):
        codes, tags, carries = self.arrays()
        layers = codes[i]
        used = [layer for layer in layers if layer.any()]
        return (np.stack(used).astype(np.int64) if used else np.zeros((0, *self.seg_size), dtype=np.int64),
                [int(t) for t in tags[i] if t], np.asarray(carries[i]))

    def writer(self) -> "_CacheWriter | None":
        """A writer that fills the cache as a pass reads the dataset, or None if it exists or is too big."""
        if self.ready or not self.fits:
            return None
        return _CacheWriter(self)


class _CacheWriter:
    def __init__(self, cache: CodeCache):
        self.cache = cache
        cache.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{cache.path.name}-", dir=cache.path.parent))
        n, (sh, sw) = len(cache.broden), cache.seg_size
        open_memmap = np.lib.format.open_memmap
        self.codes = open_memmap(self.tmp / "codes.npy", "w+", np.uint16, (n, cache.layers, sh, sw))
        self.tags = open_memmap(self.tmp / "image_concepts.npy", "w+", np.uint16, (n, cache.labels))
        self.carries = open_memmap(self.tmp / "carries.npy", "w+", np.bool_, (n, len(cache.concepts.categories)))
        self.written = np.zeros(n, dtype=bool)

    def add(self, indices, codes, tags, carries) -> None:
        idx = np.asarray(indices)
        layers, labels = min(codes.shape[1], self.codes.shape[1]), min(tags.shape[1], self.tags.shape[1])
        self.codes[idx, :layers] = codes[:, :layers].numpy().astype(np.uint16)
        self.tags[idx, :labels] = tags[:, :labels].numpy().astype(np.uint16)
        self.carries[idx] = carries.numpy()
        self.written[idx] = True

    def close(self) -> None:
        """Publish the cache if every image was written; otherwise discard it."""
        complete = bool(self.written.all())
        for array in (self.codes, self.tags, self.carries):
            array.flush()
        del self.codes, self.tags, self.carries
        if complete and not self.cache.ready:
            try:
                os.replace(self.tmp, self.cache.path)
                return
            except OSError:
                pass  # another process published the same cache first
        shutil.rmtree(self.tmp, ignore_errors=True)


def image_codes(broden, concepts: ConceptIndex, i: int, seg_size: tuple[int, int]):
    """``(codes int64 [layers, sh, sw], image concepts list, carries bool [categories])`` of image ``i``."""
    seg = broden.segmentation(i)
    lookup = concepts.lookup
    layers, image_concepts = [], []
    carries = np.zeros(len(concepts.categories), dtype=bool)
    for c, category in enumerate(concepts.categories):
        s = seg[category]
        if s.image_labels:
            carries[c] = True
            image_concepts.extend(int(lookup[n]) for n in s.image_labels)
        for layer in s.masks:
            if layer.any():
                carries[c] = True
                layers.append(lookup[layer])
    sh, sw = seg_size
    codes = np.stack(layers) if layers else np.zeros((0, sh, sw), dtype=np.int64)
    if codes.shape[1:] != (sh, sw) and codes.shape[0]:
        codes = F.interpolate(torch.from_numpy(codes)[None].float(), size=(sh, sw), mode="nearest")[0].long().numpy()
    for later in range(1, codes.shape[0]):  # union of layers: count a concept once per pixel
        repeat = (codes[:later] == codes[later][None]).any(0)
        codes[later][repeat] = 0
    for concept in image_concepts:  # an image-level label already covers every pixel
        codes[codes == concept] = 0
    return codes, sorted(set(image_concepts)), carries


class _ConceptImages(Dataset):
    def __init__(self, broden, concepts: ConceptIndex, source, indices: list[int], seg_size: tuple[int, int],
                 cache: CodeCache | None):
        self.broden, self.concepts, self.source = broden, concepts, source
        self.indices, self.seg_size, self.cache = indices, seg_size, cache

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        image = self.source.image(i) if self.source is not None else torch.zeros(0)
        if self.cache is not None:
            codes, image_concepts, carries = self.cache.get(i)
        else:
            codes, image_concepts, carries = image_codes(self.broden, self.concepts, i, self.seg_size)
        return i, image, torch.from_numpy(codes), torch.tensor(image_concepts, dtype=torch.long), \
            torch.from_numpy(np.array(carries))


def _collate(items):
    indices, images, codes, image_concepts, carries = zip(*items)
    layers = max(c.shape[0] for c in codes)
    labels = max(len(c) for c in image_concepts)
    sh, sw = codes[0].shape[1:]
    padded = torch.zeros(len(items), max(layers, 1), sh, sw, dtype=torch.long)
    tags = torch.zeros(len(items), max(labels, 1), dtype=torch.long)
    for b, (c, t) in enumerate(zip(codes, image_concepts)):
        padded[b, : c.shape[0]] = c
        tags[b, : len(t)] = t
    return (torch.tensor(indices, dtype=torch.long), torch.stack(images), padded, tags, torch.stack(carries))


class ConceptBatches:
    """Stream ``(indices, images, codes, image_concepts, carries)`` batches over a Broden dataset.

    ``images`` are float [B, 3, H, W] at ``source``'s size; ``codes`` int64 [B, layers, sh, sw] and
    ``image_concepts`` int64 [B, labels] are padded with 0; ``carries`` is bool [B, categories].
    """

    def __init__(self, broden, concepts: ConceptIndex, source, seg_size: tuple[int, int],
                 cache: CodeCache | None = None):
        self.broden, self.concepts, self.source, self.seg_size = broden, concepts, source, seg_size
        self.cache = cache if cache is not None and cache.ready else None

    def loader(self, batch_size: int, num_workers: int = 0, start: int = 0, indices=None) -> DataLoader:
        """Batches from position ``start`` of ``indices`` (default: every image); ``source=None`` skips
        the images (an empty tensor stands in)."""
        chosen = list(range(len(self.broden))) if indices is None else [int(i) for i in indices]
        data = _ConceptImages(self.broden, self.concepts, self.source, chosen[start:], self.seg_size, self.cache)
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                          collate_fn=_collate, persistent_workers=False)
