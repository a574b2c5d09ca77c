"""The Broden writer: :class:`BrodenWriter` writes a Broden folder, deterministically and atomically.

Mask PNGs are RGB with the label number coded as ``R = n % 256``,
``G = n // 256``, ``B = 0``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from .schema import CATEGORY_COLUMNS, CODE_COLUMNS, INDEX_COLUMNS, LABEL_COLUMNS, MAX_LABEL

__all__ = ["BrodenWriter"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def _save_png(array: np.ndarray, path: Path) -> None:
    # No metadata chunks, no optimizer: same pixels give the same bytes.
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", optimize=False)


def _format_float(value: float) -> str:
    return f"{value:.6f}"


class BrodenWriter:
    """Write a dataset in the Broden format (Bau et al. 2017).

    Parameters
    ----------
    root:
        The dataset folder to create. It must not exist unless
        ``overwrite=True``.
    categories:
        Category names, in index.csv column order. Names use letters,
        digits, ``_`` and ``-``.
    labels:
        ``labels[j] = (name, category)`` describes label number ``j + 1``;
        each label has exactly one category and ``(name, category)`` pairs
        are unique.

    :meth:`add` writes one image and its masks; :meth:`close` writes the
    CSV files. Everything is written into a hidden folder next to ``root``
    (``.<name>.partial-*``) that is renamed to ``root`` by :meth:`close`, so
    an interrupted write never leaves a complete-looking dataset. Used as a
    context manager, the writer closes on success and discards the partial
    folder on an exception.

    The output is byte-for-byte deterministic for the same calls. Statistics
    written to the CSVs:

    * label ``frequency``: number of images in which the label appears (in
      any mask layer or as an image-level label);
    * label ``coverage``: over those images, the mean fraction of the
      ``sh x sw`` mask pixels the label covers (union of its layers); an
      image-level label covers 1.0;
    * label.csv ``category``: ``<category>(<frequency>)``;
    * category ``first``/``last``: smallest/largest label number of the
      category (0 when it has none), ``count``: its number of labels,
      ``frequency``: number of images with any label of the category.
    """

    def __init__(self, root: str | os.PathLike, categories: Sequence[str],
                 labels: Sequence[tuple[str, str]], *, overwrite: bool = False):
        self.root = Path(root)
        self.overwrite = overwrite
        self.categories = list(categories)
        self.labels = [(str(name), str(category)) for name, category in labels]
        for category in self.categories:
            if not isinstance(category, str) or not _SAFE_NAME.fullmatch(category):
                raise ValueError(f"category name {category!r} must use only letters, digits, '_' and '-'")
            if category in INDEX_COLUMNS:
                raise ValueError(f"category name {category!r} clashes with an index.csv column")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"category names repeat: {self.categories}")
        if len(self.labels) > MAX_LABEL:
            raise ValueError(f"{len(self.labels)} labels exceed the {MAX_LABEL} a mask PNG can encode")
        seen: set[tuple[str, str]] = set()
        for number, (name, category) in enumerate(self.labels, start=1):
            if not name.strip() or name != name.strip():
                raise ValueError(f"label {number} has an empty or padded name {name!r}")
            if category not in self.categories:
                raise ValueError(f"label {number} ({name!r}) has unknown category {category!r}")
            if (name, category) in seen:
                raise ValueError(f"label {number}: ({name!r}, {category!r}) is already a label")
            seen.add((name, category))
        if self.root.exists() and not overwrite:
            raise FileExistsError(f"{self.root} exists; pick another root or pass overwrite=True")
        # label_category[n] is the category index of label n (-1 for 0)
        self._label_category = np.array([-1] + [self.categories.index(c) for _, c in self.labels])
        self._frequency = [0] * (len(self.labels) + 1)
        self._coverage_sum = [0.0] * (len(self.labels) + 1)
        self._category_frequency = dict.fromkeys(self.categories, 0)
        self._rows: list[list[str]] = []
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.partial-", dir=self.root.parent))
        (self._tmp / "images").mkdir()
        self._closed = False

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> BrodenWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_labels(self, category: str, numbers: Iterable[int], what: str) -> None:
        wanted = self.categories.index(category)
        for number in numbers:
            number = int(number)
            if not 1 <= number <= len(self.labels):
                raise ValueError(f"{what}: label {number} is not between 1 and {len(self.labels)}")
            if self._label_category[number] != wanted:
                name, actual = self.labels[number - 1]
                raise ValueError(f"{what}: label {number} ({name!r}) belongs to {actual!r}, not {category!r}")

    def add(self, image: np.ndarray, split: str,
            pixel_masks: Mapping[str, Sequence[np.ndarray]] | None = None,
            image_labels: Mapping[str, Sequence[int]] | None = None, *,
            seg_size: tuple[int, int] | None = None) -> int:
        """Write one image with its labels; return its row index (0-based).

        ``image`` is uint8 ``[H, W, 3]``. ``pixel_masks[category]`` is a list
        of integer label-number maps ``[sh, sw]`` (0 = none), one per layer;
        ``image_labels[category]`` lists image-level label numbers. All masks
        of one image share ``(sh, sw)``, which defaults to the masks' shape,
        or to half the image size rounded up (Broden's convention) when the
        image has no masks; ``seg_size`` sets it explicitly.

        Files: ``images/<split>/<index:06d>.png`` and
        ``images/<split>/<index:06d>_<category>_<layer>.png`` (RGB, R = n %
        256, G = n // 256, B = 0).
        """
        if self._closed:
            raise RuntimeError("BrodenWriter is closed")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        if not isinstance(split, str) or not _SAFE_NAME.fullmatch(split):
            raise ValueError(f"split {split!r} must use only letters, digits, '_' and '-'")
        pixel_masks = dict(pixel_masks or {})
        image_labels = dict(image_labels or {})
        for category in (*pixel_masks, *image_labels):
            if category not in self.categories:
                raise ValueError(f"unknown category {category!r}; categories: {self.categories}")
        height, width = image.shape[:2]

        # Validate everything before writing any file of this row.
        layers: dict[str, list[np.ndarray]] = {}
        shapes = set()
        for category in self.categories:
            arrays = []
            for k, layer in enumerate(pixel_masks.get(category, ())):
                layer = np.asarray(layer)
                what = f"pixel_masks[{category!r}][{k}]"
                if layer.ndim != 2 or not np.issubdtype(layer.dtype, np.integer):
                    raise ValueError(f"{what} must be a 2-D integer array, got {layer.dtype} {list(layer.shape)}")
                layer = layer.astype(np.int64)
                self._check_labels(category, [n for n in np.unique(layer) if n != 0], what)
                arrays.append(layer)
                shapes.add(layer.shape)
            layers[category] = arrays
        if seg_size is not None:
            shapes.add(tuple(int(s) for s in seg_size))
        if len(shapes) > 1:
            raise ValueError(f"masks and seg_size of one image must share one size, got {sorted(shapes)}")
        sh, sw = shapes.pop() if shapes else ((height + 1) // 2, (width + 1) // 2)
        if sh < 1 or sw < 1:
            raise ValueError(f"segmentation size must be positive, got {sh}x{sw}")
        numbers: dict[str, list[int]] = {}
        for category in self.categories:
            given = [int(n) for n in image_labels.get(category, ())]
            self._check_labels(category, given, f"image_labels[{category!r}]")
            numbers[category] = list(dict.fromkeys(given))

        index = len(self._rows)
        folder = self._tmp / "images" / split
        folder.mkdir(exist_ok=True)
        stem = f"{split}/{index:06d}"
        _save_png(image, self._tmp / "images" / f"{stem}.png")
        cells = []
        for category in self.categories:
            entries = []
            for k, layer in enumerate(layers[category]):
                rgb = np.zeros((sh, sw, 3), dtype=np.uint8)
                rgb[..., 0] = layer % 256
                rgb[..., 1] = layer // 256
                entry = f"{stem}_{category}_{k}.png"
                _save_png(rgb, self._tmp / "images" / entry)
                entries.append(entry)
            entries.extend(str(n) for n in numbers[category])
            cells.append(";".join(entries))
        self._rows.append([f"{stem}.png", split, str(height), str(width), str(sh), str(sw), *cells])
        self._count(layers, numbers, sh * sw)
        return index

    def _count(self, layers: dict[str, list[np.ndarray]], numbers: dict[str, list[int]], pixels: int) -> None:
        for category in self.categories:
            coverage: dict[int, float] = {}
            present = sorted({int(n) for layer in layers[category] for n in np.unique(layer) if n != 0})
            for number in present:
                union = np.zeros(layers[category][0].shape, dtype=bool)
                for layer in layers[category]:
                    union |= layer == number
                coverage[number] = int(union.sum()) / pixels
            for number in numbers[category]:
                coverage[number] = 1.0
            for number in sorted(coverage):
                self._frequency[number] += 1
                self._coverage_sum[number] += coverage[number]
            if coverage:
                self._category_frequency[category] += 1

    def _write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        with open(self._tmp / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    def close(self) -> Path:
        """Write the CSV files and move the dataset into ``root``; return ``root``.

        Closing twice is harmless.
        """
        if self._closed:
            return self.root
        self._write_csv("index.csv", [*INDEX_COLUMNS, *self.categories], self._rows)
        label_rows, code_rows = [], {c: [] for c in self.categories}
        for number, (name, category) in enumerate(self.labels, start=1):
            frequency = self._frequency[number]
            coverage = self._coverage_sum[number] / frequency if frequency else 0.0
            label_rows.append([number, name, f"{category}({frequency})", frequency,
                               _format_float(coverage), ""])
            rows = code_rows[category]
            rows.append([len(rows) + 1, number, name, frequency, _format_float(coverage)])
        self._write_csv("label.csv", LABEL_COLUMNS, label_rows)
        category_rows = []
        for category in self.categories:
            members = [row[1] for row in code_rows[category]]
            category_rows.append([category, min(members, default=0), max(members, default=0),
                                  len(members), self._category_frequency[category]])
            self._write_csv(f"c_{category}.csv", CODE_COLUMNS, code_rows[category])
        self._write_csv("category.csv", CATEGORY_COLUMNS, category_rows)

        if self.root.exists():
            if not self.overwrite:
                raise FileExistsError(f"{self.root} appeared while writing; the finished dataset "
                                      f"is left in {self._tmp}")
            old = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.old-", dir=self.root.parent))
            old.rmdir()
            os.replace(self.root, old)
            os.replace(self._tmp, self.root)
            shutil.rmtree(old)
        else:
            os.replace(self._tmp, self.root)
        self._closed = True
        return self.root

    def abort(self) -> None:
        """Discard everything written so far; ``root`` is left untouched."""
        if not self._closed:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._closed = True
