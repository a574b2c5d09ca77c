"""Batches of images with their concept labels in tensor form, for the dissection tallies.

A Broden image's labels (Bau et al. 2017) come as several mask layers per category (pixel-level) and as
image-level label numbers (scene, texture). For counting they become, per image:

- ``codes`` int64 [layers, sh, sw]: concept index + 1 at each pixel (0 = none), every mask layer of every
  category; a concept already present at a pixel in an earlier layer, or as an image-level label of the
  image, is cleared, so a pixel counts at most once per concept (the union of its layers);
- ``image_concepts``: concept index + 1 of each image-level label;
- ``carries`` bool [categories]: the image has at least one label of the category.

:class:`ConceptBatches` pads them into batches so one DataLoader (with worker processes if asked) feeds
both the model and the counting.
"""

from __future__ import annotations

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


class _ConceptImages(Dataset):
    def __init__(self, broden, concepts: ConceptIndex, source, indices: list[int], seg_size: tuple[int, int]):
        self.broden, self.concepts, self.source = broden, concepts, source
        self.indices, self.seg_size = indices, seg_size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        image = self.source.image(i)
        seg = self.broden.segmentation(i)
        lookup = self.concepts.lookup
        layers, image_concepts = [], []
        carries = np.zeros(len(self.concepts.categories), dtype=bool)
        for c, category in enumerate(self.concepts.categories):
            s = seg[category]
            if s.image_labels:
                carries[c] = True
                image_concepts.extend(int(lookup[n]) for n in s.image_labels)
            for layer in s.masks:
                if layer.any():
                    carries[c] = True
                    layers.append(lookup[layer])
        sh, sw = self.seg_size
        codes = np.stack(layers) if layers else np.zeros((0, sh, sw), dtype=np.int64)
        if codes.shape[1:] != (sh, sw) and codes.shape[0]:
            codes = F.interpolate(torch.from_numpy(codes)[None].float(), size=(sh, sw),
                                  mode="nearest")[0].long().numpy()
        for later in range(1, codes.shape[0]):  # union of layers: count a concept once per pixel
            repeat = (codes[:later] == codes[later][None]).any(0)
            codes[later][repeat] = 0
        for concept in image_concepts:  # an image-level label already covers every pixel
            codes[codes == concept] = 0
        return i, image, torch.from_numpy(codes), torch.tensor(sorted(set(image_concepts)), dtype=torch.long), \
            torch.from_numpy(carries)


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

    def __init__(self, broden, concepts: ConceptIndex, source, seg_size: tuple[int, int]):
        self.broden, self.concepts, self.source, self.seg_size = broden, concepts, source, seg_size

    def loader(self, batch_size: int, num_workers: int = 0, start: int = 0, indices=None) -> DataLoader:
        chosen = list(range(len(self.broden))) if indices is None else [int(i) for i in indices]
        data = _ConceptImages(self.broden, self.concepts, self.source, chosen[start:], self.seg_size)
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                          collate_fn=_collate, persistent_workers=False)
